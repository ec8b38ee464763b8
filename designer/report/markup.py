"""HTML pieces shared by the agent and pipeline sections: escaping, a plotly figure as a div
(plotly.js itself is inlined once by the page), a table, numbers, code diffs."""
from __future__ import annotations

import html
from typing import Any, Iterable

import plotly.graph_objects as go

from designer.report.history import AgentHistory, VersionView

CONFIG = {"displaylogo": False, "responsive": True}


def e(text: Any) -> str:
    """``text`` escaped for HTML (quotes too: safe inside attributes)."""
    return html.escape(str(text))


def figure(fig: go.Figure | None, div_id: str, missing: str) -> str:
    """The figure as a div drawn by the page's plotly.js, or ``missing`` as a note when None."""
    if fig is None:
        return f'<p class="note">{e(missing)}</p>'
    return '<div class="figure">' + fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                                                config=CONFIG) + "</div>"


def table(columns: Iterable[str], rows: Iterable[Iterable[Any]], numeric: set[int], css: str = "rows",
          wrap: set[int] = frozenset()) -> str:
    """A table; the columns whose index is in ``numeric`` are right-aligned, those in ``wrap``
    fold their text (the others never do)."""
    def cell(i: int, value: Any) -> str:
        kind = "num" if i in numeric else "wrap" if i in wrap else ""
        return f'<td class="{kind}">{e(value)}</td>' if kind else f"<td>{e(value)}</td>"
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="{css}"><tr>{head}</tr>{body}</table>'


def reward(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def test_ndcg(v: VersionView) -> str:
    """The version's sealed test NDCG@10, or why there is none."""
    value = (v.test or {}).get("metrics", {}).get("ndcg@10")
    return "not scored" if value is None else f"{value:.4f}"


def diffs(h: AgentHistory) -> str:
    """Each promoted version's code as a unified diff from its parent, newest first; the
    champion's is open."""
    parts = ["<h3>Code of each promoted version (diff from its parent)</h3>"]
    shown = [v for v in h.versions if v.parent is not None]
    if not shown:
        parts.append('<p class="note">no promoted version yet</p>')
    for v in reversed(shown):
        lines = v.diff.splitlines()
        added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
        summary = (f"{v.version.tag} ← {v.parent.tag}: {v.version.family}, +{added} −{removed} lines"
                   if v.diff else f"{v.version.tag} ← {v.parent.tag}: same code (parameters or rollback)")
        parts.append(f"<details{' open' if v.version.is_champion else ''}><summary>{e(summary)}</summary>"
                     f'<pre class="diff">{_diff_html(lines)}</pre></details>')
    return "\n".join(parts)


def _diff_html(lines: list[str]) -> str:
    def css(line: str) -> str:
        if line.startswith(("+++", "---")):
            return ""
        return {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "")
    return "\n".join(f'<span class="{css(x)}">{e(x)}</span>' if css(x) else e(x) for x in lines)
