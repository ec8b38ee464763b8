"""The knowledge base's exceptions: one shallow tree, rooted at ``KnowledgeBaseError``.

SQLAlchemy and driver exceptions never leave the package: ``translate`` maps them onto this
tree at the boundary and callers re-raise with ``raise translate(e, url) from e``.
"""
from __future__ import annotations

from sqlalchemy import exc

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
    return DatabaseUnavailableError(
        f"cannot open the knowledge base at {safe_url} ({_first_line(error)}): "
        "check that the server is running and the URL, user and database are right, "
        "or pass another one with --db / AGENTICRS_DB"
    )


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
