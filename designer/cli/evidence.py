"""What decided a promotion, as lines and JSON for ``review show`` and ``history show``:
the validation comparison at its granted alpha, the error-control stream's state, the
confirmation, and the sealed test (its veto check; its numbers once a person can no longer
pick on them, i.e. after approval or rejection, or when it vetoed)."""
from __future__ import annotations

from typing import Any, TYPE_CHECKING

from designer.cli.output import number, p_equals
from designer.error_control import Procedure, budget
from designer.promotion import format_p
from knowledge_base.models import Experiment, PromotionState

if TYPE_CHECKING:
    from knowledge_base.store import Store

_DECIDED = (PromotionState.APPROVED, PromotionState.REJECTED)


def evidence_json(store: Store, exp: Experiment) -> dict[str, Any]:
    """The stored evidence, the subject's error-control budget and the sealed-test check."""
    ev = dict(exp.evidence or {})
    tests = store.list_error_control_tests(exp.agent_name)
    if tests:
        last = tests[-1]
        state = budget(Procedure(last.procedure, last.target_fdr, last.initial_wealth), tests)
        ev["error_control_budget"] = {"procedure": state.procedure, "target_fdr": state.target_fdr,
                                      "tests": state.tests, "discoveries": state.discoveries,
                                      "alpha_spent": state.alpha_spent, "next_alpha": state.next_alpha,
                                      "wealth": state.wealth if state.procedure == "lord++" else None}
    if exp.family == "pipeline":
        ev["pipeline"] = pipeline_json(store, exp)
    verdict = (store.get_test_metrics(exp.id) or {}).get("verdict")
    if verdict:
        shown = exp.promotion in _DECIDED or verdict.get("vetoed")
        ev["sealed_test"] = verdict if shown else {"vetoed": False, "hidden": "numbers shown after the decision"}
    return ev


def visible_test_metrics(store: Store, exp: Experiment) -> dict[str, Any]:
    """Sealed-test metrics of ``exp`` once a person can no longer pick on them (approved or
    rejected) or when they vetoed auto-approval; {} otherwise."""
    test = store.get_test_metrics(exp.id) or {}
    shown = exp.promotion in _DECIDED or (test.get("verdict") or {}).get("vetoed")
    return dict(test.get("metrics") or {}) if shown else {}


def gain_text(c: dict[str, Any]) -> str:
    """``+0.0123 [95% CI +0.0050, +0.0190]`` of a comparison."""
    return (f"{number(c['effect'], signed=True)} [95% CI {number(c['ci_low'], signed=True)}, "
            f"{number(c['ci_high'], signed=True)}]")


def evidence_lines(ev: dict[str, Any]) -> list[str]:
    """Human lines for ``evidence_json``'s result; every number names its metric and split."""
    metric = ev.get("metric", "inner reward")
    lines = []
    if (v := ev.get("validation")):
        lines.append(f"validation {metric}: {number(v['candidate_mean'])} vs parent {ev.get('parent_version', '')} "
                     f"{number(v['parent_mean'])}; gain {gain_text(v)} over {v['n_users']} users, "
                     f"{p_equals(v['p_value'], v.get('p_method', 'permutation'))} "
                     f"({v.get('p_method', 'permutation')}) at alpha={format_p(v['alpha'])}: {v['reason']}")
    if (pending := ev.get("provisional_incumbent")):
        lines.append(f"  the bar was experiment {pending} (waiting for review, better than the champion): "
                     "the provisional incumbent")
    if (c := ev.get("error_control")):
        lines.append(f"error control: {c['procedure']} test #{c['seq']} of this agent's stream, "
                     f"alpha={format_p(c['alpha'])} (target FDR {c['target_fdr']})")
    if (b := ev.get("error_control_budget")):
        wealth = f", wealth left {b['wealth']:.2e}" if b.get("wealth") is not None else ""
        lines.append(f"  stream now: {b['tests']} tests, {b['discoveries']} discoveries, alpha spent "
                     f"{b['alpha_spent']:.2e}, next test's alpha {format_p(b['next_alpha'])}{wealth}")
    if (f := ev.get("confirmation")):
        lines.append(f"confirmation: {f['reason']}")
        if (w := f.get("window")):
            lines.append(f"  earlier window {metric}: {number(w['candidate_mean'])} vs parent {number(w['parent_mean'])}, "
                         f"gain {gain_text(w)} "
                         f"over {w['n_users']} users")
        if f.get("stochastic") is not None:
            seeded = f.get("seed_comparison")
            lines.append("  another seed: " + ("deterministic (same per-user scores)" if not f["stochastic"] else
                         f"stochastic; two-seed validation gain {number(seeded['effect'], signed=True)}, "
                         f"p={format_p(seeded['p_value'])}"))
        if f.get("experiment_ids"):
            lines.append(f"  confirmation runs: experiments {', '.join(map(str, f['experiment_ids']))}")
    if (t := ev.get("sealed_test")):
        if t.get("hidden"):
            lines.append("sealed test: not significantly below the parent (numbers shown after the decision)")
        else:
            flag = "VETO (auto-approval stopped): " if t.get("vetoed") else "sealed test: "
            lines.append(flag + t.get("reason", ""))
            if v and "delta" in t:
                lines.append(f"  test delta {t['delta']:+.4f} next to validation delta {v['effect']:+.4f}")
    if (s := ev.get("superseded")):
        lines.append(f"superseded: {s}")
    for broken in ev.get("infeasible", []):
        lines.append(f"INFEASIBLE (never promoted): {broken['reason']}")
    if (pipe := ev.get("pipeline")):
        lines += pipeline_lines(pipe, metric)
    return lines


