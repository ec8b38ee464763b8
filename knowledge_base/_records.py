"""Failures, LLM calls, reviews and insights: append-only records, listed newest first."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from knowledge_base._base import StoreBase, agent_row, experiment_row, to_model
from knowledge_base.models import (
    Failure,
    FailureDraft,
    Insight,
    LLMCall,
    LLMCallDraft,
    Review,
    ReviewDecision,
)
from knowledge_base.rows import ExperimentRow, FailureRow, InsightRow, LLMCallRow, ReviewRow


class RecordsMixin(StoreBase):
    """Failures, LLM calls, reviews and insights of the ``Store``."""

    # ---- failures ---------------------------------------------------------------------

    def record_failure(self, draft: FailureDraft) -> Failure:
        """Record a classified failure. Raises ``NotFoundError`` for an unknown agent or
        experiment."""
        with self._write() as session:
            agent_row(session, draft.agent_name)
            if draft.experiment_id is not None:
                experiment_row(session, draft.experiment_id)
            row = FailureRow(**{**draft.model_dump(), "kind": draft.kind.value})
            session.add(row)
            session.flush()
            return to_model(Failure, row)

    def list_failures(
        self, agent_name: str | None = None, experiment_id: int | None = None, limit: int = 20
    ) -> list[Failure]:
        """The newest ``limit`` failures, optionally of one agent and/or experiment."""
        query = select(FailureRow)
        if agent_name is not None:
            query = query.where(FailureRow.agent_name == agent_name)
        if experiment_id is not None:
            query = query.where(FailureRow.experiment_id == experiment_id)
        with self._read() as session:
            rows = session.scalars(query.order_by(FailureRow.id.desc()).limit(limit))
            return [to_model(Failure, row) for row in rows]

    # ---- LLM calls --------------------------------------------------------------------

    def record_llm_call(self, draft: LLMCallDraft) -> LLMCall:
        """Record one call to a language model (failed calls too: ``draft.error``)."""
        with self._write() as session:
            row = LLMCallRow(**draft.model_dump())
            session.add(row)
            session.flush()
            return to_model(LLMCall, row)

    def list_llm_calls(
        self,
        agent_name: str | None = None,
        session_id: str | None = None,
        experiment_id: int | None = None,
        limit: int = 100,
    ) -> list[LLMCall]:
        """The newest ``limit`` LLM calls matching every given filter."""
        query = _llm_filter(select(LLMCallRow), agent_name, session_id, experiment_id)
        with self._read() as session:
            rows = session.scalars(query.order_by(LLMCallRow.id.desc()).limit(limit))
            return [to_model(LLMCall, row) for row in rows]

    def llm_spend(
        self, session_id: str | None = None, agent_name: str | None = None
    ) -> tuple[int, float]:
        """``(number of calls, total cost in USD)`` of the matching LLM calls."""
        query = select(func.count(LLMCallRow.id), func.coalesce(func.sum(LLMCallRow.cost_usd), 0))
        query = _llm_filter(query, agent_name, session_id, None)
        with self._read() as session:
            calls, cost = session.execute(query).one()
            return int(calls), float(cost)

    # ---- reviews ----------------------------------------------------------------------

    def record_review(
        self, experiment_id: int, decision: ReviewDecision, reason: str, reviewer: str
    ) -> Review:
        """Record a person's decision on an experiment (the promotion state is set
        separately with ``set_promotion``). Raises ``NotFoundError``."""
        with self._write() as session:
            experiment_row(session, experiment_id)
            row = ReviewRow(
                experiment_id=experiment_id, decision=ReviewDecision(decision).value,
                reason=reason, reviewer=reviewer,
            )
            session.add(row)
            session.flush()
            return to_model(Review, row)

    def list_reviews(
        self,
        agent_name: str | None = None,
        experiment_id: int | None = None,
        decision: ReviewDecision | None = None,
        limit: int = 50,
    ) -> list[Review]:
        """The newest ``limit`` reviews matching every given filter."""
        query = select(ReviewRow)
        if agent_name is not None:
            query = query.join(ExperimentRow, ExperimentRow.id == ReviewRow.experiment_id).where(
                ExperimentRow.agent_name == agent_name
            )
        if experiment_id is not None:
            query = query.where(ReviewRow.experiment_id == experiment_id)
        if decision is not None:
            query = query.where(ReviewRow.decision == ReviewDecision(decision).value)
        with self._read() as session:
            rows = session.scalars(query.order_by(ReviewRow.id.desc()).limit(limit))
            return [to_model(Review, row) for row in rows]

    # ---- insights ---------------------------------------------------------------------

    def add_insight(self, agent_name: str, text: str, provenance: dict[str, Any]) -> Insight:
        """Record a lesson learnt about ``agent_name``; ``provenance`` says where it came
        from (experiment ids, review ids, model...). Raises ``NotFoundError``."""
        with self._write() as session:
            agent_row(session, agent_name)
            row = InsightRow(agent_name=agent_name, text=text, provenance=dict(provenance))
            session.add(row)
            session.flush()
            return to_model(Insight, row)

    def list_insights(self, agent_name: str, limit: int = 20) -> list[Insight]:
        """The newest ``limit`` insights about ``agent_name``."""
        query = select(InsightRow).where(InsightRow.agent_name == agent_name)
        with self._read() as session:
            rows = session.scalars(query.order_by(InsightRow.id.desc()).limit(limit))
            return [to_model(Insight, row) for row in rows]


def _llm_filter(
    query: Any, agent_name: str | None, session_id: str | None, experiment_id: int | None
) -> Any:
    if agent_name is not None:
        query = query.where(LLMCallRow.agent_name == agent_name)
    if session_id is not None:
        query = query.where(LLMCallRow.session_id == session_id)
    if experiment_id is not None:
        query = query.where(LLMCallRow.experiment_id == experiment_id)
    return query
