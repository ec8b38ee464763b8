"""The state every part of the store shares: the engine, sessions and error translation."""
from __future__ import annotations

from collections.abc import Iterator
import threading
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge_base.engine import WRITE_OPTION, is_memory
from knowledge_base.errors import NotFoundError, translate
from knowledge_base.rows import AgentRow, Base, ExperimentRow

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=Base)


class StoreBase:
    """Holds the engine; gives one-transaction write sessions and read sessions.

    Every public write runs inside ``self._write()``: all of it commits or none of it does.
    SQLAlchemy errors raised inside either context are translated into the
    ``knowledge_base.errors`` tree.
    """

    def __init__(self, engine: Engine, safe_url: str) -> None:
        self._engine = engine
        self.url = safe_url  # password hidden
        write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._writer = sessionmaker(write_engine, expire_on_commit=False)
        self._reader = sessionmaker(engine, expire_on_commit=False)
        # An in-memory database is one connection: threads take turns with a transaction.
        self._turn: AbstractContextManager[object] = (
            threading.RLock() if is_memory(engine.url) else nullcontext())

    @contextmanager
    def _write(self) -> Iterator[Session]:
        try:
            with self._turn, self._writer.begin() as session:
                yield session
        except SQLAlchemyError as e:
            raise translate(e, self.url) from e

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with self._turn, self._reader() as session, session.begin():
                yield session
        except SQLAlchemyError as e:
            raise translate(e, self.url) from e


def to_model(model: type[M], row: Base) -> M:
    """The frozen read model of ``row`` (attribute names match field names)."""
    return model.model_validate(row, from_attributes=True)


def get_row(session: Session, row_type: type[R], key: object, what: str) -> R:
    """The row of ``row_type`` with primary key ``key``; ``NotFoundError`` naming ``what``."""
    row = session.get(row_type, key)
    if row is None:
        raise NotFoundError(f"no {what} with id {key!r} in the knowledge base")
    return row


def agent_row(session: Session, name: str) -> AgentRow:
    """The agent called ``name``; ``NotFoundError`` if there is none."""
    row = session.scalar(select(AgentRow).where(AgentRow.name == name))
    if row is None:
        raise NotFoundError(f"no agent named {name!r} in the knowledge base")
    return row


def experiment_row(session: Session, experiment_id: int) -> ExperimentRow:
    """The experiment ``experiment_id``; ``NotFoundError`` if there is none."""
    return get_row(session, ExperimentRow, experiment_id, "experiment")
