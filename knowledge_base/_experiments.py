"""Experiments, their per-user validation scores and their sealed test metrics."""
from __future__ import annotations

import io
import os
import socket
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from knowledge_base._base import StoreBase, agent_row, experiment_row, to_model
from knowledge_base.errors import NotFoundError
from knowledge_base.models import (
    DesignSession,
    Experiment,
    ExperimentDraft,
    ExperimentResult,
    ExperimentStatus,
    PromotionState,
)
from knowledge_base.rows import (
    DesignSessionRow,
    ExperimentRow,
    TestMetricsRow,
    UserScoresRow,
    utcnow,
)

StatusFilter = ExperimentStatus | Iterable[ExperimentStatus] | None
PromotionFilter = PromotionState | Iterable[PromotionState] | None
_UNFINISHED = (ExperimentStatus.RUNNING.value, ExperimentStatus.INTERRUPTED.value)
# A session silent for longer than this is dead: its RUNNING experiments may be interrupted.
STALE_AFTER_SECONDS = 120.0


class ExperimentsMixin(StoreBase):
    """Experiments, per-user scores and sealed test metrics of the ``Store``."""

    def start_experiment(self, draft: ExperimentDraft) -> Experiment:
        """Record a new experiment, status RUNNING, promotion NONE.

        Raises ``NotFoundError`` if ``draft.agent_name`` is not a known agent.
        """
        with self._write() as session:
            agent_row(session, draft.agent_name)
            row = ExperimentRow(
                **draft.model_dump(),
                status=ExperimentStatus.RUNNING.value,
                promotion=PromotionState.NONE.value,
                metrics={}, segments={},
            )
            session.add(row)
            session.flush()
            return to_model(Experiment, row)

    def finish_experiment(self, experiment_id: int, result: ExperimentResult) -> Experiment:
        """Store the outcome of a run and stamp ``finished_at``.

        Raises ``ValueError`` if ``result.status`` is RUNNING, ``NotFoundError`` if missing.
        """
        if result.status is ExperimentStatus.RUNNING:
            raise ValueError("a finished experiment cannot have status RUNNING")
        with self._write() as session:
            row = experiment_row(session, experiment_id)
            values = result.model_dump()  # python mode: NaN stays NaN, not null
            values["status"] = result.status.value
            for field, value in values.items():
                setattr(row, field, value)
            row.finished_at = utcnow()
            session.flush()
            return to_model(Experiment, row)

    def set_promotion(
        self,
        experiment_id: int,
        state: PromotionState,
        p_value: float | None = None,
        effect_size: float | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Experiment:
        """Set the promotion state; ``p_value``/``effect_size``/``evidence`` (what decided
        it: comparison, confirmation, veto) overwrite only when given."""
        with self._write() as session:
            row = experiment_row(session, experiment_id)
            row.promotion = PromotionState(state).value
            if evidence is not None:
                row.evidence = dict(evidence)
            if p_value is not None:
                row.p_value = p_value
            if effect_size is not None:
                row.effect_size = effect_size
            session.flush()
            return to_model(Experiment, row)

    def set_parent(self, experiment_id: int, parent_version_id: int,
                   incumbent_experiment_id: int | None) -> Experiment:
        """Re-point an experiment at the version it is judged against (the champion at
        judging time, which may have changed while it ran) and at that version's scored
        experiment (``proposal["incumbent_experiment"]``). Raises ``NotFoundError``."""
        with self._write() as session:
            row = experiment_row(session, experiment_id)
            row.parent_version_id = parent_version_id
            row.proposal = {**row.proposal, "incumbent_experiment": incumbent_experiment_id}
            session.flush()
            return to_model(Experiment, row)

    def get_experiment(self, experiment_id: int) -> Experiment:
        """The experiment ``experiment_id``. Raises ``NotFoundError``."""
        with self._read() as session:
            return to_model(Experiment, experiment_row(session, experiment_id))

    def list_experiments(
        self,
        agent_name: str | None = None,
        status: StatusFilter = None,
        promotion: PromotionFilter = None,
        dataset_key: str | None = None,
        family: str | None = None,
        stage: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
        newest_first: bool = True,
        after_id: int | None = None,
        session_id: str | None = None,
        proposer: str | None = None,
        dataset_prefix: str | None = None,
        by_reward: bool = False,
    ) -> list[Experiment]:
        """One page of experiments matching every given filter, ordered by id.

        Keyset pagination: pass the last id of a page as ``before_id`` (newest first) or
        ``after_id`` (oldest first) to get the next page. ``status``/``promotion`` take one
        value or several; ``dataset_prefix`` matches keys that start with it. ``by_reward``
        orders by inner reward instead, highest first, runs without one last.
        """
        query = _filtered(
            select(ExperimentRow), agent_name, status, promotion, dataset_key, family, stage
        )
        for column, value in (("session_id", session_id), ("proposer", proposer)):
            if value is not None:
                query = query.where(getattr(ExperimentRow, column) == value)
        if dataset_prefix is not None:
            query = query.where(ExperimentRow.dataset_key.startswith(dataset_prefix, autoescape=True))
        if before_id is not None:
            query = query.where(ExperimentRow.id < before_id)
        if after_id is not None:
            query = query.where(ExperimentRow.id > after_id)
        order = [ExperimentRow.id.desc() if newest_first else ExperimentRow.id.asc()]
        if by_reward:
            reward = ExperimentRow.inner_reward
            order = [reward.is_(None), reward.desc(), *order]
        with self._read() as session:
            rows = session.scalars(query.order_by(*order).limit(limit))
            return [to_model(Experiment, row) for row in rows]

    def count_experiments(
        self, agent_name: str | None = None, status: StatusFilter = None
    ) -> int:
        """How many experiments match ``agent_name`` and ``status`` (one or several)."""
        query = _filtered(select(func.count(ExperimentRow.id)), agent_name, status)
        with self._read() as session:
            return int(session.scalar(query) or 0)

    def find_experiment(
        self, agent_name: str, dataset_key: str, code_hash: str, stage: str
    ) -> Experiment | None:
        """The newest *finished* experiment (not RUNNING nor INTERRUPTED) of this code on this
        dataset and stage, or ``None``: a hash already evaluated is never evaluated again."""
        query = (
            select(ExperimentRow)
            .where(
                ExperimentRow.agent_name == agent_name,
                ExperimentRow.dataset_key == dataset_key,
                ExperimentRow.code_hash == code_hash,
                ExperimentRow.stage == stage,
                ExperimentRow.status.not_in(_UNFINISHED),
            )
            .order_by(ExperimentRow.id.desc())
            .limit(1)
        )
        with self._read() as session:
            row = session.scalar(query)
            return None if row is None else to_model(Experiment, row)

    def interrupt_running(
        self,
        agent_name: str,
        exclude_session: str | None = None,
        stale_after: float | None = None,
    ) -> list[int]:
        """Mark INTERRUPTED the RUNNING experiments of ``agent_name`` whose session is dead;
        returns their ids, ascending.

        A session is alive while its heartbeat (``heartbeat``) is younger than ``stale_after``
        seconds (default ``STALE_AFTER_SECONDS``) by the database's clock, unless it ran on this
        host under a process id that no longer exists (killed: no need to wait for its beat to
        go stale); a session that never beat (an older agenticrs, a crash before its first
        beat) is dead. ``exclude_session`` is the caller, alive by
        definition: it is recorded as such (one beat), and its runs are never touched. So
        processes on other machines sharing the database never interrupt each other's live
        runs.
        """
        stale_after = STALE_AFTER_SECONDS if stale_after is None else stale_after
        with self._write() as session:
            now = _db_now(session)
            if exclude_session is not None:
                _beat(session, exclude_session, agent_name, now)
            fresh = session.execute(select(DesignSessionRow.session_id, DesignSessionRow.host, DesignSessionRow.pid)
                                    .where(DesignSessionRow.heartbeat_at >= now - timedelta(seconds=stale_after)))
            live = [sid for sid, host, pid in fresh if not _dead_here(host, pid)]
            condition = [
                ExperimentRow.agent_name == agent_name,
                ExperimentRow.status == ExperimentStatus.RUNNING.value,
                ExperimentRow.session_id.not_in(live),
            ]
            if exclude_session is not None:
                condition.append(ExperimentRow.session_id != exclude_session)
            ids = sorted(session.scalars(select(ExperimentRow.id).where(*condition)))
            if ids:
                session.execute(
                    update(ExperimentRow)
                    .where(ExperimentRow.id.in_(ids))
                    .values(status=ExperimentStatus.INTERRUPTED.value, finished_at=now)
                )
            return ids

    # ---- liveness -----------------------------------------------------------------------

    def heartbeat(self, session_id: str, agent_name: str) -> DesignSession:
        """Record that design session ``session_id`` (of ``agent_name``) is alive now, by the
        database's clock (machines sharing it need not agree on the time). Creates the
        session row on the first beat. Call it more often than ``STALE_AFTER_SECONDS``."""
        with self._write() as session:
            return to_model(DesignSession, _beat(session, session_id, agent_name, _db_now(session)))

    def live_sessions(self, agent_name: str, stale_after: float | None = None) -> list[DesignSession]:
        """The sessions of ``agent_name`` whose heartbeat is younger than ``stale_after``
        seconds (default ``STALE_AFTER_SECONDS``)."""
        stale_after = STALE_AFTER_SECONDS if stale_after is None else stale_after
        with self._read() as session:
            cutoff = _db_now(session) - timedelta(seconds=stale_after)
            rows = session.scalars(
                select(DesignSessionRow)
                .where(DesignSessionRow.agent_name == agent_name,
                       DesignSessionRow.heartbeat_at >= cutoff)
                .order_by(DesignSessionRow.started_at)
            )
            return [to_model(DesignSession, row) for row in rows]

    # ---- per-user scores --------------------------------------------------------------

    def put_user_scores(
        self, experiment_id: int, user_ids: np.ndarray, scores: np.ndarray
    ) -> None:
        """Store (or replace) the per-user validation scores of an experiment.

        ``user_ids`` and ``scores`` are 1-D and of equal length (``ValueError`` otherwise);
        they are kept as int64 and float64. Raises ``NotFoundError`` for a missing experiment.
        """
        users = np.ascontiguousarray(user_ids, dtype=np.int64)
        values = np.ascontiguousarray(scores, dtype=np.float64)
        if users.ndim != 1 or users.shape != values.shape:
            raise ValueError(f"user_ids {users.shape} and scores {values.shape} must be 1-D "
                             "and of equal length")
        with self._write() as session:
            experiment_row(session, experiment_id)
            row = session.get(UserScoresRow, experiment_id) or UserScoresRow(
                experiment_id=experiment_id
            )
            row.user_ids, row.scores = _npy(users), _npy(values)
            session.add(row)

    def get_user_scores(self, experiment_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(user_ids int64, scores float64)`` of an experiment. Raises ``NotFoundError``."""
        with self._read() as session:
            row = session.get(UserScoresRow, experiment_id)
            if row is None:
                raise NotFoundError(f"experiment {experiment_id} has no per-user scores")
            return _from_npy(row.user_ids), _from_npy(row.scores)

    # ---- sealed test metrics ----------------------------------------------------------

    def set_test_metrics(
        self, experiment_id: int, metrics: dict[str, Any], segments: dict[str, Any]
    ) -> None:
        """Store (or replace) the sealed test-split metrics of an experiment.

        Kept in their own table: they never appear on ``Experiment`` read models.
        """
        with self._write() as session:
            experiment_row(session, experiment_id)
            row = session.get(TestMetricsRow, experiment_id) or TestMetricsRow(
                experiment_id=experiment_id
            )
            row.metrics, row.segments, row.created_at = dict(metrics), dict(segments), utcnow()
            session.add(row)

    def set_test_verdict(self, experiment_id: int, verdict: dict[str, Any]) -> None:
        """Store the sealed test's veto check (candidate vs parent) next to its metrics.
        Raises ``NotFoundError`` if the experiment has no sealed test metrics yet."""
        with self._write() as session:
            row = session.get(TestMetricsRow, experiment_id)
            if row is None:
                raise NotFoundError(f"experiment {experiment_id} has no sealed test metrics")
            row.verdict = dict(verdict)

    def get_test_metrics(self, experiment_id: int) -> dict[str, Any] | None:
        """``{"metrics", "segments", "verdict"}`` of the sealed test, or ``None`` if not run."""
        with self._read() as session:
            row = session.get(TestMetricsRow, experiment_id)
            return None if row is None else {"metrics": row.metrics, "segments": row.segments,
                                             "verdict": row.verdict}


def _db_now(session: Session) -> datetime:
    """The database server's clock on PostgreSQL (shared by every machine), else this one's."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.now())).astimezone(UTC)
    return utcnow()


def _dead_here(host: str, pid: int) -> bool:
    """Whether a session of this host ran under a process that no longer exists."""
    if host != socket.gethostname()[:255]:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, another user's
        return False
    return False


def _beat(session: Session, session_id: str, agent_name: str, now: datetime) -> DesignSessionRow:
    row = session.get(DesignSessionRow, session_id)
    if row is None:
        row = DesignSessionRow(session_id=session_id, agent_name=agent_name, host=socket.gethostname()[:255],
                               pid=os.getpid(), started_at=now)
        session.add(row)
    row.heartbeat_at = now
    session.flush()
    return row


def _filtered(
    query: Select[Any],
    agent_name: str | None,
    status: StatusFilter,
    promotion: PromotionFilter = None,
    dataset_key: str | None = None,
    family: str | None = None,
    stage: str | None = None,
) -> Select[Any]:
    equal = {"agent_name": agent_name, "dataset_key": dataset_key, "family": family,
             "stage": stage}
    for column, value in equal.items():
        if value is not None:
            query = query.where(getattr(ExperimentRow, column) == value)
    if status is not None:
        query = query.where(ExperimentRow.status.in_(_values(ExperimentStatus, status)))
    if promotion is not None:
        query = query.where(ExperimentRow.promotion.in_(_values(PromotionState, promotion)))
    return query


def _values(enum: type[ExperimentStatus] | type[PromotionState], given: Any) -> list[str]:
    items = [given] if isinstance(given, (str, enum)) else list(given)
    return [enum(item).value for item in items]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _from_npy(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)
