"""``agenticrs review list|show ID|approve ID|reject ID --reason TEXT``."""
from __future__ import annotations

import difflib
from typing import Optional

import typer

from designer.cli.evidence import evidence_json, evidence_lines, gain_text, visible_test_metrics
from designer.cli.output import emit_json, err, fmt, metric_cells, number, out, p_equals, reward_header, table, when
from designer.cli.services import Services
from designer.errors import UsageError
from designer.promotion import align, compare
from designer.settings import PromotionConfig
from knowledge_base.errors import NotFoundError
from knowledge_base.models import PromotionState

review_app = typer.Typer(no_args_is_help=True, help="Review candidates that beat their parent.")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")


def _vetoed(store, exp_id: int) -> bool | None:
    """Whether the sealed test vetoed auto-approval (None: not sealed yet). Its numbers are
    not listed: pending candidates are never ranked on the test split."""
    verdict = (store.get_test_metrics(exp_id) or {}).get("verdict")
    return None if verdict is None else bool(verdict.get("vetoed"))


@review_app.command("list")
def list_pending(ctx: typer.Context, agent: Optional[str] = typer.Option(None, "--agent"),
                 json_out: bool = typer.Option(False, "--json")) -> None:
    """Candidates waiting for a decision, newest first."""
    s = Services(ctx.obj)
    rows = _pending(s, agent)[:200]
    data = [{"id": e.id, "agent": e.agent_name, "family": e.family, "proposer": e.proposer,
             "model": e.proposal.get("model"), "inner_reward": e.inner_reward, "p_value": e.p_value,
             "effect_size": e.effect_size, "alpha": (e.evidence or {}).get("validation", {}).get("alpha"),
             "sealed_test_vetoed": _vetoed(s.store, e.id),
             "parent_version_id": e.parent_version_id, "created_at": e.created_at} for e in rows]
    if json_out:
        return emit_json(data)
    if not data:
        out.print("nothing waits for review")
        return
    table("pending review", ["id", "agent", "family", "proposer", reward_header(s.store, [d["agent"] for d in data]),
                             "val gain", "p", "alpha", "sealed test"],
          [[d["id"], d["agent"], d["family"], d["proposer"], d["inner_reward"], d["effect_size"], d["p_value"],
            d["alpha"], {None: "-", True: "VETO", False: "ok"}[d["sealed_test_vetoed"]]] for d in data],
          optional=("alpha", "agent", "proposer"), wrap=("agent", "family"))


def _incumbent(s: Services, exp):
    inc_id = exp.proposal.get("incumbent_experiment")
    return s.store.get_experiment(inc_id) if inc_id else None


