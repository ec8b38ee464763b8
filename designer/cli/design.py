"""``agenticrs design``: run a design session for one agent."""
from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from designer.cli import options

from designer.cli import live
from designer.cli.output import emit_json, err, fmt, number, out, table
from designer.cli.proposers import make_proposer
from designer.cli.services import Services
from designer.cli.stopping import StopRequest, StoppableProposer
from designer.errors import DesignerError, UsageError
from designer.events import Event, EventKind
from designer.executor import LocalExecutor
from designer.proposers.search import SAMPLERS
from designer.llm.data_card import attach_data_card
from designer.loop import DesignLoop
from designer.sessions import SessionBook, check_name, SessionRecord, end_run, kb_iterations, session_summary, start_run
from designer.settings import limit_overrides, parse_columns
from designer.static_check import check_module
from knowledge_base.models import ExperimentStatus


def register(app: typer.Typer) -> None:
    app.command("design")(design)


@contextmanager
def agent_lock(folder: Path, agent: str) -> Iterator[None]:
    """One design session per agent and workspace at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{agent}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another design session is running for agent {agent} in this workspace; "
                             "wait for it or stop it") from None
        yield


def design(ctx: typer.Context,
           agent: str = typer.Option(..., "--agent", help="agent to improve (see `agenticrs agents list`)"),
           iterations: Optional[int] = typer.Option(None, "--iterations", min=1,
                                                    help="iterations of the whole session, earlier runs included "
                                                    "(default 10 without --time-budget)"),
           time_budget: Optional[float] = typer.Option(None, "--time-budget", min=1, help="seconds"),
           proposer: str = typer.Option("search", "--proposer", help="search | llm | mixed"),
           sampler: str = typer.Option("tpe", "--sampler", help="search: tpe | cmaes | random"),
           parent_policy: str = typer.Option("best", "--parent-policy",
                                             help="best (the champion) | epsilon (sometimes a top version)"),
           epsilon: float = typer.Option(0.2, "--epsilon", min=0, max=1, help="epsilon policy: share of non-champion bases"),
           model: Optional[str] = typer.Option(None, "--model", help="LLM, e.g. openai/gpt-4o-mini"),
           api_base: Optional[str] = typer.Option(None, "--api-base", help="OpenAI-compatible endpoint"),
           temperature: float = typer.Option(0.7, "--temperature"),
           budget_usd: Optional[float] = typer.Option(None, "--budget-usd"),
           max_calls: Optional[int] = typer.Option(None, "--max-calls"),
           prices: Optional[str] = options.PRICES,
           auto_approve: bool = options.AUTO_APPROVE,
           dataset: Optional[str] = options.DATASET,
           data_dir: Optional[Path] = options.DATA_DIR,
           n_users: Optional[int] = options.N_USERS,
           n_items: Optional[int] = options.N_ITEMS,
           split: Optional[str] = options.SPLIT,
           seed: Optional[int] = options.SEED,
           wall_limit: Optional[float] = options.WALL_LIMIT,
           cpu_limit: Optional[float] = typer.Option(None, "--cpu-limit", help="CPU seconds per run"),
           memory_mb: Optional[int] = options.MEMORY_MB,
           max_processes: Optional[int] = typer.Option(None, "--max-processes", help="processes+threads per run"),
           output_mb: Optional[int] = typer.Option(None, "--output-mb", help="output quota per run"),
           columns: Optional[str] = typer.Option(None, "--columns", help="interactions file columns, comma-separated: user=COL, item=COL, timestamp=COL and optionally rating=COL"),
           answer_format: str = typer.Option("markdown", "--answer-format", help="llm: markdown | json (JSON schema)"),
           llm_timeout: float = typer.Option(300.0, "--llm-timeout", min=1, help="llm: seconds per call"),
           max_tokens: int = typer.Option(4096, "--max-tokens", min=64, help="llm: answer length cap"),
           candidates_per_call: int = typer.Option(1, "--candidates-per-call", min=1, max=8, metavar="N",
                                                   help="llm: different modules asked for in one call"),
           allow_insecure: bool = options.ALLOW_INSECURE,
           workers: int = options.WORKERS,
           slots: Optional[int] = typer.Option(None, "--slots", min=1, max=64, metavar="N",
                                               help="sandbox slots this machine's runs share (default 4)"),
           executor_name: str = typer.Option("local", "--executor", help="local | ray (agenticrs[ray]: see docs/scale.md)"),
           address: Optional[str] = typer.Option(None, "--address", metavar="auto|HOST:PORT",
                                                 help="ray: the cluster to join (default: a private local one)"),
           session: Optional[str] = typer.Option(None, "--session", metavar="NAME",
                                                 help="session to run or continue (default: continue the agent's "
                                                 "last unfinished session on this data set, else a new one)"),
           config: Optional[Path] = typer.Option(None, "--config", help="TOML file of settings"),
           json_out: bool = typer.Option(False, "--json", help="print the summary as JSON")) -> None:
    """Propose, evaluate in the sandbox, and promote better versions of AGENT."""
    _check_flags(proposer=proposer, sampler=sampler, parent_policy=parent_policy, executor=executor_name,
                 answer_format=answer_format, model=model)
    price_pair = _prices(prices)            # every flag is checked before any work
    if session is not None:
        check_name(session)
    if iterations is None and time_budget is None:
        iterations = 10
    s = Services(ctx.obj)
    s.store.get_agent(agent)
    limits = limit_overrides(wall_seconds=wall_limit, cpu_seconds=cpu_limit, memory_mb=memory_mb,
                             max_processes=max_processes, output_mb=output_mb)
    settings = s.run_settings(config, workers=workers, limits=limits, dataset=dataset, data_dir=data_dir, n_users=n_users, n_items=n_items, columns=parse_columns(columns),
                              split=split, seed=seed, allow_insecure_sandbox=allow_insecure or None,
                              slots=slots)
    with agent_lock(s.workspace.root / "locks", agent):
        err.print(f"loading {settings.dataset} ({settings.split}) ...", highlight=False)
        with live.progress(err, live.Pulse(err, f"loading {settings.dataset} ({settings.split})")):
            executor = _executor(executor_name, address, settings, s.workspace.cache_dir)
        try:
            summary, stop = _run_session(s, executor, settings, agent=agent, session=session, iterations=iterations,
                                         time_budget=time_budget, workers=workers, auto_approve=auto_approve,
                                         parent_policy=parent_policy, epsilon=epsilon, proposer_kind=proposer,
                                         proposer_flags=dict(sampler=sampler, model=model, api_base=api_base,
                                                             temperature=temperature, budget_usd=budget_usd,
                                                             max_calls=max_calls, prices=price_pair,
                                                             answer_format=answer_format, llm_timeout=llm_timeout,
                                                             max_tokens=max_tokens,
                                                             candidates_per_call=candidates_per_call))
        finally:
            getattr(executor, "close", lambda: None)()
    _print_session(summary, json_out)
    if stop.signal:
        err.print(f"session {summary['session']} stopped by {stop.signal} after {summary['iterations']} iteration(s); "
                  "run the same command to continue it", highlight=False)
        raise typer.Exit(stop.exit_code)


def _run_session(s: Services, executor, settings, *, agent: str, session: Optional[str], iterations: Optional[int],
                 time_budget: Optional[float], workers: int, auto_approve: bool, parent_policy: str, epsilon: float,
                 proposer_kind: str, proposer_flags: dict) -> tuple[dict, StopRequest]:
    """Run (or continue) the session; its summary over every run, and the stop request."""
    book = SessionBook(s.workspace.root / "sessions")
    record, continued = book.choose(session, agent, executor.dataset_key)
    start_run(record, kb_iterations(_session_experiments(s, record.name)))
    record.target_iterations = iterations
    done = record.iterations
    metric = s.store.get_agent(agent).inner_reward
    stop = StopRequest()
    if iterations is not None and done >= iterations:
        err.print(f"session {record.name} already ran {done} of {iterations} iteration(s): nothing to do; raise "
                  "--iterations to continue it, or start another with --session NAME", highlight=False)
        book.save(end_run(record, "iterations done", 0.0))
        return _summary(s, record, metric), stop
    book.save(record)
    chosen = make_proposer(proposer_kind, store=s.store, agent=agent, workspace=s.workspace, seed=settings.seed,
                           session_id=record.name, **proposer_flags)
    if proposer_kind != "search":   # prompts show the data card (train-only statistics)
        attach_data_card(chosen.proposer, executor.split, settings.k)
    view = live.LiveView(err, metric, iterations, done_before=done, best=_best(s, record.name),
                    on_iteration=lambda event: book.save(_count(record, event)))
    loop = DesignLoop(store=s.store, proposer=StoppableProposer(chosen.proposer, stop), executor=executor,
                      releaser=s.releaser, families=s.families, agent_name=agent, settings=settings,
                      workspace=s.workspace, auto_approve=auto_approve, on_event=view, static_check=check_module,
                      session_id=record.name, insights=chosen.insights, parent_policy=parent_policy,
                      epsilon=epsilon)
    goal = f"{done} of {iterations} iteration(s) done" if iterations else f"{done} iteration(s) done"
    err.print(f"sandbox tier {executor.tier}; data set {executor.dataset_key}; proposer {proposer_kind}; "
              + (f"continuing session {record.name} ({goal} in {len(record.runs) - 1} earlier run(s))"
                 if continued else f"session {record.name}"), highlight=False)
    remaining = None if iterations is None else iterations - done
    started = time.monotonic()
    try:
        with stop.on_signals(lambda m: err.print(m, highlight=False)), live.progress(err, view):
            result = loop.run(iterations=remaining, time_budget=time_budget, workers=workers)
    except DesignerError as e:
        book.save(end_run(record, "", time.monotonic() - started))
        raise explain_champion_failure(s, record.name, settings) or e from e
    except BaseException:
        book.save(end_run(record, "", time.monotonic() - started))   # killed: stays unfinished
        raise
    if record.baseline_reward is None:
        record.baseline_reward = result.baseline_reward
    book.save(end_run(record, result.stopped_reason, time.monotonic() - started))
    return _summary(s, record, metric), stop


LIMIT_FLAGS = {ExperimentStatus.TIMED_OUT: ("--wall-limit SECONDS", "wall_seconds"),
               ExperimentStatus.OUT_OF_MEMORY: ("--memory-mb MB", "memory_mb"),
               ExperimentStatus.KILLED_BY_LIMIT: ("--cpu-limit SECONDS or --max-processes N", "cpu_seconds")}


def explain_champion_failure(s: Services, session: str, settings) -> Optional[DesignerError]:
    """When the champion's own baseline run failed, the error names its status, its message,
    the experiment to look at and, for a limit it hit, the flag that raises the limit."""
    runs = s.store.list_experiments(session_id=session, proposer="baseline", limit=1)
    if not runs or runs[0].status in (ExperimentStatus.COMPLETED, ExperimentStatus.RUNNING):
        return None
    exp = runs[0]
    failures = s.store.list_failures(experiment_id=exp.id)
    what = f": {failures[0].message.splitlines()[0][:200]}" if failures else ""
    hint = "roll back (`agenticrs agents rollback`) or fix the agent"
    if exp.status in LIMIT_FLAGS:
        flag, key = LIMIT_FLAGS[exp.status]
        hint = f"raise the limit with {flag} (now {fmt(getattr(settings.limits, key), key)})"
    return DesignerError(f"the champion's baseline run (experiment {exp.id}) ended {exp.status.value} on "
                         f"{exp.dataset_key}{what}; {hint}; details: agenticrs history show {exp.id}")


def _count(record: SessionRecord, event: Event) -> SessionRecord:
    """Update the session's counters for an iteration event of the loop."""
    if event.kind is EventKind.DUPLICATE:
        record.duplicates += 1
        return record
    record.iterations += 1
    if event.kind is EventKind.PROPOSAL_FAILED:
        record.proposal_failures += 1
    return record


