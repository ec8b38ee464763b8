"""``agenticrs history [--agent] [--status] [--limit]``, ``history show ID``, ``history diff A B``."""
from __future__ import annotations

import difflib
from typing import Optional

import typer

from designer.cli.evidence import evidence_json, evidence_lines
from designer.cli.output import emit_json, fmt, out, table, when
from designer.cli.plot import best_so_far, curve
from designer.cli.services import Services
from designer.errors import UsageError
from knowledge_base.models import ExperimentStatus

history_app = typer.Typer(invoke_without_command=True, help="Experiment history.")


def register(app: typer.Typer) -> None:
    app.add_typer(history_app, name="history")


def experiment_json(e) -> dict:
    return {"id": e.id, "agent": e.agent_name, "stage": e.stage, "status": e.status.value,
            "promotion": e.promotion.value, "proposer": e.proposer, "family": e.family,
            "inner_reward": e.inner_reward, "p_value": e.p_value, "effect_size": e.effect_size,
            "wall_seconds": e.wall_seconds, "dataset": e.dataset_key, "session": e.session_id,
            "created_at": e.created_at}


def _status(value: Optional[str]) -> Optional[ExperimentStatus]:
    if value is None:
        return None
    try:
        return ExperimentStatus(value.upper())
    except ValueError:
        raise UsageError(f"unknown status {value!r}: use one of "
                         f"{', '.join(s.value for s in ExperimentStatus)}") from None


@history_app.callback()
def history(ctx: typer.Context, agent: Optional[str] = typer.Option(None, "--agent"),
            status: Optional[str] = typer.Option(None, "--status"),
            limit: int = typer.Option(30, "--limit", min=1),
            json_out: bool = typer.Option(False, "--json")) -> None:
    """Recent experiments, newest first, and the best-so-far curve of the inner reward."""
    if ctx.invoked_subcommand is not None:
        return
    s = Services(ctx.obj)
    if agent:
        s.store.get_agent(agent)
    rows = s.store.list_experiments(agent_name=agent, status=_status(status), limit=limit)
    if json_out:
        return emit_json([experiment_json(e) for e in rows])
    if not rows:
        out.print("no experiments yet: run `agenticrs design --agent recommender`")
        return
    table("history", ["id", "agent", "stage", "status", "promotion", "proposer", "family", "reward", "p", "secs"],
          [[e.id, e.agent_name, e.stage, e.status, e.promotion, e.proposer, e.family, e.inner_reward,
            e.p_value, e.wall_seconds] for e in rows])
    full = s.store.list_experiments(agent_name=agent, status=ExperimentStatus.COMPLETED, stage="full",
                                    limit=5000, newest_first=False)
    if agent is None and len({e.agent_name for e in full}) > 1:
        full = []  # rewards of different agents do not share a scale
        out.print("pass --agent NAME for the best-so-far curve")
    if full:
        out.print(f"best so far (validation {full[0].agent_name} inner reward, full-stage runs, oldest first):")
        out.print(curve(best_so_far([e.inner_reward for e in full]), ascii_only=out.no_color), highlight=False)


@history_app.command("show")
def show(ctx: typer.Context, experiment_id: int, json_out: bool = typer.Option(False, "--json")) -> None:
    """One experiment: proposal, params, metrics, logs and failure."""
    s = Services(ctx.obj)
    e = s.store.get_experiment(experiment_id)
    failures = s.store.list_failures(experiment_id=e.id)
    folder = s.workspace.experiment_dir(e.id)
    logs = {p.name: p.read_text()[-3000:] for p in sorted(folder.glob("*.log"))} if folder.exists() else {}
    evidence = evidence_json(s.store, e) if e.evidence else {}
    if json_out:
        return emit_json(experiment_json(e) | {"proposal": e.proposal, "params": e.params,
                                               "metrics": e.metrics, "segments": e.segments,
                                               "evidence": evidence,
                                               "failures": [f.model_dump() for f in failures],
                                               "code_hash": e.code_hash})
    out.print(f"[bold]experiment {e.id}[/] {e.agent_name} {e.stage} {e.status.value} {e.promotion.value}")
    out.print(f"proposer {e.proposer}  family {e.family}  created {when(e.created_at)}  tier {e.sandbox_tier}")
    out.print(f"proposal: {e.proposal.get('kind')} {e.proposal.get('rationale', '')}")
    if e.proposal.get("model"):
        out.print(f"model: {e.proposal['model']}  ask: {e.proposal.get('ask')}")
    out.print(f"params: {e.params}")
    for line in evidence_lines(evidence):
        out.print(line, highlight=False, markup=False)
    if e.metrics:
        table("validation metrics", ["metric", "value"], sorted(e.metrics.items()))
    for f in failures:
        out.print(f"[red]failure {f.kind.value}[/]: {f.message}")
        if f.traceback_tail:
            out.print(f.traceback_tail, highlight=False, markup=False)
    for name, text in logs.items():
        if text.strip():
            out.print(f"--- {name} (tail) ---")
            out.print(text, highlight=False, markup=False)


@history_app.command("diff")
def diff(ctx: typer.Context, a: int, b: int, json_out: bool = typer.Option(False, "--json")) -> None:
    """What differs between experiments A and B: code, params, metrics (with deltas)."""
    s = Services(ctx.obj)
    ea, eb = s.store.get_experiment(a), s.store.get_experiment(b)
    params = {k: (ea.params.get(k), eb.params.get(k)) for k in sorted(set(ea.params) | set(eb.params))
              if ea.params.get(k) != eb.params.get(k)}
    metrics = {k: (ea.metrics.get(k), eb.metrics.get(k)) for k in sorted(set(ea.metrics) | set(eb.metrics))
               if ea.metrics.get(k) != eb.metrics.get(k)}
    code = "" if ea.code_hash == eb.code_hash else "".join(difflib.unified_diff(
        s.store.get_code(ea.code_hash).splitlines(True), s.store.get_code(eb.code_hash).splitlines(True),
        f"experiment {a}", f"experiment {b}"))
    fields = {k: (getattr(ea, k), getattr(eb, k)) for k in ("family", "proposer", "stage", "status", "dataset_key")
              if getattr(ea, k) != getattr(eb, k)}
    if json_out:
        return emit_json({"fields": fields, "params": params, "metrics": {
            k: {"a": x, "b": y, "delta": (y - x) if x is not None and y is not None else None}
            for k, (x, y) in metrics.items()}, "code_diff": code})
    if not (fields or params or metrics or code):
        out.print(f"experiments {a} and {b} do not differ")
    for k, (x, y) in fields.items():
        out.print(f"{k}: {fmt(x)} -> {fmt(y)}")
    if params:
        table("params", ["param", str(a), str(b)], [[k, x, y] for k, (x, y) in params.items()])
    if metrics:
        table("metrics", ["metric", str(a), str(b), "delta"],
              [[k, x, y, (y - x) if x is not None and y is not None else None] for k, (x, y) in metrics.items()])
    if code:
        out.print(code, highlight=False, markup=False)
