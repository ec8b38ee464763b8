"""Plotly figures of one pipeline's history; like ``figures``, each returns a figure or
``None`` when there is nothing to draw."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from designer.report import figures
from designer.report.figures import LAYOUT, segment_bars
from designer.report.markup import e
from designer.report.pipeline_history import PipelineHistory, component_names, inner_rewards
from knowledge_base.models import Experiment, ExperimentStatus, PromotionState

KIND_COLOURS = {"individual": "#1f77b4", "compositional": "#ff7f0e"}
PHASE_ROW_PX = 56


def outer_best_so_far(ph: PipelineHistory) -> go.Figure | None:
    """Running maximum of the validation outer reward over the feasible full-stage runs, in
    the order they ran (one line per data set); every run a marker (INFEASIBLE ones crosses);
    the runs of each evolve phase shaded in its kind's colour."""
    h = ph.history
    runs = [x for x in h.experiments if x.stage == "full" and x.status is ExperimentStatus.COMPLETED
            and x.inner_reward is not None]
    if not runs:
        return None
    order = list(range(1, len(runs) + 1))
    by_dataset: dict[str, list[int]] = defaultdict(list)
    for i, x in zip(order, runs):
        by_dataset[x.dataset_key].append(i)
    fig = go.Figure()
    for dataset, indices in by_dataset.items():
        best, ys = None, []
        for i in indices:
            x = runs[i - 1]
            if x.promotion is not PromotionState.INFEASIBLE:
                best = x.inner_reward if best is None else max(best, x.inner_reward)
            ys.append(best)
        fig.add_trace(go.Scatter(x=indices, y=ys, mode="lines", line_shape="hv", line=dict(width=3, color="#2ca02c"),
                                 name="best so far" if len(by_dataset) == 1 else f"best so far on {dataset}",
                                 hovertemplate=f"best {h.metric} %{{y:.4f}}<extra></extra>"))
    phase_of = {x.id: p for p in ph.phases for x in runs if _during(x, p, h.experiments)}
    fig.add_trace(go.Scatter(
        x=order, y=[x.inner_reward for x in runs], mode="markers", name="full-stage run",
        marker=dict(size=10, symbol=[_symbol(x) for x in runs],
                    color=["#d62728" if x.promotion is PromotionState.INFEASIBLE else "#1f77b4" for x in runs]),
        text=[f"experiment {x.id} · {x.proposer} · {x.promotion.value} · {x.created_at:%H:%M:%S}"
              + (f"<br>evolve phase {phase_of[x.id]['id']} ({phase_of[x.id]['kind']})" if x.id in phase_of else "")
              for x in runs],
        hovertemplate=f"%{{text}}<br>{h.metric} %{{y:.4f}}<extra></extra>"))
    for p in ph.phases:
        inside = [i for i, x in zip(order, runs) if phase_of.get(x.id) is p]
        if inside:
            fig.add_vrect(x0=min(inside) - 0.5, x1=max(inside) + 0.5, line_width=0, opacity=0.12, layer="below",
                          fillcolor=KIND_COLOURS.get(p["kind"], "#999"))
    fig.update_layout(title=f"Best so far: {h.metric} of the feasible full-stage runs",
                      xaxis_title="full-stage run of the pipeline (★ promoted, × INFEASIBLE: never counts; "
                                  "shaded: during an evolve phase)",
                      yaxis_title=h.metric, xaxis=dict(dtick=1, rangemode="tozero"), **LAYOUT)
    return fig


def _symbol(x: Experiment) -> str:
    return {PromotionState.INFEASIBLE: "x", PromotionState.APPROVED: "star"}.get(x.promotion, "circle")


def _during(x: Experiment, phase: dict[str, Any], experiments: list[Experiment]) -> bool:
    return phase["started_at"] <= x.created_at <= _phase_end(phase, experiments)


def inner_vs_parent(ph: PipelineHistory) -> go.Figure | None:
    """Each component's inner reward in the champion's run next to its parent's.

    Sources are matched by what they are (``recency_ease``, ``recommender/v3``), the other
    components by their place (``b0-ranker``); a component only one of them has gets one bar.
    """
    h = ph.history
    champion = h.champion
    parent = h.version_by_id(champion.parent.id) if champion and champion.parent else None
    mine = _by_component(inner_rewards(champion.experiment if champion else None), ph.spec_of(champion))
    if not mine:
        return None
    theirs = _by_component(inner_rewards(parent.experiment if parent else None), ph.spec_of(parent))
    keys = list(mine) + [k for k in theirs if k not in mine]
    fig = go.Figure()
    for view, values, colour in ((parent, theirs, "#aec7e8"), (champion, mine, "#1f77b4")):
        if values:
            fig.add_trace(go.Bar(x=keys, y=[values[k][0] if k in values else None for k in keys],
                                 name=view.version.tag, marker_color=colour,
                                 customdata=[values[k][1] if k in values else "" for k in keys],
                                 hovertemplate="%{customdata}: %{y:.4f}<extra>" + view.version.tag + "</extra>"))
    against = f"parent {parent.version.tag}" if theirs else "no scored parent"
    fig.update_layout(title=f"Inner reward per component: champion {champion.version.tag} vs {against}",
                      barmode="group", yaxis_title="inner reward (validation)", **LAYOUT)
    return fig


