"""``agenticrs history [filters] [--sort] [--limit]``, ``history best``, ``history show ID``,
``history diff A B``."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Optional

import typer

from rich.markup import escape

from designer.cli.evidence import evidence_json, evidence_lines, visible_test_metrics
from designer.cli.output import emit_json, fmt, metric_cells, out, p_equals, reward_header, table, when
from designer.cli.plot import best_so_far, curve
from designer.cli.services import Options, Services
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
            "params": e.params, "created_at": e.created_at}


def _status(value: Optional[str]) -> Optional[ExperimentStatus]:
    if value is None:
        return None
    try:
        return ExperimentStatus(value.upper())
    except ValueError:
        raise UsageError(f"unknown status {value!r}: use one of "
                         f"{', '.join(s.value for s in ExperimentStatus)}") from None


SORTS = ("id", "reward")


@dataclass(frozen=True)
class Filters:
    """What ``history`` and ``history best`` select; ``dataset`` is a data set key or its
    start (``synthetic`` matches every synthetic key)."""

    agent: Optional[str] = None
    status: Optional[str] = None
    session: Optional[str] = None
    dataset: Optional[str] = None
    family: Optional[str] = None
    proposer: Optional[str] = None
    stage: Optional[str] = None

    def query(self, s: Services) -> dict:
        """Keyword arguments of ``Store.list_experiments``; an unknown agent is an error."""
        if self.agent:
            s.store.get_agent(self.agent)
        return {"agent_name": self.agent, "status": _status(self.status), "session_id": self.session,
                "dataset_prefix": self.dataset, "family": self.family, "proposer": self.proposer,
                "stage": self.stage}

    def described(self) -> str:
        given = [f"--{k} {v}" for k, v in vars(self).items() if v is not None]
        return " ".join(given)


AGENT = typer.Option(None, "--agent", help="one agent")
SESSION = typer.Option(None, "--session", help="one design session")
DATASET = typer.Option(None, "--dataset", help="a data set key or its start, e.g. synthetic")
FAMILY = typer.Option(None, "--family", help="one family (custom: LLM-written code)")
PROPOSER = typer.Option(None, "--proposer", help="search, llm, baseline, ...")


@history_app.callback()
def history(ctx: typer.Context, agent: Optional[str] = AGENT,
            status: Optional[str] = typer.Option(None, "--status", help="COMPLETED, FAILED, TIMED_OUT, ..."),
            session: Optional[str] = SESSION, dataset: Optional[str] = DATASET,
            family: Optional[str] = FAMILY, proposer: Optional[str] = PROPOSER,
            stage: Optional[str] = typer.Option(None, "--stage", help="cheap | full | confirm | confirm-seed"),
            sort: str = typer.Option("id", "--sort", help="id (newest first) | reward (highest first)"),
            limit: int = typer.Option(30, "--limit", min=1),
            phases: bool = typer.Option(False, "--phases", help="the phases of `evolve` runs instead "
                                                                 "(--agent PIPELINE: of that pipeline)"),
            json_out: bool = typer.Option(False, "--json")) -> None:
    """Recent experiments, newest first, and the best-so-far curve of the inner reward."""
    ctx.obj = HistoryContext(ctx.obj, Filters(agent, status, session, dataset, family, proposer, stage))
    if ctx.invoked_subcommand is not None:
        return
    if phases:
        return _phases(Services(ctx.obj.options), agent, limit, json_out)
    if sort not in SORTS:
        raise UsageError(f"--sort {sort!r} is not one of: {', '.join(SORTS)}")
    filters = ctx.obj.filters
    s = Services(ctx.obj.options)
    rows = s.store.list_experiments(**filters.query(s), limit=limit, by_reward=sort == "reward")
    if json_out:
        return emit_json([experiment_json(e) for e in rows])
    if not rows:
        out.print(f"no experiments match {filters.described()}" if filters.described() else
                  "no experiments yet: run `agenticrs design --agent recommender`")
        return
    metric = reward_header(s.store, [e.agent_name for e in rows])
    table("history" + (f" ({filters.described()})" if filters.described() else ""),
          ["id", "agent", "stage", "status", "promotion", "proposer", "family", metric, "p", "secs", "params"],
          [[e.id, e.agent_name, e.stage, e.status, e.promotion, e.proposer, e.family, e.inner_reward,
            e.p_value, e.wall_seconds, params_text(e.params)] for e in rows],
          optional=("params", "agent", "secs", "p", "stage", "proposer"), wrap=("params", "family"))
    _curve(s, filters)


@dataclass
class HistoryContext:
    """The global options plus the filters given to ``history`` (before a sub-command)."""

    options: Options
    filters: Filters


def _phases(s: Services, pipeline: Optional[str], limit: int, json_out: bool) -> None:
    """Phases of ``evolve`` runs, oldest first (the last ``limit``)."""
    from designer.evolve import phase_json

    if pipeline:
        s.store.get_agent(pipeline)
    rows = [phase_json(p) | {"pipeline": p.pipeline} for p in s.store.list_phases(pipeline)][-limit:]
    if json_out:
        return emit_json(rows)
    if not rows:
        out.print("no evolve phases yet: run `agenticrs evolve --pipeline default`")
        return
    table("evolve phases", ["phase", "pipeline", "kind", "target", "its", "promoted", "started because", "ended because"],
          [[r["id"], r["pipeline"], r["kind"], r["target"], r["iterations"], r["promotions"], r["started_because"],
            r["ended_because"] or "(running or killed: resumes)"] for r in rows],
          optional=("pipeline", "promoted"), wrap=("started because", "ended because"))
    for r in rows:
        for a in r["adoptions"]:
            verdict = "adopted" if a["adopted"] else "MISALIGNED, not adopted" if a["misaligned"] else "not adopted"
            out.print(f"phase {r['id']}: {a['component']} {verdict}: inner {_num(a['inner_before'])} -> "
                      f"{_num(a['inner_after'])}, pipeline {_num(a['outer_before'])} -> {_num(a['outer_after'])} "
                      f"(experiment {a['experiment']})", markup=False, highlight=False)


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def params_text(params: dict) -> str:
    """``l2=250, decay_by=position, window_decay=0.66``: values as written, not as metrics.
    A pipeline's spec is shown as its graph."""
    if "branches" in params and "name" in params:
        from designer.cli.pipelines import describe
        from designer.pipelines.spec import PipelineSpec, PipelineSpecError
        try:
            return describe(PipelineSpec.from_dict(params))
        except PipelineSpecError:
            pass

    def value(v) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k}={value(v)}" for k, v in params.items()) if params else "-"


