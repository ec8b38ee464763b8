"""The first schema: agents, versions, experiments, code, scores, sealed test metrics,
failures, LLM calls, reviews, insights.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _created() -> sa.Column:
    return sa.Column("created_at", TS, nullable=False)


def _fk(column: str, target: str, ondelete: str | None = None, **kw: object) -> sa.Column:
    return sa.Column(column, sa.Integer(), sa.ForeignKey(target, ondelete=ondelete), **kw)


def upgrade() -> None:
    _agents()
    _experiments()
    _agent_versions()
    _blobs()
    _records()


def _agents() -> None:
    op.create_table(
        "agents",
        _id(),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("family", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("interface", sa.Text(), nullable=False),
        sa.Column("inner_reward", sa.String(64), nullable=False),
        sa.Column("parameter_space", sa.JSON(), nullable=False),
        _created(),
    )


def _experiments() -> None:
    op.create_table(
        "experiments",
        _id(),
        sa.Column("agent_name", sa.String(128), sa.ForeignKey("agents.name"), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("parent_version_id", sa.Integer(), nullable=True),
        _fk("parent_experiment_id", "experiments.id", "SET NULL", nullable=True),
        sa.Column("proposer", sa.String(32), nullable=False),
        sa.Column("proposal", sa.JSON(), nullable=False),
        sa.Column("family", sa.String(128), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("dataset_key", sa.String(256), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("promotion", sa.String(24), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("inner_reward", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("effect_size", sa.Float(), nullable=True),
        sa.Column("fit_seconds", sa.Float(), nullable=True),
        sa.Column("wall_seconds", sa.Float(), nullable=True),
        sa.Column("peak_memory_mb", sa.Float(), nullable=True),
        _created(),
        sa.Column("finished_at", TS, nullable=True),
    )
    for name, columns in [
        ("ix_experiments_agent_created", ["agent_name", "created_at"]),
        ("ix_experiments_agent_id", ["agent_name", "id"]),
        ("ix_experiments_agent_status", ["agent_name", "status"]),
        ("ix_experiments_lookup", ["agent_name", "dataset_key", "code_hash", "stage"]),
        ("ix_experiments_status", ["status"]),
        ("ix_experiments_created", ["created_at"]),
        ("ix_experiments_session", ["session_id"]),
    ]:
        op.create_index(name, "experiments", columns)


def _agent_versions() -> None:
    op.create_table(
        "agent_versions",
        _id(),
        sa.Column("agent_name", sa.String(128), sa.ForeignKey("agents.name"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(160), nullable=False, unique=True),
        sa.Column("git_sha", sa.String(64), nullable=False),
        sa.Column("family", sa.String(128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        _fk("parent_version_id", "agent_versions.id", "SET NULL", nullable=True),
        _fk("experiment_id", "experiments.id", "SET NULL", nullable=True),
        sa.Column("is_champion", sa.Boolean(), nullable=False),
        _created(),
    )
    op.create_index(
        "uq_agent_versions_agent_number", "agent_versions", ["agent_name", "number"], unique=True
    )


def _blobs() -> None:
    op.create_table(
        "candidate_code",
        sa.Column("code_hash", sa.String(128), primary_key=True),
        sa.Column("code", sa.Text(), nullable=False),
        _created(),
    )
    op.create_table(
        "user_scores",
        _fk("experiment_id", "experiments.id", "CASCADE", primary_key=True),
        sa.Column("user_ids", sa.LargeBinary(), nullable=False),
        sa.Column("scores", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "test_metrics",
        _fk("experiment_id", "experiments.id", "CASCADE", primary_key=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        _created(),
    )


def _records() -> None:
    _failures()
    _llm_calls()
    op.create_table(
        "reviews",
        _id(),
        _fk("experiment_id", "experiments.id", "CASCADE", nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        _created(),
    )
    op.create_index("ix_reviews_experiment_id", "reviews", ["experiment_id"])
    op.create_table(
        "insights",
        _id(),
        sa.Column("agent_name", sa.String(128), sa.ForeignKey("agents.name"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        _created(),
    )
    op.create_index("ix_insights_agent_id", "insights", ["agent_name", "id"])


def _failures() -> None:
    op.create_table(
        "failures",
        _id(),
        _fk("experiment_id", "experiments.id", "CASCADE", nullable=True),
        sa.Column("agent_name", sa.String(128), sa.ForeignKey("agents.name"), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("traceback_tail", sa.Text(), nullable=False),
        _created(),
    )
    op.create_index("ix_failures_experiment_id", "failures", ["experiment_id"])
    op.create_index("ix_failures_agent_id", "failures", ["agent_name", "id"])


def _llm_calls() -> None:
    op.create_table(
        "llm_calls",
        _id(),
        sa.Column("agent_name", sa.String(128), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        _fk("experiment_id", "experiments.id", "SET NULL", nullable=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _created(),
    )
    op.create_index("ix_llm_calls_experiment_id", "llm_calls", ["experiment_id"])
    op.create_index("ix_llm_calls_agent_id", "llm_calls", ["agent_name", "id"])
    op.create_index("ix_llm_calls_session", "llm_calls", ["session_id"])


def downgrade() -> None:
    for table in [
        "insights", "reviews", "llm_calls", "failures", "test_metrics", "user_scores",
        "candidate_code", "agent_versions", "experiments", "agents",
    ]:
        op.drop_table(table)
