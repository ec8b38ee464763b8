"""Bounded readers for the child's pipes.

A child that prints without end must neither deadlock (a full pipe blocks the writer)
nor bloat the parent: each reader thread drains its pipe continuously and keeps only the
last ``limit`` bytes.
"""
from __future__ import annotations

import json
import os
import threading
import time


class TailReader:
    """Drain ``fd`` in a daemon thread, keeping the last ``limit`` bytes.

    The reader owns ``fd`` and closes it at EOF. ``join`` waits at most ``timeout``
    seconds: a process that escaped the kill (tier C only) may hold the pipe open, and
    the thread then keeps draining it in the background without blocking the caller.
    """

    _CHUNK = 65536

    def __init__(self, fd: int, limit: int, name: str = "tail-reader") -> None:
        self._fd = fd
        self._limit = limit
        self._buf = bytearray()
        self._lock = threading.Lock()
        self.total_bytes = 0
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while chunk := os.read(self._fd, self._CHUNK):
                self._consume(chunk)
                with self._lock:
                    self.total_bytes += len(chunk)
                    self._buf += chunk
                    if len(self._buf) > 2 * self._limit:  # amortise the trim
                        del self._buf[: len(self._buf) - self._limit]
        except OSError:
            pass
        finally:
            os.close(self._fd)

    def _consume(self, chunk: bytes) -> None:
        """Hook for subclasses, called in the reader thread with every chunk read."""

    def join(self, timeout: float) -> bool:
        """Wait for EOF; True when the pipe was fully drained."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def tail(self) -> bytes:
        """The last ``limit`` bytes read so far."""
        with self._lock:
            return bytes(self._buf[-self._limit:])

    def text(self) -> str:
        """``tail()`` decoded as UTF-8 (invalid bytes replaced)."""
        return self.tail().decode("utf-8", errors="replace")


class ReportReader(TailReader):
    """A ``TailReader`` of the entry's report pipe that stamps phase lines on arrival.

    ``marks`` maps a phase named by a ``{"event": "phase", "phase": NAME}`` line to the
    parent's ``time.monotonic()`` when its *first* such line arrived. The clock is the
    parent's, so patching ``time`` inside the sandbox cannot move it; a forged earlier
    line only moves the mark earlier. Lines longer than ``_MAX_LINE`` are not parsed.
    """

    _MAX_LINE = 4096
    _PREFIX = b'{"event": "phase"'

    def __init__(self, fd: int, limit: int, name: str = "report") -> None:
        self.marks: dict[str, float] = {}
        self._partial = bytearray()
        super().__init__(fd, limit, name)

    def _consume(self, chunk: bytes) -> None:
        now = time.monotonic()
        *lines, rest = (bytes(self._partial) + chunk).split(b"\n")
        self._partial = bytearray(rest if len(rest) <= self._MAX_LINE else b"x")
        for line in lines:
            if line.startswith(self._PREFIX) and len(line) <= self._MAX_LINE:
                self._mark(line, now)

    def _mark(self, line: bytes, now: float) -> None:
        try:
            phase = json.loads(line).get("phase")
        except (ValueError, AttributeError):
            return
        if isinstance(phase, str) and len(self.marks) < 16:
            self.marks.setdefault(phase, now)
