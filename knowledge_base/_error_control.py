"""The stream of promotion tests per subject, for online false-discovery control.

The procedure itself (how alpha follows from the earlier tests) is the caller's: the store
guarantees that a subject's tests are numbered without gaps or duplicates and that each
one sees every earlier test, whatever the number of processes or machines writing.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from knowledge_base._base import StoreBase, experiment_row, to_model
from knowledge_base.errors import NotFoundError
from knowledge_base.models import ErrorControlTest
from knowledge_base.rows import ErrorControlTestRow

AlphaRule = Callable[[Sequence[ErrorControlTest]], float]


class ErrorControlMixin(StoreBase):
    """Online FDR state of the ``Store``: one row per comparison of a subject."""

    def record_error_control_test(
        self, subject: str, experiment_id: int, p_value: float, effect_ok: bool,
        alpha_rule: AlphaRule, procedure: str, target_fdr: float, initial_wealth: float,
    ) -> ErrorControlTest:
        """Append the test of ``experiment_id`` to ``subject``'s stream, at the alpha that
        ``alpha_rule(earlier tests, oldest first)`` grants; ``passed`` = ``effect_ok and
        p_value <= alpha``. Idempotent: an experiment already tested returns its row.

        Serialised per subject (SQLite: the write lock; PostgreSQL: an advisory lock), so
        two sessions on one subject share one alpha budget. Raises ``NotFoundError`` for
        an unknown experiment.
        """
        with self._write() as session:
            _lock_subject(session, subject)
            experiment_row(session, experiment_id)
            done = session.scalar(select(ErrorControlTestRow).where(
                ErrorControlTestRow.experiment_id == experiment_id))
            if done is not None:
                return to_model(ErrorControlTest, done)
            earlier = [to_model(ErrorControlTest, row) for row in session.scalars(
                select(ErrorControlTestRow).where(ErrorControlTestRow.subject == subject)
                .order_by(ErrorControlTestRow.seq))]
            alpha = float(alpha_rule(earlier))
            row = ErrorControlTestRow(
                subject=subject, seq=len(earlier) + 1, experiment_id=experiment_id,
                procedure=procedure, target_fdr=target_fdr, initial_wealth=initial_wealth,
                alpha=alpha, p_value=float(p_value), passed=bool(effect_ok and p_value <= alpha))
            session.add(row)
            session.flush()
            return to_model(ErrorControlTest, row)

    def set_discovery(self, test_id: int, discovery: bool) -> ErrorControlTest:
        """Record whether a passed test became a discovery (its finalist was confirmed)."""
        with self._write() as session:
            row = session.get(ErrorControlTestRow, test_id)
            if row is None:
                raise NotFoundError(f"no error-control test with id {test_id} in the knowledge base")
            row.discovery = bool(discovery)
            session.flush()
            return to_model(ErrorControlTest, row)

    def list_error_control_tests(self, subject: str) -> list[ErrorControlTest]:
        """Every test of ``subject``, oldest first."""
        with self._read() as session:
            rows = session.scalars(select(ErrorControlTestRow).where(
                ErrorControlTestRow.subject == subject).order_by(ErrorControlTestRow.seq))
            return [to_model(ErrorControlTest, row) for row in rows]

    def error_control_test_of(self, experiment_id: int) -> ErrorControlTest | None:
        """The test that judged ``experiment_id``, or ``None``."""
        with self._read() as session:
            row = session.scalar(select(ErrorControlTestRow).where(
                ErrorControlTestRow.experiment_id == experiment_id))
            return None if row is None else to_model(ErrorControlTest, row)

    def count_error_control_tests(self, subject: str) -> int:
        with self._read() as session:
            return int(session.scalar(select(func.count(ErrorControlTestRow.id)).where(
                ErrorControlTestRow.subject == subject)) or 0)


def _lock_subject(session: Session, subject: str) -> None:
    """Serialise writers of one subject. SQLite's BEGIN IMMEDIATE already holds the database
    write lock; PostgreSQL takes a transaction-scoped advisory lock on the subject's name."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"error-control:{subject}"})