def pipeline_json(store: Store, exp: Experiment) -> dict[str, Any]:
    """A pipeline experiment's components' inner rewards (next to the parent's), its
    per-segment validation metrics, constraint slack and the spec diff against the parent."""
    import difflib

    from designer.pipelines.spec import PipelineSpec

    code = store.get_code(exp.code_hash)
    parent_exp = store.get_experiment(exp.parent_experiment_id) if exp.parent_experiment_id else None
    while parent_exp is not None and parent_exp.stage == "cheap" and parent_exp.parent_experiment_id:
        parent_exp = store.get_experiment(parent_exp.parent_experiment_id)  # the cheap stage's incumbent
    parent = store.get_version_by_id(exp.parent_version_id) if exp.parent_version_id else None
    parent_code = store.get_code(parent.code_hash) if parent is not None and parent.code_hash else ""
    inner = {k.removeprefix("inner/"): v for k, v in exp.metrics.items() if k.startswith("inner/")}
    theirs = {k.removeprefix("inner/"): v for k, v in (parent_exp.metrics if parent_exp else {}).items()
              if k.startswith("inner/")}
    spec = PipelineSpec.from_yaml(code, "pipeline experiment")
    slack = {c.describe(): (c.slack(float(exp.metrics[c.metric])) if c.metric in exp.metrics else None)
             for c in spec.outer_reward.constraints}
    diff = list(difflib.unified_diff(parent_code.splitlines(), code.splitlines(),
                                     f"{parent.tag if parent else 'parent'}", f"experiment {exp.id}", lineterm=""))
    return {"inner_rewards": inner, "parent_inner_rewards": theirs, "segments": exp.segments,
            "constraint_slack": slack, "spec_diff": diff,
            "sources_cached": exp.metrics.get("sources_cached"), "sources": exp.metrics.get("sources")}


def pipeline_lines(pipe: dict[str, Any], metric: str) -> list[str]:
    lines = ["pipeline components (validation inner rewards; parent's alongside where it had the same label):"]
    for key, value in sorted(pipe["inner_rewards"].items()):
        before = pipe["parent_inner_rewards"].get(key)
        lines.append(f"  {key}: {value:.4f}" + (f" (parent {before:.4f}, {value - before:+.4f})" if before is not None else ""))
    for name, row in sorted((pipe.get("segments") or {}).items()):
        if name in ("cold", "medium", "heavy") and metric in row:
            lines.append(f"  segment {name}: val {metric} {row[metric]:.4f} over {int(row.get('n_users', 0))} users")
    for constraint, slack in pipe["constraint_slack"].items():
        lines.append(f"  constraint {constraint}: " + ("no such metric" if slack is None else
                                                        f"slack {slack:+.4g}" + (" (violated)" if slack < 0 else "")))
    if pipe["spec_diff"]:
        lines.append("  spec diff against the parent:")
        lines += [f"    {line}" for line in pipe["spec_diff"]]
    return lines