def _curve(s: Services, filters: Filters) -> None:
    query = filters.query(s) | {"status": ExperimentStatus.COMPLETED, "stage": "full"}
    full = s.store.list_experiments(**query, limit=5000, newest_first=False)
    if filters.agent is None and len({e.agent_name for e in full}) > 1:
        full = []  # rewards of different agents do not share a scale
        out.print("pass --agent NAME for the best-so-far curve")
    if full:
        metric = s.store.get_agent(full[0].agent_name).inner_reward
        out.print(f"best so far (validation {metric} of {full[0].agent_name}, full-stage runs, oldest first):")
        out.print(curve(best_so_far([e.inner_reward for e in full]), ascii_only=out.no_color), highlight=False)


@history_app.command("best")
def best(ctx: typer.Context, agent: Optional[str] = AGENT, session: Optional[str] = SESSION,
         dataset: Optional[str] = DATASET, family: Optional[str] = FAMILY, proposer: Optional[str] = PROPOSER,
         json_out: bool = typer.Option(False, "--json")) -> None:
    """The best experiment (highest validation inner reward of a completed full-stage run),
    like Optuna's best trial, with the filters of `history`."""
    hist: HistoryContext = ctx.obj
    given = {k: v for k, v in dict(agent=agent, session=session, dataset=dataset, family=family,
                                   proposer=proposer).items() if v is not None}
    filters = replace(hist.filters, **given)
    s = Services(hist.options)
    query = filters.query(s) | {"status": ExperimentStatus.COMPLETED, "stage": "full"}
    top = s.store.list_experiments(**query, limit=1, by_reward=True)
    agents = {e.agent_name for e in s.store.list_experiments(**query, limit=5000)}
    if len(agents) > 1:
        raise UsageError(f"several agents match ({', '.join(sorted(agents))}); their rewards do not share a "
                         "scale: pass --agent NAME (agenticrs history --agent NAME best)")
    if not top or top[0].inner_reward is None:
        raise UsageError("no completed full-stage experiment matches"
                         + (f" {filters.described()}" if filters.described() else "")
                         + ": run `agenticrs design --agent recommender`")
    _show(s, top[0], json_out, title="best experiment")


