"""Pipelines: the component versions each pipeline version pins, and the phases of
``agenticrs evolve`` (individual or compositional, with the reason each ended).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_components",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("branch", sa.Integer(), nullable=True),
        sa.Column("agent_name", sa.String(128), nullable=True),
        sa.Column("agent_version_id", sa.Integer(), nullable=True),
        sa.Column("family", sa.String(128), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["agent_versions.id"],
                                name="fk_pipeline_components_version_id_agent_versions"),
        sa.ForeignKeyConstraint(["agent_version_id"], ["agent_versions.id"],
                                name="fk_pipeline_components_agent_version_id_agent_versions"),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_components"),
    )
    op.create_index("ix_pipeline_components_version_id", "pipeline_components", ["version_id"])
    op.create_table(
        "evolve_phases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("iterations", sa.Integer(), nullable=False),
        sa.Column("promotions", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["pipeline"], ["agents.name"], name="fk_evolve_phases_pipeline_agents"),
        sa.PrimaryKeyConstraint("id", name="pk_evolve_phases"),
    )
    op.create_index("ix_evolve_phases_pipeline", "evolve_phases", ["pipeline"])


def downgrade() -> None:
    op.drop_index("ix_evolve_phases_pipeline", table_name="evolve_phases")
    op.drop_table("evolve_phases")
    op.drop_index("ix_pipeline_components_version_id", table_name="pipeline_components")
    op.drop_table("pipeline_components")
