"""Agents, their versions (with the champion flag) and deduplicated candidate code.

Several processes (other machines too) may write the versions of one agent at once. A partial
unique index keeps at most one champion per agent; every write that changes versions or the
champion runs under a per-agent lock (a transaction-scoped advisory lock on PostgreSQL; on
SQLite the database write lock, taken by ``BEGIN IMMEDIATE``, already serialises writers), so
"check the champion, take the next number, insert" is atomic and a reader sees exactly one
champion (the old or the new) at every moment.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Select, func, select, text, update
from sqlalchemy.orm import Session

from knowledge_base._base import StoreBase, agent_row, get_row, to_model
from knowledge_base.errors import ConflictError, NotFoundError
from knowledge_base.models import Agent, AgentSpec, AgentVersion, VersionDraft
from knowledge_base.rows import AgentRow, AgentVersionRow, CandidateCodeRow


class AgentsMixin(StoreBase):
    """Agents, versions and code of the ``Store``."""

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the database-wide lock ``name`` while inside, for steps of several
        transactions that processes sharing the database must not interleave (``init``:
        the schema upgrade, then the built-in agents and their first versions). PostgreSQL:
        a session advisory lock on a connection of its own; SQLite: nothing to do, every
        write transaction holds the database lock."""
        if self._engine.dialect.name != "postgresql":
            yield
            return
        with self._engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key(name)})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(name)})
                connection.commit()

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
        code_hash: str | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> AgentVersion:
        """Record version ``number`` of ``agent_name`` tagged ``"<agent>/v<number>"``.

        With ``make_champion`` it becomes the only champion of the agent (same transaction,
        under the agent's lock). Raises ``NotFoundError`` for an unknown agent,
        ``ConflictError`` if the number is taken.
        """
        with self._write() as session:
            agent_row(session, agent_name)
            _lock_agent(session, agent_name)
            if make_champion:
                _clear_champion(session, agent_name)
            row = _version_row(agent_name, number, family, params, git_sha, parent_version_id,
                               experiment_id, make_champion, code_hash, manifest)
            session.add(row)
            session.flush()
            return to_model(AgentVersion, row)

    def release_version(
        self, agent_name: str, draft: VersionDraft, require_champion: int | None = None
    ) -> AgentVersion:
        """Record ``draft`` as the next version of ``agent_name`` and make it the champion,
        atomically under the agent's lock: concurrent releases get distinct numbers and the
        last one committed is the champion.

        With ``require_champion`` (a version id) the release happens only if that version is
        still the champion (or there is none): otherwise ``ConflictError`` naming the current
        champion, and nothing is written. Raises ``NotFoundError`` for an unknown agent.
        """
        with self._write() as session:
            agent_row(session, agent_name)
            _lock_agent(session, agent_name)
            current = _champion_row(session, agent_name)
            if require_champion is not None and current is not None and current.id != require_champion:
                raise ConflictError(f"the champion of {agent_name!r} is now {current.tag}, not the "
                                    f"version with id {require_champion}")
            return to_model(AgentVersion, _insert_champion(session, agent_name, draft))

    def first_version(self, agent_name: str, draft: VersionDraft) -> AgentVersion:
        """Version 1 of ``agent_name`` as its champion, unless the agent has versions already
        (another workspace created them): then the lowest one is returned, unchanged."""
        with self._write() as session:
            agent_row(session, agent_name)
            _lock_agent(session, agent_name)
            lowest = session.scalar(
                select(AgentVersionRow).where(AgentVersionRow.agent_name == agent_name)
                .order_by(AgentVersionRow.number).limit(1)
            )
            if lowest is not None:
                return to_model(AgentVersion, lowest)
            return to_model(AgentVersion, _insert_champion(session, agent_name, draft))

    def fill_version(
        self,
        version_id: int,
        code_hash: str | None = None,
        manifest: dict[str, Any] | None = None,
        git_sha: str | None = None,
    ) -> AgentVersion:
        """Fill in the fields a version row lacks (rows from before revision 0004 have no
        code; a released row has no commit until a repository writes it). Fields already
        set are kept: the first writer wins. Raises ``NotFoundError``."""
        with self._write() as session:
            row = get_row(session, AgentVersionRow, version_id, "version")
            if code_hash is not None and row.code_hash is None:
                row.code_hash = code_hash
            if manifest is not None and row.manifest is None:
                row.manifest = dict(manifest)
            if git_sha and not row.git_sha:
                row.git_sha = git_sha
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

    def get_version_manifest(self, version_id: int) -> dict[str, Any] | None:
        """The manifest of a version (what repositories write to ``agent.yaml``; it holds
        the sealed test metrics, so it is not on ``AgentVersion``), ``None`` for a row from
        before revision 0004. Raises ``NotFoundError``."""
        with self._read() as session:
            manifest = get_row(session, AgentVersionRow, version_id, "version").manifest
            return None if manifest is None else dict(manifest)

    def champion(self, agent_name: str) -> AgentVersion | None:
        """The current champion version of ``agent_name``, or ``None``."""
        with self._read() as session:
            row = _champion_row(session, agent_name)
            return None if row is None else to_model(AgentVersion, row)

    def set_champion(self, agent_name: str, version_id: int) -> AgentVersion:
        """Make ``version_id`` the only champion of ``agent_name`` (e.g. a rollback).

        Raises ``NotFoundError`` if the version does not exist or belongs to another agent.
        """
        return self.claim_champion(agent_name, version_id, replacing=None, force=True)

    def claim_champion(
        self, agent_name: str, version_id: int, replacing: int | None, force: bool = False
    ) -> AgentVersion:
        """Make ``version_id`` the champion of ``agent_name`` if the champion is still the
        version ``replacing`` (or there is none, or it is ``version_id`` already); ``force``
        skips that check. Atomic under the agent's lock.

        Raises ``ConflictError`` naming the current champion when another version took its
        place, ``NotFoundError`` if the version does not exist or belongs to another agent.
        """
        with self._write() as session:
            _lock_agent(session, agent_name)
            row = session.get(AgentVersionRow, version_id)
            if row is None or row.agent_name != agent_name:
                raise NotFoundError(f"agent {agent_name!r} has no version with id {version_id}")
            current = _champion_row(session, agent_name)
            if current is not None and current.id == version_id:
                return to_model(AgentVersion, current)
            if not force and current is not None and current.id != replacing:
                raise ConflictError(f"the champion of {agent_name!r} is now {current.tag}, not the "
                                    f"version with id {replacing}")
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


