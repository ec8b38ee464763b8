"""SQLAlchemy ORM rows of the knowledge base (the schema at Alembic head).

``*Row`` classes never leave this package: the store converts them into the frozen read
models of ``knowledge_base.models``. Enums are stored as their string values. Any change
here needs a new revision in ``knowledge_base/migrations/versions``; a test compares this
metadata with the migrated schema.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL keeps the zone (timestamptz); SQLite keeps naive UTC text, so the zone is
    dropped on write and put back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the knowledge base stores UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, timezone-aware UTC: the clock of every ``created_at``."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AgentRow(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    family: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text)
    interface: Mapped[str] = mapped_column(Text)
    inner_reward: Mapped[str] = mapped_column(String(64))
    parameter_space: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExperimentRow(Base):
    """One evaluation of one candidate. ``parent_version_id`` is a plain indexed integer:
    a foreign key would make a cycle with ``agent_versions.experiment_id``."""

    __tablename__ = "experiments"
    __table_args__ = (
        Index("ix_experiments_agent_created", "agent_name", "created_at"),
        Index("ix_experiments_agent_id", "agent_name", "id"),
        Index("ix_experiments_agent_status", "agent_name", "status"),
        Index("ix_experiments_lookup", "agent_name", "dataset_key", "code_hash", "stage"),
        Index("ix_experiments_status", "status"),
        Index("ix_experiments_created", "created_at"),
        Index("ix_experiments_session", "session_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(128), ForeignKey("agents.name"))
    session_id: Mapped[str] = mapped_column(String(64))
    parent_version_id: Mapped[int | None] = mapped_column(Integer)
    parent_experiment_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="SET NULL")
    )
    proposer: Mapped[str] = mapped_column(String(32))
    proposal: Mapped[dict[str, Any]] = mapped_column(JSON)
    family: Mapped[str | None] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    code_hash: Mapped[str] = mapped_column(String(128))
    dataset_key: Mapped[str] = mapped_column(String(256))
    stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    promotion: Mapped[str] = mapped_column(String(24))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    segments: Mapped[dict[str, Any]] = mapped_column(JSON)
    inner_reward: Mapped[float | None] = mapped_column(Float)
    outer_reward: Mapped[float | None] = mapped_column(Float)  # revision 0002
    p_value: Mapped[float | None] = mapped_column(Float)
    effect_size: Mapped[float | None] = mapped_column(Float)
    fit_seconds: Mapped[float | None] = mapped_column(Float)
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    peak_memory_mb: Mapped[float | None] = mapped_column(Float)
    sandbox_tier: Mapped[str | None] = mapped_column(String(32))  # revision 0002
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # revision 0003
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ErrorControlTestRow(Base):
    """One comparison in a subject's stream of promotion tests (online FDR, revision 0003).

    ``seq`` numbers the subject's tests 1, 2, ...; the alpha of test ``seq`` depends only
    on the earlier rows, so a row is never changed after insertion except ``discovery``
    (NULL until the finalist's confirmation is decided).
    """

    __tablename__ = "error_control_tests"
    __table_args__ = (
        Index("uq_error_control_tests_subject_seq", "subject", "seq", unique=True),
        Index("uq_error_control_tests_experiment", "experiment_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(160))
    seq: Mapped[int] = mapped_column(Integer)
    experiment_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="SET NULL")
    )
    procedure: Mapped[str] = mapped_column(String(32))
    target_fdr: Mapped[float] = mapped_column(Float)
    initial_wealth: Mapped[float] = mapped_column(Float)
    alpha: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(default=False)
    discovery: Mapped[bool | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentVersionRow(Base):
    """A version of an agent. The knowledge base is its source of truth (revision 0004: its
    code, by ``code_hash`` in ``candidate_code``, and its manifest); git repositories of the
    workspaces sharing the database are replicas rebuilt from these. ``git_sha`` is the commit
    of the repository that first wrote it (commits differ between replicas)."""

    __tablename__ = "agent_versions"
    __table_args__ = (
        Index("uq_agent_versions_agent_number", "agent_name", "number", unique=True),
        # exactly one champion per agent, whatever the writers do (revision 0004)
        Index("uq_agent_versions_champion", "agent_name", unique=True,
              postgresql_where=text("is_champion"), sqlite_where=text("is_champion")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(128), ForeignKey("agents.name"))
    number: Mapped[int] = mapped_column(Integer)
    tag: Mapped[str] = mapped_column(String(160), unique=True)
    git_sha: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    parent_version_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agent_versions.id", ondelete="SET NULL")
    )
    experiment_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="SET NULL")
    )
    is_champion: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    code_hash: Mapped[str | None] = mapped_column(String(128))  # revision 0004
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # revision 0004


class DesignSessionRow(Base):
    """A live (or once live) design session: its heartbeat tells other processes sharing
    the database that its RUNNING experiments are not orphans (revision 0004)."""

    __tablename__ = "design_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(128), index=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CandidateCodeRow(Base):
    """Candidate source, deduplicated by content hash."""

    __tablename__ = "candidate_code"

    code_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    code: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserScoresRow(Base):
    """Per-user validation scores of an experiment, as two ``.npy`` blobs (int64, float64)."""

    __tablename__ = "user_scores"

    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    user_ids: Mapped[bytes] = mapped_column(LargeBinary)
    scores: Mapped[bytes] = mapped_column(LargeBinary)


class TestMetricsRow(Base):
    """Sealed test-split metrics, kept apart so no history query reads them by accident."""

    __tablename__ = "test_metrics"
    __test__ = False  # not a pytest class

    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    segments: Mapped[dict[str, Any]] = mapped_column(JSON)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # revision 0003: the veto check
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FailureRow(Base):
    __tablename__ = "failures"
    __table_args__ = (Index("ix_failures_agent_id", "agent_name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    agent_name: Mapped[str] = mapped_column(String(128), ForeignKey("agents.name"))
    kind: Mapped[str] = mapped_column(String(24))
    message: Mapped[str] = mapped_column(Text)
    traceback_tail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LLMCallRow(Base):
    __tablename__ = "llm_calls"
    __table_args__ = (
        Index("ix_llm_calls_agent_id", "agent_name", "id"),
        Index("ix_llm_calls_session", "session_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(128))
    session_id: Mapped[str] = mapped_column(String(64))
    experiment_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="SET NULL"), index=True
    )
    model: Mapped[str] = mapped_column(String(256))
    purpose: Mapped[str] = mapped_column(String(32))
    prompt: Mapped[str] = mapped_column(Text)
    response: Mapped[str] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(Float)
    latency_seconds: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewRow(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InsightRow(Base):
    __tablename__ = "insights"
    __table_args__ = (Index("ix_insights_agent_id", "agent_name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(128), ForeignKey("agents.name"))
    text: Mapped[str] = mapped_column(Text)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PipelineComponentRow(Base):
    """A component a pipeline version pins: an agent version, or a family with params (0005)."""

    __tablename__ = "pipeline_components"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, ForeignKey("agent_versions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    branch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    agent_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    agent_version_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("agent_versions.id"), nullable=True)
    family: Mapped[str | None] = mapped_column(String(128), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    quota: Mapped[int | None] = mapped_column(Integer, nullable=True)


class EvolvePhaseRow(Base):
    """One phase of ``agenticrs evolve`` (revision 0005); ``ended_at`` null while it runs."""

    __tablename__ = "evolve_phases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    pipeline: Mapped[str] = mapped_column(String(128), ForeignKey("agents.name"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    iterations: Mapped[int] = mapped_column(Integer, default=0)
    promotions: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
