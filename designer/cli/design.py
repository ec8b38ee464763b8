"""``agenticrs design``: run a design session for one agent."""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from designer.cli.output import emit_json, err, out, table
from designer.cli.proposers import make_proposer
from designer.cli.services import Services
from designer.errors import UsageError
from designer.events import Event, EventKind
from designer.executor import LocalExecutor
from designer.proposers.search import SAMPLERS
from designer.llm.data_card import attach_data_card
from designer.loop import DesignLoop
from designer.settings import limit_overrides, load_settings, parse_columns
from designer.static_check import check_module

STYLE = {EventKind.NEW_BEST: "bold green", EventKind.APPROVED: "bold green", EventKind.PENDING_REVIEW: "green",
         EventKind.FAILED: "red", EventKind.PROPOSAL_FAILED: "red", EventKind.SCREENED_OUT: "yellow"}


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


class LiveView:
    """Prints one line per event that matters; a status line shows the current state on a TTY."""

    def __init__(self, iterations: Optional[int]):
        self.iterations, self.best, self.status = iterations, None, None

    def __call__(self, event: Event) -> None:
        if event.reward is not None and event.kind in (EventKind.NEW_BEST, EventKind.BASELINE):
            self.best = event.reward
        if event.important:
            style = STYLE.get(event.kind, "")
            prefix = f"[{event.iteration:>3}]" if event.iteration else "[  -]"
            err.print(f"{prefix} {event.message}", style=style, highlight=False, markup=False)
        if self.status is not None:
            total = f"/{self.iterations}" if self.iterations else ""
            best = f"{self.best:.4f}" if self.best is not None else "-"
            self.status.update(f"iteration {event.iteration}{total} · {event.kind.value} · best {best}")


