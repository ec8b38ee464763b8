"""Pipeline components (what each pipeline version pins) and the phases of ``evolve``."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from knowledge_base._base import StoreBase, agent_row, to_model
from knowledge_base.errors import NotFoundError
from knowledge_base.models import EvolvePhase, PipelineComponent
from knowledge_base.rows import AgentVersionRow, EvolvePhaseRow, PipelineComponentRow


class PipelinesMixin(StoreBase):
    """Pipeline rows of the ``Store``."""

    def set_pipeline_components(self, version_id: int, components: list[dict[str, Any]]) -> list[PipelineComponent]:
        """Record the components pipeline version ``version_id`` pins (replacing any earlier
        record of it): dicts of ``role, branch, agent_name, agent_version (number), family,
        params, quota``. Raises ``NotFoundError`` for an unknown version or pinned agent version."""
        with self._write() as session:
            if session.get(AgentVersionRow, version_id) is None:
                raise NotFoundError(f"no version with id {version_id}")
            session.execute(delete(PipelineComponentRow).where(PipelineComponentRow.version_id == version_id))
            rows = []
            for position, c in enumerate(components):
                pinned = None
                if c.get("agent_name"):
                    pinned = session.scalar(select(AgentVersionRow.id).where(
                        AgentVersionRow.agent_name == c["agent_name"], AgentVersionRow.number == c["agent_version"]))
                    if pinned is None:
                        raise NotFoundError(f"no version {c['agent_name']}/v{c['agent_version']}")
                row = PipelineComponentRow(version_id=version_id, position=position, role=c["role"],
                                           branch=c.get("branch"), agent_name=c.get("agent_name"),
                                           agent_version_id=pinned, family=c.get("family"),
                                           params=dict(c.get("params") or {}), quota=c.get("quota"))
                session.add(row)
                rows.append(row)
            session.flush()
            return [to_model(PipelineComponent, row) for row in rows]

    def list_pipeline_components(self, version_id: int) -> list[PipelineComponent]:
        query = select(PipelineComponentRow).where(PipelineComponentRow.version_id == version_id)
        with self._read() as session:
            return [to_model(PipelineComponent, r) for r in session.scalars(query.order_by(PipelineComponentRow.position))]

    # ---- evolve phases ----------------------------------------------------------------

    def start_phase(self, run_id: str, pipeline: str, kind: str, target: str, reason: str,
                    data: dict[str, Any] | None = None) -> EvolvePhase:
        with self._write() as session:
            agent_row(session, pipeline)
            row = EvolvePhaseRow(run_id=run_id, pipeline=pipeline, kind=kind, target=target, reason=reason,
                                 iterations=0, promotions=0, data=dict(data or {}))
            session.add(row)
            session.flush()
            return to_model(EvolvePhase, row)

    def update_phase(self, phase_id: int, *, iterations: int | None = None, promotions: int | None = None,
                     data: dict[str, Any] | None = None, ended: bool = False, reason: str | None = None) -> EvolvePhase:
        """Progress of a phase; ``ended`` closes it with ``reason`` (why it ended)."""
        with self._write() as session:
            row = session.get(EvolvePhaseRow, phase_id)
            if row is None:
                raise NotFoundError(f"no evolve phase {phase_id}")
            if iterations is not None:
                row.iterations = iterations
            if promotions is not None:
                row.promotions = promotions
            if data is not None:
                row.data = {**(row.data or {}), **data}
            if reason is not None:
                row.reason = reason
            if ended:
                row.ended_at = datetime.now(UTC)
            session.flush()
            return to_model(EvolvePhase, row)

    def list_phases(self, pipeline: str | None = None, run_id: str | None = None) -> list[EvolvePhase]:
        """Phases, oldest first."""
        query = select(EvolvePhaseRow)
        if pipeline is not None:
            query = query.where(EvolvePhaseRow.pipeline == pipeline)
        if run_id is not None:
            query = query.where(EvolvePhaseRow.run_id == run_id)
        with self._read() as session:
            return [to_model(EvolvePhase, r) for r in session.scalars(query.order_by(EvolvePhaseRow.id))]
