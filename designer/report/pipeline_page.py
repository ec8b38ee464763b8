"""A pipeline's section of the report: the champion's graph, the outer reward's best so far,
the lineage of versions, inner rewards against the parent, segments, INFEASIBLE candidates,
the evolve phases and their adoptions, then the agent-like plots and the spec diffs."""
from __future__ import annotations

from typing import Any

from designer.cli.pipelines import describe
from designer.report import figures, pipeline_figures
from designer.report.graph_svg import pipeline_svg
from designer.report.markup import diffs, e, figure, reward, table, test_ndcg
from designer.report.pipeline_history import PipelineHistory
from knowledge_base.models import ExperimentStatus

PIPELINE_STYLE = """
svg.pipeline-graph{max-width:100%;height:auto;font:12px system-ui,sans-serif;margin:8px 0}
svg.pipeline-graph .node-title{font-weight:600} svg.pipeline-graph .node-sub{fill:#555;font-size:11px}
svg.pipeline-graph .edge-label,svg.pipeline-graph .band-label{fill:#777;font-size:11px}
p.graph{font-family:ui-monospace,monospace;font-size:12px;color:#444}
table.rows td.wrap{white-space:normal;min-width:200px}
"""


def pipeline_section(ph: PipelineHistory) -> str:
    """The ``<section id="pipeline-NAME">`` of ``ph``."""
    h, name = ph.history, ph.agent.name
    parts = [f'<section id="pipeline-{e(name)}"><h2>{e(name)} (pipeline)</h2>', _summary(ph),
             "<h3>Champion graph</h3>", _graph(ph)]
    plots = [("best", "Best so far of the outer reward", pipeline_figures.outer_best_so_far(ph),
              "no completed full-stage run yet: run `agenticrs compose --pipeline " + name + "`"),
             ("lineage", "Version lineage", figures.lineage(h), "no scored version yet"),
             ("inner", "Inner reward per component, champion vs parent", pipeline_figures.inner_vs_parent(ph),
              "the champion's run recorded no inner rewards"),
             ("segments", "Champion vs parent by segment", pipeline_figures.segments(ph),
              "the champion has no scored run with segments"),
             ("phases", "Evolve phases", pipeline_figures.phases_timeline(ph),
              f"no evolve phase yet: run `agenticrs evolve --pipeline {name}`"),
             ("experiments", "Every experiment", figures.experiments_timeline(h), "no experiment yet"),
             ("failures", "Failure classes over time", figures.failures_over_time(h), "no failure recorded"),
             ("llm", "LLM calls and cost per session (compose --proposer llm)", figures.llm_cost_per_session(h),
              "no LLM call recorded")]
    for key, heading, fig, missing in plots:
        parts.append(f"<h3>{heading}</h3>" + figure(fig, f"{name}-pipeline-{key}", missing))
        if key == "lineage":
            parts.append(_versions_table(ph))
        if key == "segments":
            parts.append("<h3>INFEASIBLE candidates</h3>" + _infeasible_table(ph))
        if key == "phases":
            parts.append(_phases_table(ph) + "<h3>Adoptions</h3>" + _adoptions_table(ph))
    parts.append(diffs(h))
    return "\n".join(parts) + "</section>"


def _summary(ph: PipelineHistory) -> str:
    h = ph.history
    done = [x for x in h.experiments if x.status is ExperimentStatus.COMPLETED]
    champion, spec = h.champion, ph.champion_spec
    adoptions = [a for p in ph.phases for a in p["adoptions"]]
    rows = [("champion", f"{champion.version.tag}: {h.metric} "
                         f"{reward(champion.experiment.inner_reward if champion.experiment else None)}, "
                         f"sealed test ndcg@10 {test_ndcg(champion)}" if champion else "-"),
            ("graph", describe(spec) if spec else "-"),
            ("outer reward", _outer(spec) if spec else h.agent.inner_reward),
            ("versions", len(h.versions)),
            ("experiments", f"{len(h.experiments)} ({len(done)} completed, {len(ph.infeasible)} INFEASIBLE, "
                            f"{len(h.failures)} failures)"),
            ("evolve", f"{len(ph.phases)} phases, {sum(a['adopted'] for a in adoptions)} of {len(adoptions)} "
                       f"component versions adopted, {sum(a['misaligned'] for a in adoptions)} misaligned")]
    return '<table class="summary">' + "".join(f"<tr><td>{k}</td><td>{e(v)}</td></tr>" for k, v in rows) + "</table>"


