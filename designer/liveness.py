"""Liveness of a design session for the other processes sharing its knowledge base.

While a session runs, a daemon thread beats its heartbeat (``Store.heartbeat``) every
``every`` seconds; other sessions mark only the RUNNING experiments of sessions silent for
longer than ``STALE_AFTER_SECONDS`` as INTERRUPTED (``Store.interrupt_running``). A beat that
fails (database briefly unreachable) is logged and retried at the next tick: the session
itself must not die of it.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, TYPE_CHECKING

from knowledge_base.errors import KnowledgeBaseError

if TYPE_CHECKING:
    from knowledge_base.store import Store

log = logging.getLogger(__name__)

# Four beats fit in the stale window (120 s): a missed beat or two never looks like a death.
BEAT_EVERY_SECONDS = 30.0


class Heartbeat:
    """``with Heartbeat(store, session_id, agent):`` keeps the session alive while inside.

    The first beat happens on entry (synchronously, so the session is visible before it
    starts work); the thread stops on exit, also after an exception.
    """

    def __init__(self, store: Store, session_id: str, agent_name: str, every: float = BEAT_EVERY_SECONDS):
        self.store, self.session_id, self.agent_name, self.every = store, session_id, agent_name, every
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """One heartbeat; False (logged) if the knowledge base refused it."""
        try:
            self.store.heartbeat(self.session_id, self.agent_name)
        except KnowledgeBaseError as e:
            log.warning("heartbeat of session %s failed (retrying in %.0f s): %s", self.session_id, self.every, e)
            return False
        self.beats += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()

    def start(self) -> Heartbeat:
        self.beat()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.session_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every + 5)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