def _champion_row(session: Session, agent_name: str) -> AgentVersionRow | None:
    return session.scalar(
        select(AgentVersionRow).where(AgentVersionRow.agent_name == agent_name, AgentVersionRow.is_champion)
    )


def _version_row(agent_name: str, number: int, family: str, params: dict[str, Any], git_sha: str,
                 parent_version_id: int | None, experiment_id: int | None, champion: bool,
                 code_hash: str | None, manifest: dict[str, Any] | None) -> AgentVersionRow:
    return AgentVersionRow(
        agent_name=agent_name, number=number, tag=f"{agent_name}/v{number}", git_sha=git_sha,
        family=family, params=dict(params), parent_version_id=parent_version_id,
        experiment_id=experiment_id, is_champion=champion, code_hash=code_hash,
        manifest=None if manifest is None else dict(manifest),
    )


def _insert_champion(session: Session, agent_name: str, draft: VersionDraft) -> AgentVersionRow:
    """The next version of the agent, as its only champion (the caller holds the lock)."""
    highest = session.scalar(
        select(func.max(AgentVersionRow.number)).where(AgentVersionRow.agent_name == agent_name)
    )
    _clear_champion(session, agent_name)
    row = _version_row(agent_name, (highest or 0) + 1, draft.family, draft.params, draft.git_sha,
                       draft.parent_version_id, draft.experiment_id, True, draft.code_hash,
                       draft.manifest)
    session.add(row)
    session.flush()
    return row


def lock_key(agent_name: str) -> int:
    """The PostgreSQL advisory-lock key of an agent: a signed 64-bit hash of its name."""
    digest = hashlib.sha256(f"agenticrs.agent:{agent_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_agent(session: Session, agent_name: str) -> None:
    """Serialise the version writes of one agent until the transaction ends. SQLite needs
    nothing: write transactions start with ``BEGIN IMMEDIATE`` and hold the database lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(agent_name)})


def _clear_champion(session: Session, agent_name: str) -> None:
    session.execute(
        update(AgentVersionRow)
        .where(AgentVersionRow.agent_name == agent_name, AgentVersionRow.is_champion)
        .values(is_champion=False)
    )