@history_app.command("show")
def show(ctx: typer.Context, experiment_id: int, json_out: bool = typer.Option(False, "--json")) -> None:
    """One experiment: proposal, params, p-value and CI, metrics, sealed test once decided,
    logs, failure and its artefact folder."""
    s = Services(ctx.obj.options)
    _show(s, s.store.get_experiment(experiment_id), json_out)


def _show(s: Services, e, json_out: bool, title: str = "experiment") -> None:
    failures = s.store.list_failures(experiment_id=e.id)
    folder = s.workspace.experiment_dir(e.id)
    logs = {p.name: p.read_text()[-3000:] for p in sorted(folder.glob("*.log"))} if folder.exists() else {}
    evidence = evidence_json(s.store, e) if e.evidence else {}
    test = visible_test_metrics(s.store, e)
    metric = s.store.get_agent(e.agent_name).inner_reward
    if json_out:
        return emit_json(experiment_json(e) | {"proposal": e.proposal, "metrics": e.metrics,
                                               "segments": e.segments, "evidence": evidence,
                                               "test_metrics": test, "folder": str(folder.resolve()),
                                               "failures": [f.model_dump() for f in failures],
                                               "code_hash": e.code_hash})
    out.print(f"[bold]{title} {e.id}[/] {e.agent_name} {e.stage} {e.status.value} {e.promotion.value}")
    out.print(f"proposer {e.proposer}  family {e.family}  session {e.session_id}  created {when(e.created_at)}  "
              f"tier {e.sandbox_tier}", highlight=False)
    out.print(f"data set {e.dataset_key}; validation {metric} {fmt(e.inner_reward)}", highlight=False)
    out.print(f"proposal: {e.proposal.get('kind')} {e.proposal.get('rationale', '')}", highlight=False, markup=False)
    if e.proposal.get("model"):
        out.print(f"model: {e.proposal['model']}  ask: {e.proposal.get('ask')}", highlight=False, markup=False)
    out.print(f"params: {params_text(e.params)}", highlight=False, markup=False)
    for line in evidence_lines(evidence) or [_not_judged(e, metric)]:
        out.print(line, highlight=False, markup=False)
    if e.metrics:
        table("validation metrics" + (" and sealed test" if test else ""),
              ["metric", "validation", *(["sealed test"] if test else [])],
              [[k, fmt(v, k), *([fmt(test.get(k), k)] if test else [])] for k, v in sorted(e.metrics.items())])
    for f in failures:
        out.print(f"[red]failure {f.kind.value}[/]: {escape(f.message)}")
        if f.traceback_tail:
            out.print(f.traceback_tail, highlight=False, markup=False)
    for name, text in logs.items():
        if text.strip():
            out.print(f"--- {name} (tail) ---")
            out.print(text, highlight=False, markup=False)
    out.print(f"artefacts: {folder.resolve()}" + ("" if folder.exists() else " (missing)"), highlight=False)


def _not_judged(e, metric: str) -> str:
    """Why an experiment has no p-value: what happened to it instead."""
    if e.p_value is not None:
        return f"validation {metric}: gain {fmt(e.effect_size, 'delta')}, {p_equals(e.p_value)}"
    reasons = {"SCREENED_OUT": "screened out at the cheap stage", "NONE": "not compared with a parent"}
    return f"p-value: - ({reasons.get(e.promotion.value, e.promotion.value.lower())}, stage {e.stage})"


@history_app.command("diff")
def diff(ctx: typer.Context, a: int, b: int, json_out: bool = typer.Option(False, "--json")) -> None:
    """What differs between experiments A and B: code, params, metrics (with deltas)."""
    s = Services(ctx.obj.options)
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
              [[k, *_a_b_delta(metric_cells(k, y, x))] for k, (x, y) in metrics.items()])
    if code:
        out.print(code, highlight=False, markup=False)


def _a_b_delta(cells: list[str]) -> list[str]:
    """``metric_cells(k, b, a)`` is ``[b, a, b - a]``; the table reads ``a, b, delta``."""
    return [cells[1], cells[0], cells[2]]
