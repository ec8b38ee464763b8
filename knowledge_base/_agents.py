"""Agents, their versions (with the champion flag) and deduplicated candidate code."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from knowledge_base._base import StoreBase, agent_row, get_row, to_model
from knowledge_base.errors import NotFoundError
from knowledge_base.models import Agent, AgentSpec, AgentVersion
from knowledge_base.rows import AgentRow, AgentVersionRow, CandidateCodeRow


class AgentsMixin(StoreBase):
    """Agents, versions and code of the ``Store``."""

    # ---- agents ---------------------------------------------------------------------

    def upsert_agent(self, spec: AgentSpec) -> Agent:
        """Create the agent ``spec.name`` or overwrite its fields; ``created_at`` is kept."""
        with self._write() as session:
            row = session.scalar(select(AgentRow).where(AgentRow.name == spec.name))
            if row is None:
                row = AgentRow(**spec.model_dump())
                session.add(row)
            else:
                for field, value in spec.model_dump().items():
                    setattr(row, field, value)
            session.flush()
            return to_model(Agent, row)

    def get_agent(self, name: str) -> Agent:
        """The agent ``name``. Raises ``NotFoundError``."""
        with self._read() as session:
            return to_model(Agent, agent_row(session, name))

    def list_agents(self) -> list[Agent]:
        """Every agent, by name."""
        with self._read() as session:
            rows = session.scalars(select(AgentRow).order_by(AgentRow.name))
            return [to_model(Agent, row) for row in rows]

    # ---- versions -------------------------------------------------------------------

    def add_version(
        self,
        agent_name: str,
        number: int,
        git_sha: str,
        family: str,
        params: dict[str, Any],
        parent_version_id: int | None = None,
        experiment_id: int | None = None,
        make_champion: bool = True,
    ) -> AgentVersion:
        """Record version ``number`` of ``agent_name`` tagged ``"<agent>/v<number>"``.

        With ``make_champion`` it becomes the only champion of the agent (same transaction).
        Raises ``NotFoundError`` for an unknown agent, ``ConflictError`` if the number is taken.
        """
        with self._write() as session:
            agent_row(session, agent_name)
            if make_champion:
                _clear_champion(session, agent_name)
            row = AgentVersionRow(
                agent_name=agent_name, number=number, tag=f"{agent_name}/v{number}",
                git_sha=git_sha, family=family, params=dict(params),
                parent_version_id=parent_version_id, experiment_id=experiment_id,
                is_champion=make_champion,
            )
            session.add(row)
            session.flush()
            return to_model(AgentVersion, row)

    def next_version_number(self, agent_name: str) -> int:
        """One more than the highest version number of ``agent_name``; 1 if it has none."""
        with self._read() as session:
            highest = session.scalar(
                select(func.max(AgentVersionRow.number)).where(
                    AgentVersionRow.agent_name == agent_name
                )
            )
            return (highest or 0) + 1

    def list_versions(self, agent_name: str) -> list[AgentVersion]:
        """The versions of ``agent_name``, ascending by number (empty if none)."""
        with self._read() as session:
            rows = session.scalars(
                select(AgentVersionRow)
                .where(AgentVersionRow.agent_name == agent_name)
                .order_by(AgentVersionRow.number)
            )
            return [to_model(AgentVersion, row) for row in rows]

    def get_version(self, agent_name: str, number: int) -> AgentVersion:
        """Version ``number`` of ``agent_name``. Raises ``NotFoundError``."""
        with self._read() as session:
            row = session.scalar(_version_q(agent_name, number))
            if row is None:
                raise NotFoundError(f"agent {agent_name!r} has no version v{number}")
            return to_model(AgentVersion, row)

    def get_version_by_id(self, version_id: int) -> AgentVersion:
        """The version with database id ``version_id``. Raises ``NotFoundError``."""
        with self._read() as session:
            return to_model(AgentVersion, get_row(session, AgentVersionRow, version_id, "version"))

    def champion(self, agent_name: str) -> AgentVersion | None:
        """The current champion version of ``agent_name``, or ``None``."""
        with self._read() as session:
            row = session.scalar(
                select(AgentVersionRow).where(
                    AgentVersionRow.agent_name == agent_name, AgentVersionRow.is_champion
                )
            )
            return None if row is None else to_model(AgentVersion, row)

    def set_champion(self, agent_name: str, version_id: int) -> AgentVersion:
        """Make ``version_id`` the only champion of ``agent_name`` (e.g. a rollback).

        Raises ``NotFoundError`` if the version does not exist or belongs to another agent.
        """
        with self._write() as session:
            row = session.get(AgentVersionRow, version_id)
            if row is None or row.agent_name != agent_name:
                raise NotFoundError(f"agent {agent_name!r} has no version with id {version_id}")
            _clear_champion(session, agent_name)
            row.is_champion = True
            session.flush()
            return to_model(AgentVersion, row)

    def delete_version(self, version_id: int) -> None:
        """Delete a version row (repairs a crash between the KB write and the git commit).

        Children keep existing with ``parent_version_id`` set to NULL. Raises ``NotFoundError``.
        """
        with self._write() as session:
            session.delete(get_row(session, AgentVersionRow, version_id, "version"))

    # ---- code -----------------------------------------------------------------------

    def put_code(self, code_hash: str, code: str) -> None:
        """Store ``code`` under ``code_hash``; storing the same hash again is a no-op."""
        with self._write() as session:
            if session.get(CandidateCodeRow, code_hash) is None:
                session.add(CandidateCodeRow(code_hash=code_hash, code=code))

    def get_code(self, code_hash: str) -> str:
        """The code stored under ``code_hash``. Raises ``NotFoundError``."""
        with self._read() as session:
            return get_row(session, CandidateCodeRow, code_hash, "candidate code").code


def _version_q(agent_name: str, number: int) -> Select[tuple[AgentVersionRow]]:
    return select(AgentVersionRow).where(
        AgentVersionRow.agent_name == agent_name, AgentVersionRow.number == number
    )


def _clear_champion(session: Session, agent_name: str) -> None:
    session.execute(
        update(AgentVersionRow)
        .where(AgentVersionRow.agent_name == agent_name, AgentVersionRow.is_champion)
        .values(is_champion=False)
    )
