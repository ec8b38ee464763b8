"""The knowledge base's exceptions: one shallow tree, rooted at ``KnowledgeBaseError``.

SQLAlchemy and driver exceptions never leave the package: ``translate`` maps them onto this
tree at the boundary and callers re-raise with ``raise translate(e, url) from e``.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import exc
from sqlalchemy.engine import make_url

__all__ = [
    "ConflictError",
    "DatabaseUnavailableError",
    "KnowledgeBaseError",
    "NotFoundError",
    "SchemaOutOfDateError",
    "translate",
]

# SQLSTATEs of PostgreSQL that mean "the schema is not what the code expects".
_PG_MISSING_SCHEMA = {"42P01", "42703"}  # undefined_table, undefined_column
_SQLITE_MISSING_SCHEMA = ("no such table", "no such column", "has no column named")
_SQLITE_DAMAGED = ("file is not a database", "database disk image is malformed")
_DISK_FULL = ("database or disk is full", "no space left on device", "disk full")
_READ_ONLY = ("attempt to write a readonly database", "read-only file system", "readonly database")


class KnowledgeBaseError(Exception):
    """Root of every error the knowledge base raises."""


class NotFoundError(KnowledgeBaseError):
    """A row that was asked for does not exist; the message says which one."""


class ConflictError(KnowledgeBaseError):
    """A write broke a uniqueness or reference rule (e.g. a version number already taken)."""


class DatabaseUnavailableError(KnowledgeBaseError):
    """The database could not be reached or opened; the message names the URL (no password)."""


class SchemaOutOfDateError(KnowledgeBaseError):
    """The database has no schema, or an older/newer one than this code expects."""


def translate(error: exc.SQLAlchemyError, safe_url: str) -> KnowledgeBaseError:
    """Map a SQLAlchemy error onto the tree above.

    ``safe_url`` must already have its password hidden; it is put in the message.
    """
    if (problem := _file_problem(error, safe_url)) is not None:
        return problem
    if _is_missing_schema(error):
        return SchemaOutOfDateError(
            f"the knowledge base at {safe_url} has no schema or an old one "
            f"({_first_line(error)}): run `agenticrs init` to create or upgrade it"
        )
    if isinstance(error, exc.IntegrityError):
        return ConflictError(f"write rejected by {safe_url}: {_first_line(error)}")
    if _is_unavailable(error):
        return unavailable(safe_url, error)
    return KnowledgeBaseError(f"database error at {safe_url}: {_first_line(error)}")


def unavailable(safe_url: str, error: BaseException) -> DatabaseUnavailableError:
    """The error to raise when ``safe_url`` cannot be connected to or opened."""
    if (problem := _file_problem(error, safe_url)) is not None:
        return problem
    if safe_url.startswith("sqlite"):
        hint = "check that its folder exists and is writable, or pass another URL with --db / AGENTICRS_DB"
    else:
        hint = ("check that the server is running and the URL, user and database are right, "
                "or pass another one with --db / AGENTICRS_DB")
    return DatabaseUnavailableError(f"cannot open the knowledge base at {safe_url} ({_first_line(error)}): {hint}")


def _file_problem(error: BaseException, safe_url: str) -> DatabaseUnavailableError | None:
    """A damaged, full or read-only database file: errors whose fix is not "check the server"."""
    text = str(getattr(error, "orig", None) or error).lower()
    detail = _first_line(error)
    if any(marker in text for marker in _SQLITE_DAMAGED):
        return DatabaseUnavailableError(
            f"the knowledge base file at {safe_url} is damaged ({detail}): restore it from a backup, "
            "or move it away and run `agenticrs init` to start a new one"
        )
    if any(marker in text for marker in _DISK_FULL) or ("disk i/o error" in text and _no_space(safe_url)):
        return DatabaseUnavailableError(
            f"the knowledge base at {safe_url} cannot be written: the disk is full ({detail}); "
            "free some space, then run the same command again (what was recorded is kept)"
        )
    if any(marker in text for marker in _READ_ONLY):
        return DatabaseUnavailableError(
            f"the knowledge base at {safe_url} is read-only ({detail}): make the file and its folder "
            "writable, or pass another URL with --db / AGENTICRS_DB"
        )
    return None


def _no_space(safe_url: str) -> bool:
    """SQLite reports a full disk as a plain "disk I/O error" in some calls: look at the folder."""
    try:
        database = make_url(safe_url).database
        if not safe_url.startswith("sqlite") or not database:
            return False
        return os.statvfs(Path(database).parent).f_bavail == 0
    except (OSError, ValueError, exc.ArgumentError):
        return False


def _is_missing_schema(error: exc.SQLAlchemyError) -> bool:
    orig = getattr(error, "orig", None)
    if getattr(orig, "sqlstate", None) in _PG_MISSING_SCHEMA:
        return True
    text = str(orig or error).lower()
    return any(marker in text for marker in _SQLITE_MISSING_SCHEMA)


def _is_unavailable(error: exc.SQLAlchemyError) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    text = str(getattr(error, "orig", None) or error).lower()
    return isinstance(error, exc.OperationalError) and (
        "unable to open" in text or "connection" in text or "could not" in text
    )


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__
