"""Ctrl-C and SIGTERM during ``design``: the first one stops the session cleanly at the next
step boundary (the candidate being evaluated finishes and is judged, nothing is left
RUNNING, the summary is printed); a second one aborts at once (what was recorded is kept,
as after a kill)."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from designer.proposal import SessionStop

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class StopRequest:
    """Set by a signal handler; read by ``StoppableProposer`` before each proposal."""

    def __init__(self) -> None:
        self.signal: Optional[str] = None

    @property
    def reason(self) -> str:
        return f"interrupted ({self.signal})"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal or "", 0)

    @contextmanager
    def on_signals(self, say: Callable[[str], None]) -> Iterator["StopRequest"]:
        """Handle SIGINT and SIGTERM inside the block (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handle(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self.signal is not None:
                raise KeyboardInterrupt
            self.signal = name
            say(f"{name}: stopping after the current step (the summary follows); "
                "Ctrl-C again to stop at once")
        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class StoppableProposer:
    """Wraps the session's proposer: once a stop is requested, the next proposal raises
    ``SessionStop``, which the loop treats as the end of the session (at a step boundary;
    with several workers the candidates in flight are finished and judged first)."""

    def __init__(self, inner: Any, stop: StopRequest):
        self.inner, self.stop = inner, stop

    def propose(self, context: Any) -> Any:
        if self.stop.signal is not None:
            raise SessionStop(self.stop.reason)
        return self.inner.propose(context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
