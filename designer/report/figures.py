"""Plotly figures of one agent's history; each returns a figure, or ``None`` when there is
nothing to draw (the page then says why instead of showing an empty chart)."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

import plotly.graph_objects as go

from designer.report.history import AgentHistory, VersionView
from designer.report.llm_usage import summarise_sessions
from knowledge_base.models import Experiment, ExperimentStatus

SEGMENTS = ("cold", "medium", "heavy", "head", "tail")
GROUPINGS = ("proposer", "family", "status")
STAGE_SYMBOLS = {"full": "circle", "cheap": "diamond-open"}  # other stages (confirmation): open squares
LAYOUT = dict(template="plotly_white", height=420, margin=dict(l=60, r=20, t=60, b=50),
              legend=dict(orientation="v"))


def _scored(e: Experiment, stage: str = "full") -> bool:
    return e.stage == stage and e.status is ExperimentStatus.COMPLETED and e.inner_reward is not None


def sessions_best_so_far(h: AgentHistory) -> go.Figure | None:
    """Running maximum of the validation reward per design session, full-stage runs."""
    by_session: dict[str, list[Experiment]] = defaultdict(list)
    for e in h.experiments:
        if _scored(e):
            by_session[e.session_id].append(e)
    if not by_session:
        return None
    fig = go.Figure()
    for session, runs in by_session.items():
        best, ys = None, []
        for e in runs:
            best = e.inner_reward if best is None else max(best, e.inner_reward)
            ys.append(best)
        fig.add_trace(go.Scatter(
            x=list(range(1, len(runs) + 1)), y=ys, mode="lines+markers", line_shape="hv",
            name=f"session {session}", customdata=[[e.id, e.inner_reward] for e in runs],
            hovertemplate=f"experiment %{{customdata[0]}}<br>this run %{{customdata[1]:.4f}}"
                          f"<br>best {h.metric} %{{y:.4f}}<extra>{session}</extra>"))
    fig.update_layout(title=f"Best so far per session ({h.metric}, full-stage runs)",
                      xaxis_title="full-stage run in the session", yaxis_title=h.metric,
                      xaxis=dict(tickformat="d", rangemode="tozero"), **LAYOUT)
    return fig


def _group_value(e: Experiment, grouping: str) -> str:
    if grouping == "status":
        return e.status.value
    return str(getattr(e, grouping) or "-")


def experiments_timeline(h: AgentHistory) -> go.Figure | None:
    """Every experiment by start time; a menu colours them by proposer, family or status.

    Runs without a reward (failed, interrupted) sit on a floor line below the lowest reward.
    """
    if not h.experiments:
        return None
    rewards = [e.inner_reward for e in h.experiments if e.inner_reward is not None]
    floor = (min(rewards) - 0.05 * ((max(rewards) - min(rewards)) or 1.0)) if rewards else 0.0
    fig, visibility = go.Figure(), []
    for index, grouping in enumerate(GROUPINGS):
        groups: dict[str, list[Experiment]] = defaultdict(list)
        for e in h.experiments:
            groups[_group_value(e, grouping)].append(e)
        for value, runs in sorted(groups.items()):
            fig.add_trace(_timeline_trace(runs, value, floor, h.metric, visible=index == 0))
            visibility.append(grouping)
    buttons = [dict(label=f"colour by {g}", method="update",
                    args=[{"visible": [v == g for v in visibility]}]) for g in GROUPINGS]
    fig.update_layout(title=f"Every experiment by time ({h.metric}) · ● full ◇ cheap (user subset) "
                            "□ confirmation × no reward", xaxis_title="started (UTC)", yaxis_title=h.metric,
                      updatemenus=[dict(buttons=buttons, x=1.0, xanchor="right", y=1.15, yanchor="top")],
                      **LAYOUT)
    return fig


def _timeline_trace(runs: list[Experiment], name: str, floor: float, metric: str, visible: bool) -> go.Scatter:
    symbols = ["x" if e.inner_reward is None else STAGE_SYMBOLS.get(e.stage, "square-open") for e in runs]
    text = [f"experiment {e.id} · {e.stage} · {e.status.value} · {e.promotion.value}<br>"
            f"{e.proposer} · {e.family or '-'} · session {e.session_id}<br>"
            f"{metric} {'-' if e.inner_reward is None else f'{e.inner_reward:.4f}'}" for e in runs]
    return go.Scatter(x=[e.created_at for e in runs],
                      y=[floor if e.inner_reward is None else e.inner_reward for e in runs],
                      mode="markers", name=name, visible=visible, text=text,
                      hovertemplate="%{text}<extra></extra>", marker=dict(symbol=symbols, size=9))


def lineage(h: AgentHistory) -> go.Figure | None:
    """Versions as a tree: x the version number, y its validation reward, an edge per parent."""
    placed = [v for v in h.versions if v.experiment is not None and v.experiment.inner_reward is not None]
    if not placed:
        return None
    y = {v.version.id: v.experiment.inner_reward for v in placed}
    fig = go.Figure()
    for v in placed:
        if v.parent is not None and v.parent.id in y:
            fig.add_trace(go.Scatter(x=[v.parent.number, v.version.number], y=[y[v.parent.id], y[v.version.id]],
                                     mode="lines", line=dict(color="#999"), hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(
        x=[v.version.number for v in placed], y=[y[v.version.id] for v in placed], mode="markers+text",
        text=[f"v{v.version.number}" + (" ★" if v.version.is_champion else "") for v in placed],
        textposition="top center", showlegend=False, hovertemplate="%{customdata}<extra></extra>",
        customdata=[version_hover(v, h.metric) for v in placed],
        marker=dict(size=[18 if v.version.is_champion else 12 for v in placed],
                    color=["#2ca02c" if v.version.is_champion else "#1f77b4" for v in placed])))
    fig.update_layout(title=f"Version lineage ({h.metric}; ★ champion; edges from parent)",
                      xaxis_title="version", yaxis_title=h.metric, xaxis=dict(dtick=1), **LAYOUT)
    return fig


def version_hover(v: VersionView, metric: str) -> str:
    exp, test = v.experiment, (v.test or {}).get("metrics", {})
    parts = [f"{v.version.tag} ({v.version.family})",
             f"parent {v.parent.tag if v.parent else '-'}",
             f"{metric} {exp.inner_reward:.4f}" if exp and exp.inner_reward is not None else f"{metric} -"]
    promoted = v.promoted_by
    if promoted is not None:
        parts.append(f"p={promoted.p_value:.4g}" if promoted.p_value is not None else "p -")
        parts.append(f"effect {promoted.effect_size:+.4f}" if promoted.effect_size is not None else "")
        parts.append(f"proposer {promoted.proposer}")
    parts.append(f"test ndcg@10 {test['ndcg@10']:.4f}" if "ndcg@10" in test else "test: not sealed-scored")
    return "<br>".join(p for p in parts if p)


def segments_vs_parent(h: AgentHistory) -> go.Figure | None:
    """The champion against its parent per user segment (validation, and sealed test if both
    have one)."""
    champion = h.champion
    parent = h.version_by_id(champion.parent.id) if champion and champion.parent else None
    if champion is None or parent is None or champion.experiment is None or parent.experiment is None:
        return None
    key = h.agent.inner_reward
    fig = go.Figure()
    for view, colour in ((parent, "#aec7e8"), (champion, "#1f77b4")):
        fig.add_trace(segment_bars(view.experiment.segments, key, f"{view.version.tag} val", colour))
    if champion.test and parent.test:
        for view, colour in ((parent, "#ffbb78"), (champion, "#ff7f0e")):
            fig.add_trace(segment_bars(view.test.get("segments", {}), "ndcg@10",
                                        f"{view.version.tag} test ndcg@10", colour))
    fig.update_layout(title=f"Champion {champion.version.tag} vs parent {parent.version.tag} by segment "
                            f"(val {key}; sealed test ndcg@10 when scored)",
                      barmode="group", yaxis_title=key, **LAYOUT)
    return fig


def segment_bars(segments: dict, key: str, name: str, colour: str) -> go.Bar:
    names = [s for s in SEGMENTS if s in segments] or sorted(segments)
    return go.Bar(x=names, y=[segments[s].get(key) for s in names], name=name, marker_color=colour,
                  hovertemplate="%{x}: %{y:.4f}<extra>" + name + "</extra>")


def failures_over_time(h: AgentHistory) -> go.Figure | None:
    """Classified failures per hour, stacked by kind."""
    if not h.failures:
        return None
    fig = go.Figure()
    for kind, count in Counter(f.kind.value for f in h.failures).most_common():
        times = [f.created_at for f in h.failures if f.kind.value == kind]
        fig.add_trace(go.Histogram(x=times, name=f"{kind} ({count})", showlegend=True,
                                   xbins=dict(size=_bin_ms([e.created_at for e in h.experiments] or times))))
    span = [e.created_at for e in h.experiments] or [f.created_at for f in h.failures]
    fig.update_layout(title="Failure classes over time", barmode="stack", xaxis_title="time (UTC)",
                      yaxis_title="failures", xaxis=dict(range=[min(span), max(span)]), **LAYOUT)
    return fig


def _bin_ms(times: list[datetime]) -> float:
    """Bins that give ~20 bars over the span (at least a minute)."""
    span = (max(times) - min(times)).total_seconds() if times else 0
    return max(60.0, span / 20) * 1000


def llm_cost_per_session(h: AgentHistory) -> go.Figure | None:
    """LLM spend per session (bars) with the number of calls on each bar."""
    if not h.llm_calls:
        return None
    sessions = summarise_sessions(h.llm_calls)
    fig = go.Figure(go.Bar(
        x=[s["session"] for s in sessions], y=[s["cost_usd"] for s in sessions],
        text=[f"{s['calls']} calls" for s in sessions], textposition="auto", width=0.5 if len(sessions) < 3 else None,
        customdata=[[s["prompt_tokens"], s["completion_tokens"], s["latency_seconds"], s["errors"]]
                    for s in sessions],
        hovertemplate="session %{x}<br>$%{y:.4f}<br>%{customdata[0]} prompt + %{customdata[1]} completion "
                      "tokens<br>%{customdata[2]:.1f} s in calls, %{customdata[3]} errors<extra></extra>"))
    fig.update_layout(title="LLM calls and cost per session", xaxis_title="session", yaxis_title="cost (USD)",
                      xaxis=dict(type="category"), **LAYOUT)
    return fig
