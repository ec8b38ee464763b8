"""Where output goes: data on stdout, progress and errors on stderr; plain without a TTY."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table

def _console(stderr: bool) -> Console:
    """Plain when piped or with NO_COLOR; wide enough when piped that tables do not wrap."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 160
    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")) or None, soft_wrap=True, width=width)


out = _console(stderr=False)
err = _console(stderr=True)


def emit_json(data: Any) -> None:
    """Stable JSON on stdout (keys documented in docs/cli.md)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default, sort_keys=False) + "\n")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if hasattr(value, "value"):
        return value.value
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[fmt(v) for v in r])
    out.print(t)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if hasattr(value, "value"):
        return str(value.value)
    return str(value)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
