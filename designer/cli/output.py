"""Where output goes: data on stdout, progress and errors on stderr; plain without a TTY.

Tables never wrap a number or a status: when a table does not fit the terminal, its
optional columns are left out (least useful first) and a line says which. Numbers are
formatted by what they are (see ``fmt``): seconds as ``5.5``, metrics with 4 decimals and
never ``-0.0000``, p-values as the promotion test reports them, counts as integers.
"""
from __future__ import annotations

import json
import math
import os
import sys
from datetime import datetime
from typing import Any, Iterable, Sequence, TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from knowledge_base.store import Store

# p-values at 1/(resamples+1) are the permutation test's floor (``PromotionConfig.resamples``)
DEFAULT_RESAMPLES = 2000


def _console(stderr: bool) -> Console:
    """Plain when piped or with NO_COLOR; wide enough when piped that tables do not wrap."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 160
    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")) or None, soft_wrap=True, width=width)


out = _console(stderr=False)
err = _console(stderr=True)


def emit_json(data: Any) -> None:
    """Stable JSON on stdout (keys documented in docs/cli.md); counts (``n_*`` keys) are
    integers even where a metric dict stored them as floats."""
    sys.stdout.write(json.dumps(_counts_as_ints(data), indent=2, default=_default, sort_keys=False) + "\n")


def _counts_as_ints(data: Any, key: str = "") -> Any:
    if isinstance(data, dict):
        return {k: _counts_as_ints(v, str(k)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_counts_as_ints(v, key) for v in data]
    if isinstance(data, float) and key.startswith("n_") and data.is_integer():
        return int(data)
    return data


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if hasattr(value, "value"):
        return value.value
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Iterable[Any]],
          optional: Sequence[str] = (), wrap: Sequence[str] = ()) -> None:
    """Print a table on stdout. Cells are formatted by ``fmt`` with their column's name as
    the kind. Columns in ``optional`` are dropped, in that order, while the table is wider
    than the terminal; columns in ``wrap`` (free text) may fold, no other cell ever does."""
    cells = [[fmt(v, c) for v, c in zip(r, columns)] for r in rows]
    keep = list(columns)
    dropped = []
    for name in optional:
        if _width(keep, cells, columns, wrap) <= out.width:
            break
        if name in keep:
            keep.remove(name)
            dropped.append(name)
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in keep:
        t.add_column(c, overflow="fold" if c in wrap else "ellipsis", no_wrap=c not in wrap)
    index = [list(columns).index(c) for c in keep]
    for r in cells:
        t.add_row(*[r[i] for i in index])
    out.print(t)
    if dropped:
        out.print(f"(left out at {out.width} columns: {', '.join(dropped)}; see --json)",
                  highlight=False, markup=False)


def _width(keep: list[str], cells: list[list[str]], columns: Sequence[str], wrap: Sequence[str]) -> int:
    """Width of the boxed table with columns ``keep`` (a wrapping column counts 12)."""
    total = 1
    for c in keep:
        i = list(columns).index(c)
        widest = max([len(c), *(len(r[i]) for r in cells)])
        total += (min(widest, 12) if c in wrap else widest) + 3
    return total


SECONDS = ("secs", "seconds", "s")
P_VALUES = ("p", "p_value", "alpha", "p-value")


def fmt(value: Any, kind: str = "") -> str:
    """One value as text; ``kind`` (a column or metric name) picks the format: seconds
    (``*seconds``, ``secs``), memory (``*_mb``), p-values (``p``, ``alpha``), deltas
    (``delta``, ``gain``), counts (``n_*``, ``users``); other floats get 4 decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _float(value, kind.lower())
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if hasattr(value, "value"):
        return str(value.value)
    return str(value)


def _float(value: float, kind: str) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if kind.endswith(SECONDS):
        return seconds(value)
    if kind.endswith("_mb") or kind.startswith("n_") or kind == "users":
        return f"{value:,.0f}"
    if kind in P_VALUES:
        return p_text(value, short=True) if kind != "alpha" else p_text(value, floor=False)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    signed = "delta" in kind or "gain" in kind
    return number(value, signed=signed)


def metric_cells(metric: str, value: Any, before: Any) -> list[str]:
    """``value``, ``before`` and their difference as text, in ``metric``'s format."""
    both = isinstance(value, (int, float)) and isinstance(before, (int, float))
    kind = metric if metric.endswith(SECONDS) or metric.endswith("_mb") else "delta"
    delta = fmt(value - before, kind) if both else "-"
    return [fmt(value, metric), fmt(before, metric), delta]


def number(value: float, signed: bool = False, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; a value that rounds to zero is ``0.0000``, never ``-0.0000``."""
    if round(value, digits) == 0:
        value = 0.0
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def seconds(value: float) -> str:
    """Seconds with at most 2 decimals and no trailing zeros: ``5.5``, ``0.33``, ``120``."""
    return f"{round(value, 2):g}" if value < 100_000 else f"{value:,.0f}"


def p_text(p: float, resamples: int = DEFAULT_RESAMPLES, short: bool = False, floor: bool = True) -> str:
    """A p-value as the promotion test reports it; at the permutation test's floor
    1/(resamples+1) it says so (the true p-value is at most that)."""
    from designer.promotion import format_p
    if floor and at_floor(p, resamples):
        return f"{format_p(p)} (floor)" if short else f"<={format_p(p)} ({FLOOR_NOTE.format(resamples)})"
    return format_p(p)


FLOOR_NOTE = "the resampling floor: none of {} resamples reached the observed gain"


def at_floor(p: float, resamples: int = DEFAULT_RESAMPLES) -> bool:
    return math.isclose(p, 1 / (resamples + 1), rel_tol=1e-9)


def p_equals(p: float, method: str = "permutation", resamples: int = DEFAULT_RESAMPLES) -> str:
    """``p=0.0123``, or ``p<=0.0005 (the resampling floor ...)`` for a permutation p-value at its floor."""
    text = p_text(p, resamples, floor=method == "permutation")
    return f"p{text}" if text.startswith("<=") else f"p={text}"


def reward_header(store: Store, agents: Iterable[str]) -> str:
    """``val ndcg@10`` when every agent named has that inner reward, else ``val reward``."""
    metrics = {store.get_agent(a).inner_reward for a in set(agents)}
    return f"val {metrics.pop()}" if len(metrics) == 1 else "val reward"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
