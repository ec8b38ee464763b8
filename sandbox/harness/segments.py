"""User segments by activity (terciles of train interactions) and item head / tail groups."""
from __future__ import annotations

import numpy as np

from sandbox.harness.data import Interactions

__all__ = ["ACTIVITY_SEGMENTS", "activity_segments", "activity_thresholds"]

ACTIVITY_SEGMENTS = ("cold", "medium", "heavy")


def activity_thresholds(train: Interactions) -> tuple[float, float]:
    """The 1/3 and 2/3 quantiles (linear interpolation) of the number of train interactions
    over the users that have at least one; ``(0.0, 0.0)`` for an empty train set."""
    counts = train.user_counts()
    active = counts[counts > 0]
    if len(active) == 0:
        return 0.0, 0.0
    low, high = np.quantile(active, [1 / 3, 2 / 3])
    return float(low), float(high)


def activity_segments(train: Interactions, users) -> np.ndarray:
    """Segment index per user (0 cold, 1 medium, 2 heavy; names in ``ACTIVITY_SEGMENTS``).

    With train counts ``c`` and thresholds ``(t1, t2)`` from ``activity_thresholds``:
    cold ``c <= t1`` (including users without train interactions), medium
    ``t1 < c <= t2``, heavy ``c > t2``. Equal counts always share a segment, so segment
    sizes are only roughly equal.
    """
    low, high = activity_thresholds(train)
    counts = train.user_counts()[np.asarray(users, dtype=np.int64)]
    return (counts > low).astype(np.int64) + (counts > high)
