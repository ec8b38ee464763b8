"""``Store``: the one entry point to the knowledge base.

Open it with ``Store.open(url)``; ``upgrade()`` creates or migrates the schema (what
``agenticrs init`` runs); other commands call ``check_schema()`` first. Every write is one
transaction; readers get frozen models from ``knowledge_base.models``; missing rows raise
``NotFoundError``; all timestamps are timezone-aware UTC. The store is safe to use from
several processes on the same SQLite file (each process opens its own ``Store``);
``Store.in_memory()`` is the same store in one process's memory.
"""
from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from knowledge_base import engine as engines
from knowledge_base import schema
from knowledge_base._agents import AgentsMixin
from knowledge_base._error_control import ErrorControlMixin
from knowledge_base._experiments import ExperimentsMixin
from knowledge_base._pipelines import PipelinesMixin
from knowledge_base._records import RecordsMixin
from knowledge_base.errors import SchemaOutOfDateError, translate, unavailable

__all__ = ["Store"]

log = logging.getLogger(__name__)


class Store(AgentsMixin, ExperimentsMixin, RecordsMixin, ErrorControlMixin, PipelinesMixin):
    """The knowledge base on SQLite or PostgreSQL (see the mixins for the entity API)."""

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url`` (``sqlite:///path`` creates the folder and file; ``sqlite://``
        is a private in-memory database, see ``in_memory``).

        Raises ``DatabaseUnavailableError`` if the database cannot be reached, and
        ``KnowledgeBaseError`` for a malformed URL. Does not create the schema: see
        ``upgrade``.
        """
        engine = engines.create(url)
        safe = engines.safe_url(url)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as e:
            engine.dispose()
            raise unavailable(safe, e) from e
        log.debug("opened knowledge base %s", safe)
        return cls(engine, safe)

    @classmethod
    def in_memory(cls) -> Store:
        """A new, empty store at the newest schema that lives in this process's memory only
        (for tests and throwaway runs; gone at ``close``; threads take turns)."""
        store = cls.open(engines.MEMORY_URL)
        store.upgrade()
        return store

    def upgrade(self, revision: str = "head") -> None:
        """Create the schema, or migrate it to ``revision`` (default: the newest); running it
        again is a no-op. Data is kept. (An older ``revision`` is for migration tests.)"""
        try:
            schema.upgrade(self._engine, revision)
        except SQLAlchemyError as e:
            raise translate(e, self.url) from e

    def revision(self) -> str | None:
        """The schema revision of the database, ``None`` if it has no schema."""
        try:
            return schema.current_revision(self._engine)
        except SQLAlchemyError as e:
            raise translate(e, self.url) from e

    def check_schema(self) -> None:
        """Raise ``SchemaOutOfDateError`` unless the database is at this code's revision."""
        current, head = self.revision(), schema.head_revision()
        if current == head:
            return
        if current is None:
            raise SchemaOutOfDateError(
                f"the knowledge base at {self.url} has no schema: run `agenticrs init`"
            )
        if current not in schema.known_revisions():
            raise SchemaOutOfDateError(
                f"the knowledge base at {self.url} is at revision {current}, written by a "
                f"newer agenticrs (this one knows up to {head}): upgrade agenticrs"
            )
        raise SchemaOutOfDateError(
            f"the knowledge base at {self.url} is at revision {current}, this code needs "
            f"{head}: run `agenticrs init` to upgrade it (data is kept)"
        )

    def close(self) -> None:
        """Release every connection; the store must not be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"