def _session_experiments(s: Services, name: str):
    return s.store.list_experiments(session_id=name, limit=1_000_000, newest_first=False)


def _best(s: Services, name: str) -> Optional[float]:
    top = s.store.list_experiments(session_id=name, stage="full", status=ExperimentStatus.COMPLETED,
                                   by_reward=True, limit=1)
    return top[0].inner_reward if top else None


def _summary(s: Services, record: SessionRecord, metric: str) -> dict:
    experiments = _session_experiments(s, record.name)
    ids = {e.id for e in experiments}
    approved = [v.tag for v in s.store.list_versions(record.agent) if v.experiment_id in ids]
    return session_summary(record, experiments, approved, metric)


_CHOICES = {"proposer": ("search", "llm", "mixed"), "sampler": SAMPLERS, "parent_policy": ("best", "epsilon"),
            "executor": ("local", "ray"), "answer_format": ("markdown", "json")}


def _check_flags(*, model: Optional[str], **given: str) -> None:
    """Usage errors for flag values, before the data set is loaded or anything runs."""
    for name, value in given.items():
        if value not in _CHOICES[name]:
            raise UsageError(f"--{name.replace('_', '-')} {value!r} is not one of: {', '.join(_CHOICES[name])}")
    if given["proposer"] in ("llm", "mixed") and not model:
        raise UsageError(f"--proposer {given['proposer']} needs --model (e.g. openai/gpt-4o-mini) and, for a "
                         "local OpenAI-compatible server, --api-base http://127.0.0.1:PORT/v1")


