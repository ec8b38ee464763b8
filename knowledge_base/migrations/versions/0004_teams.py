"""Teams on one database: versions keep their code and manifest (the knowledge base is the
source of truth, git repositories are replicas), at most one champion per agent (a partial
unique index), and design sessions with a heartbeat (liveness across machines).

A database where concurrent writers left two champions of an agent keeps the
highest-numbered one as champion.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ONE_CHAMPION = sa.text("is_champion")


def upgrade() -> None:
    op.add_column("agent_versions", sa.Column("code_hash", sa.String(128), nullable=True))
    op.add_column("agent_versions", sa.Column("manifest", sa.JSON(), nullable=True))
    _keep_newest_champion()
    op.create_index("uq_agent_versions_champion", "agent_versions", ["agent_name"], unique=True,
                    postgresql_where=_ONE_CHAMPION, sqlite_where=_ONE_CHAMPION)
    op.create_table(
        "design_sessions",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("agent_name", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_design_sessions"),
    )
    op.create_index("ix_design_sessions_agent_name", "design_sessions", ["agent_name"])


def _keep_newest_champion() -> None:
    versions = sa.table("agent_versions", sa.column("id", sa.Integer), sa.column("agent_name", sa.String),
                        sa.column("number", sa.Integer), sa.column("is_champion", sa.Boolean))
    connection = op.get_bind()
    champions = connection.execute(
        sa.select(versions.c.id, versions.c.agent_name)
        .where(versions.c.is_champion == sa.true())
        .order_by(versions.c.agent_name, versions.c.number.desc())
    ).all()
    seen: set[str] = set()
    demoted = []
    for version_id, agent in champions:
        if agent in seen:
            demoted.append(version_id)
        seen.add(agent)
    if demoted:
        connection.execute(versions.update().where(versions.c.id.in_(demoted)).values(is_champion=False))


def downgrade() -> None:
    op.drop_index("ix_design_sessions_agent_name", table_name="design_sessions")
    op.drop_table("design_sessions")
    op.drop_index("uq_agent_versions_champion", table_name="agent_versions")
    with op.batch_alter_table("agent_versions") as batch:
        batch.drop_column("manifest")
        batch.drop_column("code_hash")
