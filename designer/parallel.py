"""Several candidates in flight: the asynchronous form of the design loop's step.

The main thread proposes (proposers need not be thread-safe; each proposal sees the ones in
flight, so search does not propose them again: TPE treats them as pending trials, a constant
liar) and judges: finished candidates are judged one at a time, in the order they were
proposed, against the champion at judging time, so promotion decisions, the error-control
stream and git are those of a serial run on the same results.
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
    order: list[Future] = []          # submission order: results are judged in it
    reason: str | None = None
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agenticrs-worker")
    try:
        while True:
            while reason is None and sum(not f.done() for f in order) < workers:
                if (reason := stop_reason()) is not None:
                    break
                try:
                    ready = loop.prepare(pending=[pending[f][0] for f in order])
                except SessionStop as e:
                    reason = str(e) or type(e).__name__
                    break
                if ready is not None:
                    future = pool.submit(loop.evaluate, *ready)
                    pending[future] = ready
                    order.append(future)
            if not order:
                return reason or "iterations done"
            if not order[0].done():
                wait([f for f in order if not f.done()], return_when=FIRST_COMPLETED)
            # Judge in submission order, as a serial run would: a later result that finished
            # first waits for the earlier ones (its slot is already free for the next run).
            while order and order[0].done():
                future = order.pop(0)
                _, incumbent = pending.pop(future)
                if (full := future.result()) is not None:
                    loop.judge(full)
                loop._maybe_summarise(incumbent)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)   # runs in flight finish and are recorded
        raise
    finally:
        pool.shutdown(wait=True)
