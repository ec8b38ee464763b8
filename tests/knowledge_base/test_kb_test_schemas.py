"""The PostgreSQL test fixtures clean up after killed runs (issue 13 item 14)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.knowledge_base.conftest import new_schema_name, sweep_old_schemas

pytestmark = pytest.mark.postgres


def _schemas(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        names = set(connection.execute(text("SELECT nspname FROM pg_namespace")).scalars())
    engine.dispose()
    return names


def test_schemas_a_killed_run_left_are_swept_after_a_day(pg_reachable: str) -> None:
    old = new_schema_name(datetime.now(UTC) - timedelta(days=2))
    young = new_schema_name(datetime.now(UTC) - timedelta(hours=1))
    engine = create_engine(pg_reachable, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for name in (old, young, "kb_not_ours"):
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
            connection.execute(text(f'CREATE TABLE "{name}".t (x int)'))
    try:
        assert old in sweep_old_schemas(pg_reachable)
        left = _schemas(pg_reachable)
        assert old not in left and young in left and "kb_not_ours" in left
    finally:
        with engine.connect() as connection:
            for name in (old, young, "kb_not_ours"):
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()