def _by_component(inner: dict[str, float], spec: Any) -> dict[str, tuple[float, str]]:
    """``{"recency_ease · recall@100": (0.92, "src0 recency_ease"), "b0-ranker · ndcg@10": ...}``."""
    names = component_names(spec) if spec is not None else {}
    out: dict[str, tuple[float, str]] = {}
    for key, value in inner.items():
        label, _, metric = key.partition("/")
        ref = names.get(label, label)
        place = ref if label.startswith("src") else label
        if f"{place} · {metric}" in out:        # the same component twice (other params)
            place = f"{ref} ({label})"
        out[f"{place} · {metric}"] = (value, f"{label} {ref}")
    return out


def segments(ph: PipelineHistory) -> go.Figure | None:
    """The champion's validation outer reward per user segment, next to its parent's (and the
    sealed test's when both have one); the champion alone when it has no scored parent."""
    h = ph.history
    fig = figures.segments_vs_parent(h)
    champion = h.champion
    if fig is not None or champion is None or champion.experiment is None or not champion.experiment.segments:
        return fig
    key = h.agent.inner_reward
    fig = go.Figure(segment_bars(champion.experiment.segments, key, f"{champion.version.tag} val", "#1f77b4"))
    fig.update_layout(title=f"Champion {champion.version.tag} by segment (val {key}; no scored parent)",
                      yaxis_title=key, **LAYOUT)
    return fig


def phases_timeline(ph: PipelineHistory) -> go.Figure | None:
    """One bar per evolve phase over time, coloured by kind, captioned with its target,
    iterations, promotions and why it ended."""
    if not ph.phases:
        return None
    rows = [f"phase {p['id']}" for p in ph.phases]
    fig = go.Figure()
    for kind, colour in KIND_COLOURS.items():
        mine = [(row, p) for row, p in zip(rows, ph.phases) if p["kind"] == kind]
        if not mine:
            continue
        ends = [_phase_end(p, ph.history.experiments) for _, p in mine]
        fig.add_trace(go.Bar(
            orientation="h", y=[row for row, _ in mine], base=[p["started_at"] for _, p in mine],
            x=[max((end - p["started_at"]).total_seconds() * 1000, 1.0) for (_, p), end in zip(mine, ends)],
            name=kind, marker_color=colour, width=0.45, customdata=[_caption(p) for _, p in mine],
            hovertemplate="%{customdata}<extra></extra>"))
    for row, p in zip(rows, ph.phases):
        fig.add_annotation(x=0, xref="paper", y=row, yref="y", yshift=17, xanchor="left", showarrow=False,
                           text=_caption(p), font=dict(size=12))
    layout = {**LAYOUT, "height": 140 + PHASE_ROW_PX * len(rows), "margin": dict(l=80, r=20, t=60, b=50)}
    fig.update_layout(title="Evolve phases (bar: when it ran; colour: kind)", barmode="overlay",
                      xaxis=dict(type="date", title="time (UTC)"),
                      yaxis=dict(autorange="reversed", type="category", categoryorder="array", categoryarray=rows),
                      **layout)
    return fig


def _caption(p: dict[str, Any]) -> str:
    ended = p["ended_because"] or "running or killed (a new evolve resumes it)"
    adoptions = p.get("adoptions") or []
    adopted = f", {sum(a['adopted'] for a in adoptions)} of {len(adoptions)} adopted" if adoptions else ""
    return (f"<b>{e(p['kind'])}</b> on <b>{e(p['target'])}</b>: {p['iterations']} iteration(s), "
            f"{p['promotions']} promoted{adopted} · ended: {e(ended)}")


def _phase_end(p: dict[str, Any], experiments: list[Experiment]) -> datetime:
    """When the phase ended; for one still open, the last pipeline experiment since it began."""
    if p["ended_at"] is not None:
        return p["ended_at"]
    later = [x.created_at for x in experiments if x.created_at >= p["started_at"]]
    return max(later, default=p["started_at"])
