"""Engines for the knowledge base: URL resolution, SQLite pragmas, JSON encoding.

SQLite is made safe for several processes: WAL journal, a 30 s busy timeout, foreign keys
on, and write transactions opened with ``BEGIN IMMEDIATE`` so two writers queue on the
lock instead of failing with "database is locked" when a reader upgrades to a writer.

``MEMORY_URL`` (``sqlite://``) is one private in-memory database per engine: every
connection of the engine is the same one (so the data outlives a checkout) and it is gone
when the engine is disposed. It serves one process; another process opening the URL gets
an empty database of its own.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from knowledge_base.errors import KnowledgeBaseError, unavailable

__all__ = ["MEMORY_URL", "WRITE_OPTION", "create", "default_url", "is_memory", "safe_url"]

MEMORY_URL = "sqlite://"
WRITE_OPTION = "kb_write"  # execution option marking a write transaction
_BUSY_TIMEOUT_MS = 30_000
_PG_CONNECT_TIMEOUT_S = 10


def default_url(workspace: Path) -> str:
    """The default knowledge base of a workspace: the SQLite file ``workspace/knowledge.db``."""
    return f"sqlite:///{(Path(workspace) / 'knowledge.db').resolve()}"


def safe_url(url: str | URL) -> str:
    """``url`` as text with any password replaced by ``***``, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def create(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    For a SQLite file, the parent folder is created (``DatabaseUnavailableError`` if it
    cannot be). Raises ``KnowledgeBaseError`` for a malformed URL or an unknown driver;
    does not connect yet.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = _PG_CONNECT_TIMEOUT_S
    return _engine(parsed, connect_args=connect_args, pool_pre_ping=True)


def is_memory(url: str | URL) -> bool:
    """Whether ``url`` names an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``)."""
    parsed = make_url(url) if isinstance(url, str) else url
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as e:
        raise KnowledgeBaseError(
            f"not a database URL: {url!r}; use sqlite:///path/to/knowledge.db "
            "or postgresql+psycopg://user@host:5432/db"
        ) from e


def _engine(url: URL, **kwargs: Any) -> Engine:
    try:
        return create_engine(url, json_serializer=dumps, **kwargs)
    except (NoSuchModuleError, ImportError) as e:
        raise KnowledgeBaseError(
            f"no driver for {safe_url(url)}: use sqlite:/// or postgresql+psycopg://"
        ) from e


def _sqlite_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {"timeout": _BUSY_TIMEOUT_MS / 1000}
    if is_memory(url):
        # One connection for the engine's whole life: a new one would be a new, empty database.
        engine = _engine(url, connect_args={**connect_args, "check_same_thread": False},
                         poolclass=StaticPool)
    else:
        if url.database and not url.database.startswith("file:"):
            try:
                Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise unavailable(safe_url(url), e) from e
        engine = _engine(url, connect_args=connect_args)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module; _on_sqlite_begin emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL mode, much faster
    cursor.close()


def _on_sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def dumps(value: Any) -> str:
    """JSON text of ``value``; NaN and infinities become the strings "NaN", "Infinity",
    "-Infinity" (PostgreSQL rejects the bare tokens; pydantic floats read the strings back)."""
    return json.dumps(_finite(value), allow_nan=False, default=_numpy_scalar)


def _numpy_scalar(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
    if item is None:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return _finite(item())


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
