"""Fixtures of the knowledge-base contract suite: one ``store`` per backend.

PostgreSQL is the real server at ``AGENTICRS_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); every test gets a fresh schema
``kb_<random>`` (through ``options=-csearch_path``) that is dropped afterwards. Without a
reachable server the PostgreSQL tests skip, except under ``CI=true`` where they fail.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from knowledge_base import AgentSpec, ExperimentDraft, Store

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


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
    return url


@pytest.fixture
def pg_schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema; the schema is dropped afterwards."""
    admin_url = request.getfixturevalue("pg_reachable")
    schema = f"kb_{uuid.uuid4().hex[:12]}"
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


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no schema) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kb' / 'knowledge.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store at the newest schema, on each backend."""
    kb = Store.open(store_url)
    kb.upgrade()
    yield kb
    kb.close()


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
