"""The report as one self-contained HTML page: plotly.js is inlined once, so the file opens
offline (no CDN); every figure is a div drawn by that script."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from plotly.offline import get_plotlyjs

from designer.report import figures
from designer.report.history import AgentHistory
from designer.report.llm_usage import summarise_sessions
from designer.report.markup import diffs, e, figure, reward, table, test_ndcg
from designer.report.pipeline_page import PIPELINE_STYLE, pipeline_section
from designer.report.pipeline_history import PipelineHistory
from designer.report.search_space import family_studies
from knowledge_base.models import ExperimentStatus

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


def render(sections: list[AgentHistory | PipelineHistory], families: dict[str, Any], title: str,
           source: str) -> str:
    """The whole page: one section per agent or pipeline, in the order given."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = " ".join(f'<a href="#{_anchor(s)}">{e(s.agent.name)}'
                   f'{" (pipeline)" if isinstance(s, PipelineHistory) else ""}</a>' for s in sections)
    body = "\n".join(pipeline_section(s) if isinstance(s, PipelineHistory) else _agent_section(s, families)
                     for s in sections) or \
        ('<p class="note">no agent or pipeline has experiments yet: run `agenticrs design --agent recommender` '
         'or `agenticrs compose`</p>')
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<style>{STYLE}{PIPELINE_STYLE}</style>\n<script type="text/javascript">{get_plotlyjs()}</script>'
            f'</head>\n<body><h1>{e(title)}</h1><p class="note">{e(source)} · generated {stamp}</p>'
            f'<nav>{nav}</nav>\n{body}\n</body></html>\n')


def _anchor(s: AgentHistory | PipelineHistory) -> str:
    return f"{'pipeline' if isinstance(s, PipelineHistory) else 'agent'}-{e(s.agent.name)}"


def _agent_section(h: AgentHistory, families: dict[str, Any]) -> str:
    name = h.agent.name
    parts = [f'<section id="agent-{e(name)}"><h2>{e(name)} ({e(h.agent.role)})</h2>', _summary(h)]
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
        parts.append(f"<h3>{heading}</h3>" + figure(fig, f"{name}-plot-{index}", missing))
        if heading == "Version lineage":
            parts.append(_versions_table(h))
        if heading.startswith("LLM") and h.llm_calls:
            parts.append(_llm_table(h))
    parts.append(_search_space(h, families))
    parts.append(diffs(h))
    return "\n".join(parts) + "</section>"


def _summary(h: AgentHistory) -> str:
    done = [x for x in h.experiments if x.status is ExperimentStatus.COMPLETED]
    champion = h.champion
    best = reward(champion.experiment.inner_reward if champion and champion.experiment else None)
    test = test_ndcg(champion) if champion else "-"
    cost = sum(c.cost_usd for c in h.llm_calls)
    rows = [("experiments", f"{len(h.experiments)} ({len(done)} completed, {len(h.failures)} failures)"),
            ("sessions", len({x.session_id for x in h.experiments})),
            ("champion", f"{champion.version.tag} ({champion.version.family}): {h.metric} {best}, "
                         f"sealed test ndcg@10 {test}" if champion else "-"),
            ("versions", len(h.versions)),
            ("LLM", f"{len(h.llm_calls)} calls, ${cost:.4f}")]
    return '<table class="summary">' + "".join(f"<tr><td>{k}</td><td>{e(v)}</td></tr>" for k, v in rows) + "</table>"


def _versions_table(h: AgentHistory) -> str:
    rows = []
    for v in h.versions:
        exp, promoted = v.experiment, v.promoted_by
        rows.append(["★" if v.version.is_champion else "", v.version.tag, v.parent.tag if v.parent else "-",
                     v.version.family, promoted.proposer if promoted else ("builtin" if v.parent is None else "rollback"),
                     reward(exp.inner_reward if exp else None),
                     f"{promoted.p_value:.4g}" if promoted and promoted.p_value is not None else "-",
                     f"{promoted.effect_size:+.4f}" if promoted and promoted.effect_size is not None else "-",
                     test_ndcg(v), promoted.id if promoted else "-",
                     v.version.created_at.strftime("%Y-%m-%d %H:%M")])
    return table(["", "version", "parent", "family", "proposer", h.metric, "p-value", "effect",
                  "test ndcg@10", "experiment", "created"], rows, {5, 6, 7, 8})


def _llm_table(h: AgentHistory) -> str:
    rows = [[s["session"], s["calls"], s["prompt_tokens"], s["completion_tokens"], f"{s['cost_usd']:.4f}",
             f"{s['latency_seconds']:.1f}", s["errors"], ", ".join(s["models"])] for s in summarise_sessions(h.llm_calls)]
    return table(["session", "calls", "prompt tokens", "completion tokens", "cost (USD)", "seconds in calls",
                  "errors", "models"], rows, {1, 2, 3, 4, 5, 6})


def _search_space(h: AgentHistory, families: dict[str, Any]) -> str:
    studies = family_studies(h, families)
    parts = ["<h3>Parameter importances and parallel coordinates per family</h3>"]
    if not studies:
        parts.append('<p class="note">no completed run of a built-in family yet</p>')
    for index, s in enumerate(studies):
        parts.append(f"<h4>{e(s.family)} <span class=\"note\">({e(s.label)})</span></h4>")
        if s.note:
            parts.append(f'<p class="note">{e(s.note)}</p>')
        for suffix, fig in (("importance", s.importances), ("parallel", s.parallel)):
            if fig is not None:
                parts.append(figure(fig, f"{h.agent.name}-{index}-{suffix}", ""))
    return "\n".join(parts)