def _executor(name: str, address: Optional[str], settings, cache_dir: Path):
    """The executor named by ``--executor``; Ray is imported only when asked for."""
    if name == "local":
        if address is not None:
            raise UsageError("--address is for --executor ray; drop it or add --executor ray")
        return LocalExecutor(settings, cache_dir, on_wait=lambda m: err.print(m, highlight=False))
    if name == "ray":
        from designer.ray_executor import RayExecutor
        return RayExecutor(settings, cache_dir, address=address)
    raise UsageError(f"--executor must be local or ray; got {name!r}")


def _prices(text: Optional[str]) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        cost_in, cost_out = (float(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"--prices must be 'IN,OUT' in USD per million tokens, e.g. 0.15,0.60; got {text!r}") from None
    return cost_in, cost_out


class LiveView(live.LiveView):
    """The view of other loop commands (``compose``, ``evolve``): ``LiveView(iterations)``;
    a rich ``Status`` assigned to ``status`` shows the live status line."""

    def __init__(self, iterations: Optional[int] = None, metric: str = "reward"):
        super().__init__(err, metric, iterations)
        self.status = None

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        if self.status is not None:
            self.status.update(self)


def _print_summary(summary, json_out: bool, metric: str = "reward", kind: str = "design") -> None:
    """The summary of one loop run (a ``SessionSummary``, e.g. of ``compose``); its JSON keys
    are those `design --json` had before sessions (no ``metric``). ``metric`` names the
    rewards shown (``val ndcg@10``), ``kind`` the command."""
    data = {"session": summary.session_id, "agent": summary.agent, "dataset": summary.dataset_key,
            "iterations": summary.iterations, "evaluated": summary.evaluated, "failed": summary.failed,
            "screened_out": summary.screened_out, "duplicates": summary.duplicates,
            "promoted_experiments": summary.promoted, "approved_versions": summary.approved,
            "baseline_reward": summary.baseline_reward, "best_reward": summary.best_reward,
            "best_experiment": summary.best_experiment_id, "stopped": summary.stopped_reason,
            "elapsed_seconds": round(summary.elapsed_seconds, 1)}
    if json_out:
        return emit_json(data)
    _print_session(data | {"metric": metric}, json_out=False, kind=kind)


def _print_session(data: dict, json_out: bool, kind: str = "design") -> None:
    if json_out:
        return emit_json(data)
    metric = data["metric"]
    rows = [[k, v] for k, v in data.items() if k not in ("baseline_reward", "best_reward", "metric")]
    rows += [[f"baseline ({metric})", number(data["baseline_reward"]) if data["baseline_reward"] is not None else "-"],
             [f"best ({metric})", number(data["best_reward"]) if data["best_reward"] is not None else "-"]]
    title = f"{kind} session {data['session']}" + (" (all runs)" if "runs" in data else "")
    table(title, ["", "value"], [[k, _value(k, v)] for k, v in rows])
    if data["promoted_experiments"] and not data["approved_versions"]:
        out.print("winners wait for review: agenticrs review list")


def _value(key: str, value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return fmt(value, key)
