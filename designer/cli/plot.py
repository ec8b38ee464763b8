"""A best-so-far curve as a few lines of terminal text."""
from __future__ import annotations

BLOCKS = " ▁▂▃▄▅▆▇█"


def best_so_far(values: list[float | None]) -> list[float]:
    """Running maximum, skipping missing values (failed runs keep the previous best)."""
    best: list[float] = []
    current = None
    for v in values:
        if v is not None and (current is None or v > current):
            current = v
        if current is not None:
            best.append(current)
    return best


def curve(values: list[float], width: int = 60, height: int = 6, ascii_only: bool = False) -> str:
    """Render ``values`` (resampled to ``width`` columns) as ``height`` rows of blocks."""
    if not values:
        return "(no completed experiment yet)"
    n = min(width, len(values))
    cols = [values[min(len(values) - 1, int(i * len(values) / n))] for i in range(n)]
    lo, hi = min(cols), max(cols)
    span = (hi - lo) or 1.0
    levels = [(v - lo) / span * height * 8 for v in cols]
    rows = []
    for r in range(height - 1, -1, -1):
        line = ""
        for level in levels:
            fill = max(0, min(8, int(level - r * 8)))
            line += ("#" if fill >= 4 else " ") if ascii_only else BLOCKS[fill]
        label = f"{hi:.4f} " if r == height - 1 else (f"{lo:.4f} " if r == 0 else " " * 7)
        rows.append(f"{label}|{line}")
    rows.append(" " * 7 + "+" + "-" * len(cols) + f"  {len(values)} experiments")
    return "\n".join(rows)