@review_app.command("show")
def show(ctx: typer.Context, experiment_id: int, json_out: bool = typer.Option(False, "--json")) -> None:
    """Diff against the parent, metrics with confidence intervals, p-value, segments, sealed test."""
    s = Services(ctx.obj)
    exp = s.store.get_experiment(experiment_id)
    parent = s.store.get_version_by_id(exp.parent_version_id) if exp.parent_version_id else None
    parent_code = s.repo.read_version(exp.agent_name, parent.number).code if parent else ""
    code_diff = "".join(difflib.unified_diff(parent_code.splitlines(True), s.store.get_code(exp.code_hash).splitlines(True),
                                             f"{parent.tag if parent else 'none'}/agent.py", f"experiment-{exp.id}/agent.py"))
    incumbent = _incumbent(s, exp)
    comparison = None
    evidence = evidence_json(s.store, exp)
    if incumbent is not None and not exp.evidence:  # judged before evidence was stored
        try:
            mine = s.store.get_user_scores(exp.id)
            theirs = s.store.get_user_scores(incumbent.id)
            comparison = compare(*align(*mine, *theirs), PromotionConfig())
        except NotFoundError:
            comparison = None
    data = {"id": exp.id, "agent": exp.agent_name, "promotion": exp.promotion.value, "family": exp.family,
            "proposer": exp.proposer, "model": exp.proposal.get("model"), "ask": exp.proposal.get("ask"),
            "rationale": exp.proposal.get("rationale"), "params": exp.params,
            "parent": parent.tag if parent else None, "validation": exp.metrics,
            "parent_validation": incumbent.metrics if incumbent else {},
            "comparison": comparison.model_dump() if comparison else (exp.evidence or {}).get("validation"),
            "evidence": evidence,
            "segments": exp.segments, "parent_segments": incumbent.segments if incumbent else {},
            "test": visible_test_metrics(s.store, exp), "diff": code_diff,
            "reviews": [r.model_dump() for r in s.store.list_reviews(experiment_id=exp.id)]}
    if json_out:
        return emit_json(data)
    out.print(f"[bold]experiment {exp.id}[/] for {exp.agent_name}: {exp.promotion.value}; "
              f"parent {data['parent']}; {exp.proposer} ({exp.family})")
    if data["model"]:
        out.print(f"model: {data['model']}   ask: {data['ask']}")
    out.print(f"rationale: {data['rationale']}")
    for r in s.store.list_reviews(experiment_id=exp.id):
        out.print(f"review: {r.decision.value} by {r.reviewer} on {when(r.created_at)}"
                  + (f"; reason: {r.reason}" if r.reason else ""), highlight=False, markup=False)
    for line in evidence_lines(evidence):
        out.print(line, highlight=False, markup=False)
    if comparison:
        stored_p = exp.p_value if exp.p_value is not None else comparison.p_value
        metric = s.store.get_agent(exp.agent_name).inner_reward
        out.print(f"validation {metric}: {number(comparison.candidate_mean)} vs parent {number(comparison.parent_mean)}; "
                  f"gain {gain_text(comparison.model_dump())}, "
                  f"{p_equals(stored_p, comparison.p_method)} (the test that decided promotion) over {comparison.n_users} users")
    keys = sorted(exp.metrics)
    table("validation (candidate vs parent) and sealed test", ["metric", "val candidate", "val parent", "val delta", "test"],
          [[k, *metric_cells(k, exp.metrics.get(k), data["parent_validation"].get(k)),
            fmt(data["test"].get(k), k)] for k in keys])
    seg_rows = []
    for seg, values in sorted(exp.segments.items()):
        for metric in ("ndcg@10",):
            if metric in values:
                before = data["parent_segments"].get(seg, {}).get(metric)
                seg_rows.append([seg, values[metric], before, _delta(values[metric], before)])
    if seg_rows:
        table("per segment ndcg@10", ["segment", "candidate", "parent", "delta"], seg_rows)
    out.print(code_diff or "(code identical to the parent; only params differ)", highlight=False, markup=False)


def _delta(a, b):
    return a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None


@review_app.command("approve")
def approve(ctx: typer.Context, experiment_id: int,
            reason: str = typer.Option("", "--reason", help="optional note stored with the review")) -> None:
    """Commit the candidate as the agent's next version (git commit + tag) and make it champion."""
    s = Services(ctx.obj)
    version = s.releaser.approve(experiment_id, reason=reason)
    err.print(f"approved: {version.tag} (commit {version.git_sha[:10]}) is now the champion")
    moot = s.releaser.supersede_stale(version.agent_name)
    if moot:
        err.print(f"superseded {len(moot)} other pending candidate(s) compared with the old champion "
                  f"({', '.join(map(str, moot))}): `agenticrs design` compares new candidates with {version.tag}")


@review_app.command("reject")
def reject(ctx: typer.Context,
           experiment_id: Optional[int] = typer.Argument(None, metavar="ID", help="experiment to reject"),
           reason: str = typer.Option(..., "--reason", metavar="TEXT",
                                      help="why; stored as knowledge for later proposals"),
           all_pending: bool = typer.Option(False, "--all-pending", help="reject every pending candidate"),
           agent: Optional[str] = typer.Option(None, "--agent", metavar="NAME",
                                               help="with --all-pending: only this agent's")) -> None:
    """Reject a candidate (or every pending one); the reason is stored and shown to later proposers."""
    if (experiment_id is None) == (not all_pending):
        raise UsageError("give one experiment ID or --all-pending (e.g. review reject --all-pending --reason TEXT)")
    if agent and not all_pending:
        raise UsageError("--agent selects candidates for --all-pending; drop it when rejecting one ID")
    s = Services(ctx.obj)
    if experiment_id is not None:
        s.releaser.reject(experiment_id, reason)
        err.print(f"rejected experiment {experiment_id}; reason stored")
        return
    ids = [e.id for e in _pending(s, agent)]
    for exp_id in ids:
        s.releaser.reject(exp_id, reason)
    err.print(f"rejected {len(ids)} pending experiment(s){_listed(ids)}; reason stored" if ids
              else "nothing waits for review" + (f" for agent {agent}" if agent else ""))


def _listed(ids: list[int]) -> str:
    return f" ({', '.join(map(str, ids))})" if ids else ""


def _pending(s: Services, agent: Optional[str]):
    """Every pending candidate (of ``agent``), newest first; an unknown agent is an error."""
    if agent:
        s.store.get_agent(agent)
    return s.store.list_experiments(agent_name=agent, promotion=PromotionState.PENDING_REVIEW, limit=100_000)
