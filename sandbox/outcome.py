"""How a sandboxed run ended, as data (like Optuna's ``TrialState``)."""
from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    """The classified end of one candidate run."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"                    # the candidate raised; traceback tail kept
    TIMED_OUT = "TIMED_OUT"              # wall-clock limit reached, whole group killed
    OUT_OF_MEMORY = "OUT_OF_MEMORY"      # memory limit reached (cgroup OOM or MemoryError)
    KILLED_BY_LIMIT = "KILLED_BY_LIMIT"  # CPU, process, file-size or output quota
    INVALID_OUTPUT = "INVALID_OUTPUT"    # recommendations missing, malformed or out of range

    @property
    def ok(self) -> bool:
        return self is Outcome.COMPLETED
