"""``agenticrs compose``: evolve a pipeline (which sources, quotas, ranker, re-ranker, router)."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Optional

import typer

from designer.cli import options

from designer.cli.design import LiveView, _check_flags, _executor, _print_summary, agent_lock
from designer.cli.output import err
from designer.cli.services import Services
from designer.errors import UsageError
from designer.llm.data_card import attach_data_card
from designer.loop import DesignLoop
from designer.pipelines.pool import PoolOption, recall_pool
from designer.proposers.compose_search import CompositionSearchProposer
from designer.proposers.mixed import MixedProposer
from designer.settings import limit_overrides, parse_columns
from designer.subjects import PipelineSubject


def register(app: typer.Typer) -> None:
    app.command("compose")(compose)


def compose(ctx: typer.Context,
            pipeline: str = typer.Option("default", "--pipeline", help="pipeline to evolve (see `agenticrs pipelines list`)"),
            iterations: Optional[int] = typer.Option(None, "--iterations", min=1),
            time_budget: Optional[float] = typer.Option(None, "--time-budget", min=1, help="seconds"),
            proposer: str = typer.Option("search", "--proposer", help="search | llm | mixed (alternates the two)"),
            model: Optional[str] = typer.Option(None, "--model", help="llm: the LLM, e.g. openai/gpt-4o-mini"),
            api_base: Optional[str] = typer.Option(None, "--api-base", help="llm: OpenAI-compatible endpoint"),
            temperature: float = typer.Option(0.7, "--temperature"),
            budget_usd: Optional[float] = typer.Option(None, "--budget-usd"),
            max_calls: Optional[int] = typer.Option(None, "--max-calls"),
            llm_timeout: float = typer.Option(300.0, "--llm-timeout", min=1, help="llm: seconds per call"),
            pool: Optional[str] = typer.Option(None, "--pool", metavar="NAME,...",
                                               help="recall pool: agent or family names (default: recommender "
                                                    "agents' champions + popularity, itemknn, ease, recency_ease, ials)"),
            auto_approve: bool = options.AUTO_APPROVE,
            dataset: Optional[str] = options.DATASET,
            data_dir: Optional[Path] = options.DATA_DIR,
            n_users: Optional[int] = options.N_USERS,
            n_items: Optional[int] = options.N_ITEMS,
            split: Optional[str] = options.SPLIT,
            seed: Optional[int] = options.SEED,
            wall_limit: Optional[float] = options.WALL_LIMIT,
            memory_mb: Optional[int] = options.MEMORY_MB,
            columns: Optional[str] = options.COLUMNS,
            allow_insecure: bool = options.ALLOW_INSECURE,
            workers: int = options.WORKERS,
            executor_name: str = typer.Option("local", "--executor", help="local | ray"),
            address: Optional[str] = typer.Option(None, "--address", metavar="auto|HOST:PORT"),
            config: Optional[Path] = typer.Option(None, "--config", help="TOML file of settings"),
            json_out: bool = typer.Option(False, "--json", help="print the summary as JSON")) -> None:
    """Propose, evaluate in the sandbox and promote better versions of a PIPELINE."""
    _check_flags(proposer=proposer, sampler="tpe", parent_policy="best", executor=executor_name,
                 answer_format="markdown", model=model)
    if iterations is None and time_budget is None:
        iterations = 10
    s = Services(ctx.obj)
    target = s.store.get_agent(pipeline)
    if target.role != "pipeline":
        raise UsageError(f"{pipeline} is an agent of role {target.role}, not a pipeline: "
                         f"use `agenticrs design --agent {pipeline}`, or see `agenticrs pipelines list`")
    limits = limit_overrides(wall_seconds=wall_limit, memory_mb=memory_mb)
    settings = s.run_settings(config, workers=workers, limits=limits, dataset=dataset, data_dir=data_dir, n_users=n_users,
                              n_items=n_items, columns=parse_columns(columns), split=split, seed=seed,
                              allow_insecure_sandbox=allow_insecure or None)
    names = tuple(n.strip() for n in pool.split(",") if n.strip()) if pool else None
    with agent_lock(s.workspace.root / "locks", pipeline):
        err.print(f"loading {settings.dataset} ({settings.split}) ...", highlight=False)
        executor = _executor(executor_name, address, settings, s.workspace.cache_dir)
        options = recall_pool(s.store, s.families, executor.dataset_key, names)
        if names and not options:
            raise UsageError(f"--pool {pool}: none of these is a recommender agent or family; "
                             f"families: {', '.join(n for n, f in s.families.items() if f.role == 'recommender')}")
        err.print("recall pool: " + "; ".join(f"{o.label} ({o.note})" for o in options), highlight=False)
        view = LiveView(iterations, metric=target.inner_reward)
        subject = PipelineSubject(store=s.store, repo=s.releaser.repo, families=s.families)
        session_id = uuid.uuid4().hex[:12]
        chosen: Any = CompositionSearchProposer(options, seed=settings.seed)
        if proposer != "search":
            llm = compose_llm_proposer(s, options, subject, session_id=session_id, model=model or "",
                                       api_base=api_base, temperature=temperature, budget_usd=budget_usd,
                                       max_calls=max_calls, timeout=llm_timeout)
            chosen = llm if proposer == "llm" else MixedProposer(llm, chosen)
            attach_data_card(chosen, executor.split, settings.k)   # train-only statistics
        loop = DesignLoop(store=s.store, proposer=chosen, executor=executor, releaser=s.releaser,
                          families=s.families, agent_name=pipeline, settings=settings, workspace=s.workspace,
                          auto_approve=auto_approve, on_event=view, subject=subject, session_id=session_id)
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
    _print_summary(summary, json_out, metric=f"val {target.inner_reward}", kind="compose")


def compose_llm_proposer(s: Services, pool: list[PoolOption], subject: PipelineSubject, *, session_id: str,
                         model: str, api_base: Optional[str], temperature: float, budget_usd: Optional[float],
                         max_calls: Optional[int], timeout: float, client: Any = None, budget: Any = None) -> Any:
    """The composition LLM proposer on the agent proposer's client, budget, KB call log and
    (workspace-overridable) prompt templates; ``client``/``budget``: shared ones (``evolve``)."""
    from designer.cli.llm_wiring import StoreRecorder, make_llm_client
    from designer.llm import LLMBudget, load_prompt_templates
    from designer.proposers.compose_llm import CompositionLLMProposer

    return CompositionLLMProposer(
        client or make_llm_client(model, api_base), model=model, recorder=StoreRecorder(s.store),
        budget=budget or LLMBudget(max_usd=budget_usd, max_calls=max_calls), pool=pool, families=s.families,
        subject=subject, temperature=temperature, session_id=session_id, timeout=timeout,
        prompt_templates=load_prompt_templates(s.workspace.root))   # <workspace>/prompts/compose.j2 overrides
