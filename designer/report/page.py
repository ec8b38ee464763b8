"""The report as one self-contained HTML page: plotly.js is inlined once, so the file opens
offline (no CDN); every figure is a div drawn by that script."""
from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any, Iterable

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from designer.report import figures
from designer.report.history import AgentHistory, VersionView
from designer.report.llm_usage import summarise_sessions
from designer.report.search_space import family_studies
from knowledge_base.models import ExperimentStatus

CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 24px 48px;color:#222}
h1{margin-top:24px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:40px}
.note{color:#666;font-style:italic} .summary td{padding:2px 12px 2px 0}
table.rows{border-collapse:collapse;margin:8px 0} table.rows th,table.rows td{border-bottom:1px solid #eee;
padding:3px 10px;text-align:left;white-space:nowrap} td.num{text-align:right;font-variant-numeric:tabular-nums}
pre.diff{background:#fafafa;border:1px solid #eee;padding:8px;overflow-x:auto;font-size:12px}
.add{color:#116329;background:#e6ffec} .del{color:#82071e;background:#ffebe9} .hunk{color:#0550ae}
nav a{margin-right:12px} .figure{margin:12px 0}
"""


def render(histories: list[AgentHistory], families: dict[str, Any], title: str, source: str) -> str:
    """The whole page for ``histories`` (one section per agent)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = " ".join(f'<a href="#agent-{_e(h.agent.name)}">{_e(h.agent.name)}</a>' for h in histories)
    body = "\n".join(_agent_section(h, families) for h in histories) or \
        '<p class="note">no agent has experiments yet: run `agenticrs design --agent recommender`</p>'
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<style>{STYLE}</style>\n<script type="text/javascript">{get_plotlyjs()}</script></head>\n'
            f'<body><h1>{_e(title)}</h1><p class="note">{_e(source)} · generated {stamp}</p>'
            f'<nav>{nav}</nav>\n{body}\n</body></html>\n')


def _e(text: Any) -> str:
    return html.escape(str(text))


def _figure(fig: go.Figure | None, div_id: str, missing: str) -> str:
    if fig is None:
        return f'<p class="note">{_e(missing)}</p>'
    return '<div class="figure">' + fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                                                config=CONFIG) + "</div>"


def _agent_section(h: AgentHistory, families: dict[str, Any]) -> str:
    name = h.agent.name
    parts = [f'<section id="agent-{_e(name)}"><h2>{_e(name)} ({_e(h.agent.role)})</h2>', _summary(h)]
    plots = [
        ("Best so far per session", figures.sessions_best_so_far(h), "no completed full-stage run yet"),
        ("Every experiment", figures.experiments_timeline(h), "no experiment yet"),
        ("Version lineage", figures.lineage(h), "no scored version yet"),
        ("Champion vs parent by segment", figures.segments_vs_parent(h),
         "the champion has no scored parent (it is the first version, or a rollback)"),
        ("Failure classes over time", figures.failures_over_time(h), "no failure recorded"),
        ("LLM calls and cost per session", figures.llm_cost_per_session(h), "no LLM call recorded"),
    ]
    for index, (heading, fig, missing) in enumerate(plots):
        parts.append(f"<h3>{heading}</h3>" + _figure(fig, f"{name}-plot-{index}", missing))
        if heading == "Version lineage":
            parts.append(_versions_table(h))
        if heading.startswith("LLM") and h.llm_calls:
            parts.append(_llm_table(h))
    parts.append(_search_space(h, families))
    parts.append(_diffs(h))
    return "\n".join(parts) + "</section>"


def _summary(h: AgentHistory) -> str:
    done = [e for e in h.experiments if e.status is ExperimentStatus.COMPLETED]
    champion = h.champion
    best = _reward(champion.experiment.inner_reward if champion and champion.experiment else None)
    test = _test_ndcg(champion) if champion else "-"
    cost = sum(c.cost_usd for c in h.llm_calls)
    rows = [("experiments", f"{len(h.experiments)} ({len(done)} completed, {len(h.failures)} failures)"),
            ("sessions", len({e.session_id for e in h.experiments})),
            ("champion", f"{champion.version.tag} ({champion.version.family}): {h.metric} {best}, "
                         f"sealed test ndcg@10 {test}" if champion else "-"),
            ("versions", len(h.versions)),
            ("LLM", f"{len(h.llm_calls)} calls, ${cost:.4f}")]
    return '<table class="summary">' + "".join(f"<tr><td>{k}</td><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _reward(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _test_ndcg(v: VersionView) -> str:
    value = (v.test or {}).get("metrics", {}).get("ndcg@10")
    return "not scored" if value is None else f"{value:.4f}"


def _table(columns: Iterable[str], rows: Iterable[Iterable[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="rows"><tr>{head}</tr>{body}</table>'


def _versions_table(h: AgentHistory) -> str:
    rows = []
    for v in h.versions:
        exp, promoted = v.experiment, v.promoted_by
        rows.append(["★" if v.version.is_champion else "", v.version.tag, v.parent.tag if v.parent else "-",
                     v.version.family, promoted.proposer if promoted else ("builtin" if v.parent is None else "rollback"),
                     _reward(exp.inner_reward if exp else None),
                     f"{promoted.p_value:.4g}" if promoted and promoted.p_value is not None else "-",
                     f"{promoted.effect_size:+.4f}" if promoted and promoted.effect_size is not None else "-",
                     _test_ndcg(v), promoted.id if promoted else "-",
                     v.version.created_at.strftime("%Y-%m-%d %H:%M")])
    return _table(["", "version", "parent", "family", "proposer", h.metric, "p-value", "effect",
                   "test ndcg@10", "experiment", "created"], rows, {5, 6, 7, 8})


def _llm_table(h: AgentHistory) -> str:
    rows = [[s["session"], s["calls"], s["prompt_tokens"], s["completion_tokens"], f"{s['cost_usd']:.4f}",
             f"{s['latency_seconds']:.1f}", s["errors"], ", ".join(s["models"])] for s in summarise_sessions(h.llm_calls)]
    return _table(["session", "calls", "prompt tokens", "completion tokens", "cost (USD)", "seconds in calls",
                   "errors", "models"], rows, {1, 2, 3, 4, 5, 6})


def _search_space(h: AgentHistory, families: dict[str, Any]) -> str:
    studies = family_studies(h, families)
    parts = ["<h3>Parameter importances and parallel coordinates per family</h3>"]
    if not studies:
        parts.append('<p class="note">no completed run of a built-in family yet</p>')
    for index, s in enumerate(studies):
        parts.append(f"<h4>{_e(s.family)} <span class=\"note\">({_e(s.label)})</span></h4>")
        if s.note:
            parts.append(f'<p class="note">{_e(s.note)}</p>')
        for suffix, fig in (("importance", s.importances), ("parallel", s.parallel)):
            if fig is not None:
                parts.append(_figure(fig, f"{h.agent.name}-{index}-{suffix}", ""))
    return "\n".join(parts)


def _diffs(h: AgentHistory) -> str:
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
        parts.append(f"<details{' open' if v.version.is_champion else ''}><summary>{_e(summary)}</summary>"
                     f'<pre class="diff">{_diff_html(lines)}</pre></details>')
    return "\n".join(parts)


def _diff_html(lines: list[str]) -> str:
    def css(line: str) -> str:
        if line.startswith(("+++", "---")):
            return ""
        return {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "")
    return "\n".join(f'<span class="{css(x)}">{_e(x)}</span>' if css(x) else _e(x) for x in lines)
