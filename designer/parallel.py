"""Several candidates in flight: the asynchronous form of the design loop's step.

The main thread proposes (proposers need not be thread-safe; each proposal sees the ones in
flight, so search does not propose them again: TPE treats them as pending trials, a constant
liar) and judges: a finished candidate is judged against the champion at judging time, one
at a time, so promotion, the error-control stream and git stay as a serial run keeps them.
Worker threads only evaluate (cheap stage, screen, full stage), each run in its own sandbox
slot (``designer.executor.SlotPool``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from designer.proposal import Candidate, SessionStop

if TYPE_CHECKING:
    from designer.loop import DesignLoop

log = logging.getLogger(__name__)


def run_parallel(loop: "DesignLoop", workers: int, stop_reason: Callable[[], str | None]) -> str:
    """Drive ``loop`` with ``workers`` evaluations in flight until ``stop_reason()`` says
    why to stop (or the proposer raises ``SessionStop``); in-flight candidates are finished
    and judged before returning. Returns the reason."""
    pending: dict[Future, tuple[Candidate, object]] = {}
    reason: str | None = None
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agenticrs-worker")
    try:
        while True:
            while reason is None and len(pending) < workers:
                if (reason := stop_reason()) is not None:
                    break
                try:
                    ready = loop.prepare(pending=[c for c, _ in pending.values()])
                except SessionStop as e:
                    reason = str(e) or type(e).__name__
                    break
                if ready is not None:
                    pending[pool.submit(loop.evaluate, *ready)] = ready
            if not pending:
                return reason or "iterations done"
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                _, incumbent = pending.pop(future)
                if (full := future.result()) is not None:
                    loop.judge(full)
                loop._maybe_summarise(incumbent)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)   # runs in flight finish and are recorded
        raise
    finally:
        pool.shutdown(wait=True)
