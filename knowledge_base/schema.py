"""Schema management through Alembic, with a configuration built in code.

The migration scripts live in ``knowledge_base/migrations`` (package data); no
``alembic.ini`` is needed anywhere.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from knowledge_base.engine import WRITE_OPTION

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported inside the functions: it costs ~0.6 s and most commands only read.

__all__ = ["alembic_config", "current_revision", "head_revision", "known_revisions", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations, bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision this code knows (the schema ``rows.py`` describes)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration scripts shipped"
    return head


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision id shipped with this code."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` when it has no schema yet."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create the schema or bring it to ``revision``, in one transaction where the backend
    allows it (both SQLite and PostgreSQL have transactional DDL)."""
    from alembic import command

    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        command.upgrade(alembic_config(connection), revision)
