"""The seam between the loop and candidate evaluation: where and how runs happen.

``Executor`` is what the loop calls; ``LocalExecutor`` runs candidates in the local
sandbox, each run in a free slot (``SlotPool``: uid ``61000 + slot``) shared by every
process of the machine, so that two commands, or two workers of one, run side by side.
``designer.ray_executor.RayExecutor`` implements the same protocol with each Ray worker
running the same sandbox.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from designer.settings import DesignSettings
from sandbox.evaluation import EvaluationJob, EvaluationResult, Evaluator
from sandbox.harness.datasets import load_dataset
from sandbox.harness.splits import Split, split_interactions
from sandbox.runner import make_runner

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Evaluates jobs; implementations decide where (``LocalExecutor``: this machine's
    sandbox; ``designer.ray_executor.RayExecutor``: Ray workers). Both are thread-safe."""

    dataset_key: str      # data set and split; experiments compare only within one
    split: Split          # the split every job is evaluated on
    tier: str             # the sandbox's isolation tier

    def evaluate(self, job: EvaluationJob, run_dir: Path) -> EvaluationResult: ...


def dataset_key(dataset: str, split: Split) -> str:
    """Identifies data set and split; experiments are comparable only within one key."""
    return f"{Path(dataset).name}/{split.method}/{split.fingerprint[:12]}"


def load_split(settings: DesignSettings, cache_dir: Path) -> Split:
    """The data set and split named by ``settings`` (cached by fingerprint)."""
    data = load_dataset(settings.dataset, data_dir=settings.data_dir, cache_dir=cache_dir / "datasets",
                        seed=settings.seed, n_users=settings.n_users, n_items=settings.n_items,
                        columns=settings.columns)
    return split_interactions(data, method=settings.split, cache_dir=cache_dir / "splits")


def claims_dir() -> Path:
    """Where slot claims live: one folder for every process of the machine."""
    if configured := os.environ.get("AGENTICRS_SLOT_DIR"):
        folder = Path(configured)
    elif os.access("/run", os.W_OK):
        folder = Path("/run/agenticrs-slots")
    else:
        folder = Path(tempfile.gettempdir()) / "agenticrs-slots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class SlotPool:
    """Claims a free slot among ``size`` for each run, across threads and processes (a
    non-blocking ``flock`` per slot; the kernel drops a dead process's claims). When all are
    busy, ``on_wait`` is told ("waiting for a sandbox slot: N runs in progress"; at most once
    a minute, so a long session is not flooded) and the claim is retried every ``poll`` s."""

    def __init__(self, size: int, on_wait: Callable[[str], None] | None = None, poll: float = 0.25,
                 quiet_seconds: float = 60.0):
        self.size, self.poll, self.quiet_seconds = size, poll, quiet_seconds
        self._last_told = float("-inf")
        self.on_wait = on_wait or (lambda message: log.warning("%s", message))
        self.folder = claims_dir()

    @contextlib.contextmanager
    def claim(self) -> Iterator[int]:
        told = False
        while True:
            for slot in range(self.size):
                fd = os.open(self.folder / f"slot-{slot}.claim", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                if _run_lock_busy(slot):  # a run of a process that does not claim (an older agenticrs)
                    os.close(fd)
                    continue
                try:
                    yield slot
                finally:
                    os.close(fd)
                return
            if not told and time.monotonic() - self._last_told >= self.quiet_seconds:
                self.on_wait(f"waiting for a sandbox slot: {self.size} runs in progress")
                self._last_told = time.monotonic()
            told = True
            time.sleep(self.poll)


def _run_lock_busy(slot: int) -> bool:
    """Whether the sandbox runner's own lock of ``slot`` is held right now (probed, released)."""
    path = Path(os.environ.get("AGENTICRS_SANDBOX_STATE", "/run/agenticrs")) / f"slot-{slot}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class LocalExecutor:
    """Runs candidates in this machine's sandbox, each run in a free slot (thread-safe)."""

    def __init__(self, settings: DesignSettings, cache_dir: Path, split: Split | None = None,
                 on_wait: Callable[[str], None] | None = None):
        self.split = split or load_split(settings, cache_dir)
        self.allow_insecure, self.cache_dir = settings.allow_insecure_sandbox, cache_dir
        self.slots = SlotPool(settings.slots, on_wait)
        self._evaluators: dict[int, Evaluator] = {}
        self._lock = threading.Lock()
        self.runner = self._evaluator(0).runner
        self.dataset_key = dataset_key(settings.dataset, self.split)

    @property
    def tier(self) -> str:
        return self.runner.tier.value

    def _evaluator(self, slot: int) -> Evaluator:
        with self._lock:
            if slot not in self._evaluators:
                runner = make_runner(allow_insecure=self.allow_insecure, slot=slot)
                self._evaluators[slot] = Evaluator(runner, self.split, self.cache_dir)
            return self._evaluators[slot]

    def evaluate(self, job: EvaluationJob, run_dir: Path) -> EvaluationResult:
        with self.slots.claim() as slot:
            return self._evaluator(slot).evaluate(job, run_dir)
