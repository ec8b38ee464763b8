"""Alembic environment: runs on the connection handed over by ``knowledge_base.schema``.

Online mode only; the caller puts an open SQLAlchemy ``Connection`` in
``config.attributes["connection"]`` so migrations see the same pragmas and search_path
as the store.
"""
from __future__ import annotations

from alembic import context

from knowledge_base.rows import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through knowledge_base.schema.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
