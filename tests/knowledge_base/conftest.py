"""Fixtures of the knowledge-base contract suite: one ``store`` per backend.

Backends: a SQLite file, ``Store.in_memory()`` and PostgreSQL. Tests marked
``processes`` (several processes open the store's URL) and tests of ``store_url`` (a URL
that is opened again) run on the first and the last only: an in-memory database is one
process's own.

PostgreSQL is the real server at ``AGENTICRS_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); the run works in its own schemas
``kb_<UTC time>_<random>`` (through ``options=-csearch_path``), dropped afterwards; a run
killed before dropping them leaves them behind, so each run first drops those older than
a day. Without a reachable server the PostgreSQL tests skip, except under ``CI=true``
where they fail.
"""
from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from knowledge_base import AgentSpec, ExperimentDraft, Store
from knowledge_base.rows import Base

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA_MAX_AGE = timedelta(days=1)
_SCHEMA_NAME = re.compile(r"^kb_(\d{14})_[0-9a-f]{8}$")
SHARED_BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]
BACKENDS = [SHARED_BACKENDS[0], pytest.param("memory"), SHARED_BACKENDS[1]]


def pg_admin_url() -> str:
    return os.environ.get("AGENTICRS_TEST_PG_URL", DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def pg_reachable() -> str:
    """The admin URL of the PostgreSQL server; skips (or fails under CI) if unreachable."""
    url = pg_admin_url()
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        reason = f"PostgreSQL not reachable at {url} ({type(e.orig or e).__name__}); " \
                 "set AGENTICRS_TEST_PG_URL or start the server"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " -- CI=true: PostgreSQL tests must run", pytrace=False)
        pytest.skip(reason)
    finally:
        engine.dispose()
    sweep_old_schemas(url)
    return url


def new_schema_name(now: datetime | None = None) -> str:
    """``kb_<UTC yyyymmddHHMMSS>_<8 hex>``: unique, and dated for ``sweep_old_schemas``."""
    return f"kb_{(now or datetime.now(UTC)):%Y%m%d%H%M%S}_{uuid.uuid4().hex[:8]}"


def sweep_old_schemas(admin_url: str, max_age: timedelta = SCHEMA_MAX_AGE) -> list[str]:
    """Drop the test schemas that killed runs left behind (named by ``new_schema_name``,
    older than ``max_age``); returns their names. Other schemas are never touched."""
    cutoff = datetime.now(UTC) - max_age
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            names = connection.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kb\\_%'")).scalars()
            old = [n for n in names if (m := _SCHEMA_NAME.match(n))
                   and datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC) < cutoff]
            for name in old:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()
    return old


@contextmanager
def _fresh_pg_schema(admin_url: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema; the schema is dropped on exit."""
    schema = new_schema_name()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_schema_url(pg_reachable: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test."""
    with _fresh_pg_schema(pg_reachable) as url:
        yield url


@pytest.fixture(scope="session")
def pg_migrated_url(pg_reachable: str) -> Iterator[str]:
    """One PostgreSQL schema for the whole run, migrated to head once (tests truncate it)."""
    with _fresh_pg_schema(pg_reachable) as url:
        with Store.open(url) as kb:
            kb.upgrade()
        yield url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``backend``: every backend, or the shareable ones for ``processes`` and ``store_url`` tests."""
    if "backend" in metafunc.fixturenames:
        shared = (metafunc.definition.get_closest_marker("processes") is not None
                  or "store_url" in metafunc.fixturenames)
        metafunc.parametrize("backend", SHARED_BACKENDS if shared else BACKENDS)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no schema) on each backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'kb' / 'knowledge.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An open, empty store at the newest schema, on each backend.

    SQLite: a new file per test. Memory: a new ``Store.in_memory()``. PostgreSQL: the
    run's schema, every table truncated (ids restart at 1), which is much faster than
    migrating a schema per test.
    """
    if backend == "memory":
        kb = Store.in_memory()
    elif backend == "sqlite":
        kb = Store.open(f"sqlite:///{tmp_path / 'kb' / 'knowledge.db'}")
        kb.upgrade()
    else:
        kb = Store.open(request.getfixturevalue("pg_migrated_url"))
        _truncate_all(kb)
    yield kb
    kb.close()


def _truncate_all(kb: Store) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with kb._engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def agent(store: Store) -> str:
    """The name of an agent that exists in ``store``."""
    store.upsert_agent(AgentSpec(name="pop", family="popularity", parameter_space={"k": [1, 2]}))
    return "pop"


def make_draft(**changes: object) -> ExperimentDraft:
    """An experiment draft of agent "pop" with sensible defaults, overridden by ``changes``."""
    values: dict[str, object] = {
        "agent_name": "pop", "session_id": "s1", "proposer": "search",
        "code_hash": "h0", "dataset_key": "synthetic/user_temporal", "family": "popularity",
    }
    return ExperimentDraft(**{**values, **changes})


@pytest.fixture(name="draft")
def draft_fixture() -> Callable[..., ExperimentDraft]:
    """``draft(**changes)``: an ``ExperimentDraft`` of agent "pop" with defaults."""
    return make_draft
