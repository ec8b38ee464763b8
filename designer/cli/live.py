"""What ``design`` shows while it works: one line per event that matters; on a TTY a live
status line (iteration i/N, candidate, stage, elapsed, best so far with its metric); without
a TTY a heartbeat line when nothing was printed for ``HEARTBEAT_SECONDS`` (at most one per
interval), so that long work is never silent in a log or CI."""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from rich.text import Text

from designer.events import Event, EventKind

STYLE = {EventKind.NEW_BEST: "bold green", EventKind.APPROVED: "bold green", EventKind.PENDING_REVIEW: "green",
         EventKind.FAILED: "red", EventKind.PROPOSAL_FAILED: "red", EventKind.SCREENED_OUT: "yellow"}


def heartbeat_seconds() -> float:
    """Seconds of silence before a heartbeat line (``AGENTICRS_HEARTBEAT_SECONDS``, default 30)."""
    try:
        return max(0.1, float(os.environ.get("AGENTICRS_HEARTBEAT_SECONDS", "30")))
    except ValueError:
        return 30.0


def elapsed_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LiveView:
    """The ``on_event`` sink of a design run. ``done_before`` iterations of the session ran in
    earlier runs; ``total`` is the session's target (None: a time budget only)."""

    def __init__(self, console: Any, metric: str, total: Optional[int], done_before: int = 0,
                 best: Optional[float] = None, clock: Callable[[], float] = time.monotonic,
                 on_iteration: Callable[[Event], None] | None = None):
        self.console, self.metric, self.total, self.done_before = console, metric, total, done_before
        self.best, self.clock, self.on_iteration = best, clock, on_iteration or (lambda e: None)
        self.started = self.last_line = clock()
        self.iteration, self.candidate, self.stage = done_before, "-", "starting"
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.kind in (EventKind.PROPOSED, EventKind.PROPOSAL_FAILED, EventKind.DUPLICATE):
            self.on_iteration(event)
        with self._lock:
            stale = event.kind is EventKind.NEW_BEST and self.best is not None and (event.reward or 0) <= self.best
            self._follow(event)
        if event.important and not stale:   # the loop's best is this run's; the session may know better
            prefix = f"[{self.done_before + event.iteration:>3}]" if event.iteration and \
                event.kind is not EventKind.STOPPED else "[  -]"
            self.line(f"{prefix} {self._message(event)}", style=STYLE.get(event.kind, ""))

    def _follow(self, event: Event) -> None:
        if event.reward is not None and event.kind in (EventKind.NEW_BEST, EventKind.BASELINE):
            self.best = event.reward if self.best is None else max(self.best, event.reward)
        if event.iteration:
            self.iteration = self.done_before + event.iteration
        if event.kind is EventKind.PROPOSED:
            self.candidate, self.stage = _candidate(event), "checking"
        elif event.kind is EventKind.STAGE:
            self.stage = event.message.replace(" evaluation of experiment ", " evaluation, experiment ")
        elif event.kind is EventKind.FINISHED:
            self.stage = "judging"
        elif event.kind is EventKind.BASELINE:
            self.stage = "scoring the champion"

    def _message(self, event: Event) -> str:
        """The loop's message, with the metric named where the loop gives a bare number."""
        if event.kind is EventKind.NEW_BEST and event.reward is not None:
            return f"new best val {self.metric} {event.reward:.4f} (experiment {event.experiment_id})"
        if event.kind is EventKind.BASELINE and event.reward is not None:
            champion = event.message.split(" scores ")[0]
            return f"{champion} scores val {self.metric} {event.reward:.4f}"
        return event.message

    def line(self, text: str, style: str = "") -> None:
        self.last_line = self.clock()
        self.console.print(text, style=style, highlight=False, markup=False)

    def status_line(self) -> str:
        """``iteration 3/10 · ials factors=64 · full evaluation, experiment 12 · 1:05 · best val ndcg@10 0.2921``."""
        with self._lock:
            total = f"/{self.total}" if self.total else ""
            best = f"{self.best:.4f}" if self.best is not None else "-"
            return (f"iteration {self.iteration}{total} · {self.candidate} · {self.stage} · "
                    f"{elapsed_text(self.clock() - self.started)} elapsed · best val {self.metric} {best}")

    def __rich__(self) -> Text:
        """Re-rendered by the spinner several times a second: the elapsed time moves."""
        return Text(self.status_line(), no_wrap=True, overflow="ellipsis")


def _candidate(event: Event) -> str:
    """``family k=v, k=v`` of a PROPOSED event (message ``kind: family rationale``)."""
    family = event.message.split(": ", 1)[-1].split(" ", 1)[0]
    params = event.data.get("params") or {}
    shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(params.items())[:3])
    return f"{family} {shown}".strip() + (" ..." if len(params) > 3 else "")


class Pulse:
    """The view of one long piece of work (loading data, one evaluation): what and how long."""

    def __init__(self, console: Any, what: str, clock: Callable[[], float] = time.monotonic):
        self.console, self.what, self.clock = console, what, clock
        self.started = self.last_line = clock()

    def line(self, text: str, style: str = "") -> None:
        self.last_line = self.clock()
        self.console.print(text, style=style, highlight=False, markup=False)

    def status_line(self) -> str:
        return f"{self.what} · {elapsed_text(self.clock() - self.started)} elapsed"

    def __rich__(self) -> Text:
        return Text(self.status_line(), no_wrap=True, overflow="ellipsis")


@contextmanager
def progress(console: Any, view: "LiveView | Pulse") -> Iterator[None]:
    """A live status line of ``view`` on a TTY; heartbeat lines otherwise."""
    if console.is_terminal:
        with console.status(view):
            yield
    else:
        with Heartbeat(view, heartbeat_seconds()):
            yield


class Heartbeat:
    """``with Heartbeat(view):`` prints ``view.status_line()`` as a line whenever nothing was
    printed for ``every`` seconds (for logs and CI, where no status line can redraw)."""

    def __init__(self, view: "LiveView | Pulse", every: float):
        self.view, self.every = view, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agenticrs-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.every / 4)):
            if self.view.clock() - self.view.last_line >= self.every:
                self.view.line(f"... {self.view.status_line()}")

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
