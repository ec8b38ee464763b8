"""``agenticrs evolve``: alternate individual and compositional evolution of a pipeline."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Optional

import typer

from designer.cli import options

from designer.cli.design import LiveView, _check_flags, _executor, _prices, agent_lock
from designer.cli.output import emit_json, err, out, table
from designer.cli.services import Services
from designer.errors import UsageError
from designer.events import EventKind
from designer.evolve import Evolver
from designer.loop import DesignLoop
from designer.settings import limit_overrides, parse_columns
from designer.static_check import check_module


def register(app: typer.Typer) -> None:
    app.command("evolve")(evolve)


def evolve(ctx: typer.Context,
           pipeline: str = typer.Option("default", "--pipeline", help="pipeline to evolve (see `agenticrs pipelines list`)"),
           budget_seconds: Optional[float] = typer.Option(None, "--budget-seconds", min=1, metavar="S",
                                                          help="stop after S seconds (phases get shares of it)"),
           iterations: Optional[int] = typer.Option(None, "--iterations", min=1, metavar="N",
                                                    help="stop after N iterations over all phases"),
           proposer: str = typer.Option("search", "--proposer",
                                        help="search | llm | mixed (the two by a bandit), in every phase"),
           model: Optional[str] = typer.Option(None, "--model", help="llm: the LLM, e.g. openai/gpt-4o-mini"),
           api_base: Optional[str] = typer.Option(None, "--api-base", help="llm: OpenAI-compatible endpoint"),
           temperature: float = typer.Option(0.7, "--temperature"),
           budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="llm: USD for the whole run"),
           max_calls: Optional[int] = typer.Option(None, "--max-calls", help="llm: calls for the whole run"),
           prices: Optional[str] = options.PRICES,
           llm_timeout: float = typer.Option(300.0, "--llm-timeout", min=1, help="llm: seconds per call"),
           patience: int = typer.Option(4, "--patience", min=1, metavar="K",
                                        help="a phase ends after K iterations without a promotion"),
           pool: Optional[str] = typer.Option(None, "--pool", metavar="NAME,...",
                                              help="recall pool of compositional phases (see `compose --help`)"),
           auto_approve: bool = options.AUTO_APPROVE,
           dataset: Optional[str] = options.DATASET,
           data_dir: Optional[Path] = options.DATA_DIR,
           n_users: Optional[int] = options.N_USERS,
           n_items: Optional[int] = options.N_ITEMS,
           split: Optional[str] = options.SPLIT,
           seed: Optional[int] = options.SEED,
           wall_limit: Optional[float] = options.WALL_LIMIT,
           columns: Optional[str] = options.COLUMNS,
           allow_insecure: bool = options.ALLOW_INSECURE,
           workers: int = options.WORKERS,
           config: Optional[Path] = typer.Option(None, "--config", help="TOML file of settings"),
           json_out: bool = typer.Option(False, "--json", help="print the summary as JSON")) -> None:
    """Evolve PIPELINE: individual phases (one component, its inner reward) alternate with compositional ones.

    An individual phase runs the design loop on one component agent (chosen by credit
    assignment); its promotions are adopted only if the pipeline with them is promoted. A
    compositional phase proposes compositions (search, or the LLM: --proposer llm|mixed, one
    budget for the whole run). Resumable after a kill; Ctrl-C or
    SIGTERM stops at a step boundary and prints the summary; phases: `history --phases`.
    """
    _check_flags(proposer=proposer, sampler="tpe", parent_policy="best", executor="local",
                 answer_format="markdown", model=model)
    price_pair = _prices(prices)     # a bad value fails before the data set loads
    if iterations is None and budget_seconds is None:
        iterations = 12
    s = Services(ctx.obj)
    target = s.store.get_agent(pipeline)
    if target.role != "pipeline":
        raise UsageError(f"{pipeline} is an agent of role {target.role}, not a pipeline: see `agenticrs pipelines list`")
    limits = limit_overrides(wall_seconds=wall_limit)
    settings = s.run_settings(config, workers=workers, limits=limits, dataset=dataset, data_dir=data_dir, n_users=n_users,
                              n_items=n_items, columns=parse_columns(columns), split=split, seed=seed,
                              allow_insecure_sandbox=allow_insecure or None)
    names = tuple(n.strip() for n in pool.split(",") if n.strip()) if pool else None
    view = LiveView(iterations, metric=target.inner_reward)
    with agent_lock(s.workspace.root / "locks", pipeline):
        err.print(f"loading {settings.dataset} ({settings.split}) ...", highlight=False)
        executor = _executor("local", None, settings, s.workspace.cache_dir)

        def in_phase(event):   # inner loops count their own iterations: name the phase instead
            phase = evolver.current
            if phase is not None and event.kind is not EventKind.PHASE:
                event = event.model_copy(update={"message": f"phase {phase.id} ({phase.kind} on {phase.target}): "
                                                            f"{event.message}"})
            view(event)

        def make_loop(name, chosen, subject):
            return DesignLoop(store=s.store, proposer=chosen.proposer, executor=executor, releaser=s.releaser,
                              families=s.families, agent_name=name, settings=settings, workspace=s.workspace,
                              auto_approve=auto_approve, on_event=in_phase, static_check=check_module,
                              subject=subject, session_id=chosen.session_id, insights=chosen.insights)

        proposers = None        # search
        if proposer != "search":
            from designer.cli.phase_proposers import LLMPhaseProposers
            proposers = LLMPhaseProposers(proposer, s, split=executor.split, k=settings.k, model=model,
                                          api_base=api_base, temperature=temperature, budget_usd=budget_usd,
                                          max_calls=max_calls, timeout=llm_timeout, prices=price_pair)

        evolver = Evolver(store=s.store, releaser=s.releaser, families=s.families, executor=executor,
                          settings=settings, workspace=s.workspace, pipeline=pipeline, make_loop=make_loop,
                          patience=patience, pool_names=names, on_event=in_phase, workers=workers,
                          proposers=proposers)
        previous = {}

        def stop(signum, _frame):   # first signal: finish the step; a second one: stop now
            evolver.request_stop(f"stopped by {signal.Signals(signum).name} at a step boundary")
            err.print("stopping after the current step (again to stop at once) ...")
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
        err.print(f"sandbox tier {executor.tier}; data set {executor.dataset_key}; evolving {pipeline}", highlight=False)
        try:
            if err.is_terminal:      # the live status line of the running phase's loop
                with err.status("starting") as status:
                    view.status = status
                    summary = evolver.run(iterations=iterations, budget_seconds=budget_seconds)
            else:
                summary = evolver.run(iterations=iterations, budget_seconds=budget_seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            getattr(executor, "close", lambda: None)()
    _print(summary, json_out)


def _print(summary, json_out: bool) -> None:
    data = {"run": summary.run_id, "pipeline": summary.pipeline, "dataset": summary.dataset_key,
            "iterations": summary.iterations, "phases": summary.phases, "adopted": summary.adopted,
            "misaligned": summary.misaligned, "champion": summary.champion,
            "baseline_outer": summary.baseline_outer, "champion_outer": summary.champion_outer,
            "stopped": summary.stopped_reason, "elapsed_seconds": round(summary.elapsed_seconds, 1)}
    if json_out:
        return emit_json(data)
    table(f"evolve run {summary.run_id}: phases", ["phase", "kind", "target", "its", "promoted", "started because",
                                                   "ended because"],
          [[p["id"], p["kind"], p["target"], p["iterations"], p["promotions"], p["started_because"],
            p["ended_because"] or "(open)"] for p in summary.phases])
    out.print(f"{summary.pipeline}: champion {summary.champion}, val outer reward "
              f"{_f(summary.baseline_outer)} -> {_f(summary.champion_outer)}; adopted: "
              f"{', '.join(summary.adopted) or 'none'}; misaligned: {len(summary.misaligned)}; "
              f"stopped: {summary.stopped_reason}; {summary.elapsed_seconds:.0f} s")


def _f(value) -> str:
    return "-" if value is None else f"{value:.4f}"