def _outer(spec: Any) -> str:
    bounds = ", ".join(c.describe() for c in spec.outer_reward.constraints)
    return spec.outer_reward.objective + (f" subject to {bounds}" if bounds else " (no constraints)")


def _graph(ph: PipelineHistory) -> str:
    spec, champion = ph.champion_spec, ph.history.champion
    if spec is None:
        return '<p class="note">no champion spec to draw (no version, or its YAML no longer parses)</p>'
    line = describe(spec)
    return (pipeline_svg(spec, f"{ph.agent.name}-graph", caption=f"{champion.version.tag}: {line}")
            + f'<p class="graph">{e(champion.version.tag)}: {e(line)}</p>')


def _versions_table(ph: PipelineHistory) -> str:
    h, rows = ph.history, []
    for v in h.versions:
        exp, promoted = v.experiment, v.promoted_by
        delta = ((v.test or {}).get("verdict") or {}).get("delta")
        spec = ph.spec_of(v)
        rows.append(["★" if v.version.is_champion else "", v.version.tag, v.parent.tag if v.parent else "-",
                     promoted.proposer if promoted else ("builtin" if v.parent is None else "rollback"),
                     reward(exp.inner_reward if exp else None),
                     f"{promoted.p_value:.4g}" if promoted and promoted.p_value is not None else "-",
                     test_ndcg(v), "-" if delta is None else f"{delta:+.4f}" + (" (below parent!)" if delta < 0 else ""),
                     describe(spec) if spec else "-", v.version.created_at.strftime("%Y-%m-%d %H:%M")])
    return table(["", "version", "parent", "proposer", h.metric, "p-value", "test ndcg@10", "test delta", "graph",
                  "created"], rows, {4, 5, 6, 7}, wrap={8})


def _infeasible_table(ph: PipelineHistory) -> str:
    if not ph.infeasible:
        return '<p class="note">no INFEASIBLE candidate: none broke a constraint of the outer reward</p>'
    rows = [[r.experiment.id, r.experiment.stage, r.experiment.created_at.strftime("%Y-%m-%d %H:%M:%S"),
             reward(r.experiment.inner_reward), "; ".join(r.reasons) or "-", r.graph or "-"] for r in ph.infeasible]
    return table(["experiment", "stage", "started", ph.history.metric, "broken constraints", "graph"], rows, {0, 3},
                 css="rows infeasible", wrap={4, 5})


def _phases_table(ph: PipelineHistory) -> str:
    if not ph.phases:
        return ""
    rows = [[p["id"], p["kind"], p["target"], p["iterations"], p["promotions"], p["started_because"],
             p["ended_because"] or "(running or killed: resumes)",
             f"{(p['ended_at'] - p['started_at']).total_seconds():.0f} s" if p["ended_at"] else "-"] for p in ph.phases]
    return table(["phase", "kind", "target", "iterations", "promoted", "started because", "ended because",
                  "took"], rows, {0, 3, 4, 7}, css="rows phases", wrap={5, 6})


def _adoptions_table(ph: PipelineHistory) -> str:
    """Each component version an individual phase promoted, re-scored inside the pipeline."""
    found = [(p["id"], a) for p in ph.phases for a in p["adoptions"]]
    if not found:
        return '<p class="note">no component version to adopt yet (no individual phase promoted one)</p>'
    metric = ph.history.metric
    rows = [[phase, a["component"], "adopted" if a["adopted"] else "MISALIGNED" if a["misaligned"] else "not adopted",
             _arrow(a["inner_before"], a["inner_after"]), _arrow(a["outer_before"], a["outer_after"]),
             a.get("experiment", "-")] for phase, a in found]
    return table(["phase", "component", "verdict", "inner reward (alone)", f"pipeline {metric}", "experiment"],
                 rows, {0, 5}, css="rows adoptions")


def _arrow(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return f"{reward(before)} → {reward(after)}"
    return f"{before:.4f} → {after:.4f} ({after - before:+.4f})"