def design(ctx: typer.Context,
           agent: str = typer.Option(..., "--agent", help="agent to improve (see `agenticrs agents list`)"),
           iterations: Optional[int] = typer.Option(None, "--iterations", min=1),
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
           prices: Optional[str] = typer.Option(None, "--prices", help="USD per million tokens 'IN,OUT' "
                                                "for OpenAI-compatible servers litellm has no price for"),
           auto_approve: bool = typer.Option(False, "--auto-approve", help="approve winners without review"),
           dataset: Optional[str] = typer.Option(None, "--dataset", help="synthetic | ml-100k | FILE.csv"),
           data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
           n_users: Optional[int] = typer.Option(None, "--n-users", min=10, help="synthetic: users"),
           n_items: Optional[int] = typer.Option(None, "--n-items", min=10, help="synthetic: items"),
           split: Optional[str] = typer.Option(None, "--split", help="user_temporal | global_temporal"),
           seed: Optional[int] = typer.Option(None, "--seed"),
           wall_limit: Optional[float] = typer.Option(None, "--wall-limit", help="seconds per run"),
           cpu_limit: Optional[float] = typer.Option(None, "--cpu-limit", help="CPU seconds per run"),
           memory_mb: Optional[int] = typer.Option(None, "--memory-mb", help="memory per run"),
           max_processes: Optional[int] = typer.Option(None, "--max-processes", help="processes+threads per run"),
           output_mb: Optional[int] = typer.Option(None, "--output-mb", help="output quota per run"),
           columns: Optional[str] = typer.Option(None, "--columns", help="interactions file columns, comma-separated: user=COL, item=COL, timestamp=COL and optionally rating=COL"),
           answer_format: str = typer.Option("markdown", "--answer-format", help="llm: markdown | json (JSON schema)"),
           llm_timeout: float = typer.Option(300.0, "--llm-timeout", min=1, help="llm: seconds per call"),
           max_tokens: int = typer.Option(4096, "--max-tokens", min=64, help="llm: answer length cap"),
           candidates_per_call: int = typer.Option(1, "--candidates-per-call", min=1, max=8, metavar="N",
                                                   help="llm: different modules asked for in one call"),
           allow_insecure: bool = typer.Option(False, "--allow-insecure-sandbox"),
           workers: int = typer.Option(1, "--workers", min=1, max=64, metavar="N",
                                       help="candidates evaluated at once, each in its own sandbox slot"),
           slots: Optional[int] = typer.Option(None, "--slots", min=1, max=64, metavar="N",
                                               help="sandbox slots this machine's runs share (default 4)"),
           executor_name: str = typer.Option("local", "--executor", help="local | ray (agenticrs[ray]: see docs/scale.md)"),
           address: Optional[str] = typer.Option(None, "--address", metavar="auto|HOST:PORT",
                                                 help="ray: the cluster to join (default: a private local one)"),
           config: Optional[Path] = typer.Option(None, "--config", help="TOML file of settings"),
           json_out: bool = typer.Option(False, "--json", help="print the summary as JSON")) -> None:
    """Propose, evaluate in the sandbox, and promote better versions of AGENT."""
    _check_flags(proposer=proposer, sampler=sampler, parent_policy=parent_policy, executor=executor_name,
                 answer_format=answer_format, model=model)
    price_pair = _prices(prices)            # every flag is checked before any work
    if iterations is None and time_budget is None:
        iterations = 10
    s = Services(ctx.obj)
    s.store.get_agent(agent)
    limits = limit_overrides(wall_seconds=wall_limit, cpu_seconds=cpu_limit, memory_mb=memory_mb,
                             max_processes=max_processes, output_mb=output_mb)
    config = config or (s.workspace.config_file if s.workspace.config_file.is_file() else None)
    base = load_settings(config, workspace=s.workspace.root, dataset=dataset, data_dir=data_dir, n_users=n_users, n_items=n_items, columns=parse_columns(columns),
                         split=split, seed=seed, allow_insecure_sandbox=allow_insecure or None,
                         slots=slots)
    settings = base.model_copy(update={"limits": base.limits.model_copy(update=limits)}) if limits else base
    if settings.slots < workers:  # each worker needs a slot of its own
        settings = settings.model_copy(update={"slots": workers})
    with agent_lock(s.workspace.root / "locks", agent):
        err.print(f"loading {settings.dataset} ({settings.split}) ...", highlight=False)
        executor = _executor(executor_name, address, settings, s.workspace.cache_dir)
        chosen = make_proposer(proposer, store=s.store, agent=agent, workspace=s.workspace, sampler=sampler,
                               seed=settings.seed, model=model, api_base=api_base, temperature=temperature,
                               budget_usd=budget_usd, max_calls=max_calls, prices=price_pair,
                               answer_format=answer_format, llm_timeout=llm_timeout, max_tokens=max_tokens,
                               candidates_per_call=candidates_per_call)
        if proposer != "search":   # prompts show the data card (train-only statistics)
            attach_data_card(chosen.proposer, executor.split, settings.k)
        view = LiveView(iterations)
        loop = DesignLoop(store=s.store, proposer=chosen.proposer, executor=executor, releaser=s.releaser,
                          families=s.families, agent_name=agent, settings=settings, workspace=s.workspace,
                          auto_approve=auto_approve, on_event=view, static_check=check_module,
                          session_id=chosen.session_id, insights=chosen.insights,
                          parent_policy=parent_policy, epsilon=epsilon)
        err.print(f"sandbox tier {executor.tier}; data set {executor.dataset_key}; proposer {proposer}", highlight=False)
        try:
            if err.is_terminal:
                with err.status("starting") as status:
                    view.status = status
                    summary = loop.run(iterations=iterations, time_budget=time_budget, workers=workers)
            else:
                summary = loop.run(iterations=iterations, time_budget=time_budget, workers=workers)
        finally:
            getattr(executor, "close", lambda: None)()
    _print_summary(summary, json_out)


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


def _print_summary(summary, json_out: bool) -> None:
    data = {"session": summary.session_id, "agent": summary.agent, "dataset": summary.dataset_key,
            "iterations": summary.iterations, "evaluated": summary.evaluated, "failed": summary.failed,
            "screened_out": summary.screened_out, "duplicates": summary.duplicates,
            "promoted_experiments": summary.promoted, "approved_versions": summary.approved,
            "baseline_reward": summary.baseline_reward, "best_reward": summary.best_reward,
            "best_experiment": summary.best_experiment_id, "stopped": summary.stopped_reason,
            "elapsed_seconds": round(summary.elapsed_seconds, 1)}
    if json_out:
        return emit_json(data)
    table(f"design session {summary.session_id}", ["", "value"], [[k, v] for k, v in data.items()])
    if summary.promoted and not summary.approved:
        out.print("winners wait for review: agenticrs review list")
