"""Online false-discovery control: the stream of promotion tests per subject, and the
evidence that decided each promotion; the sealed test's veto verdict (kept with the sealed
metrics, never on experiments).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("experiments", sa.Column("evidence", sa.JSON(), nullable=True))
    op.add_column("test_metrics", sa.Column("verdict", sa.JSON(), nullable=True))
    op.create_table(
        "error_control_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(160), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("procedure", sa.String(32), nullable=False),
        sa.Column("target_fdr", sa.Float(), nullable=False),
        sa.Column("initial_wealth", sa.Float(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("discovery", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="SET NULL",
                                name="fk_error_control_tests_experiment_id_experiments"),
        sa.PrimaryKeyConstraint("id", name="pk_error_control_tests"),
    )
    op.create_index("uq_error_control_tests_subject_seq", "error_control_tests",
                    ["subject", "seq"], unique=True)
    op.create_index("uq_error_control_tests_experiment", "error_control_tests",
                    ["experiment_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_error_control_tests_experiment", table_name="error_control_tests")
    op.drop_index("uq_error_control_tests_subject_seq", table_name="error_control_tests")
    op.drop_table("error_control_tests")
    with op.batch_alter_table("test_metrics") as batch:
        batch.drop_column("verdict")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("evidence")
