"""Experiments record the outer (pipeline) reward and the sandbox isolation tier.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default) works in place on SQLite and PostgreSQL.
    op.add_column("experiments", sa.Column("outer_reward", sa.Float(), nullable=True))
    op.add_column("experiments", sa.Column("sandbox_tier", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("sandbox_tier")
        batch.drop_column("outer_reward")
