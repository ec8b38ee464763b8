"""Phase durations measured by the parent, and the entry's own claims checked against them.

The entry announces each phase on the report pipe; the parent stamps the arrival of
those lines with its own monotonic clock (``Execution.marks``) and ends the last phase at
the reaping of the process. Patching ``time`` inside the sandbox cannot move these
clocks. A candidate that forges or suppresses the announcements can at most shift time
between ``fit`` and ``recommend``: durations stay in ``[0, wall]`` and sum to no more
than the wall time, and a completed run without usable marks is charged its whole wall
time as ``recommend`` (an upper bound, never a flattering guess).
"""
from __future__ import annotations

import math


def phase_seconds(marks: dict[str, float], wall: float, completed: bool) -> tuple[float | None, float | None]:
    """(fit_seconds, recommend_seconds) from the marks (seconds after the spawn)."""
    fit_at, rec_at = (_clamp(marks.get(name), wall) for name in ("fit", "recommend"))
    if fit_at is not None and rec_at is not None and fit_at <= rec_at:
        return rec_at - fit_at, wall - rec_at
    if completed:
        return None, wall
    if fit_at is not None and rec_at is None:  # ended (failed, killed) during fit
        return wall - fit_at, None
    return None, None


def plausible(value: object, wall: float) -> float | None:
    """A duration the entry reported, if it is a finite number in [0, wall]; else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= wall else None


def _clamp(mark: float | None, wall: float) -> float | None:
    # The reader thread may stamp a line a hair after the reaping; earlier than the spawn is impossible.
    if mark is None or not 0.0 <= mark <= wall + 1.0:
        return None
    return min(mark, wall)
