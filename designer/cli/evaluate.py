"""``agenticrs evaluate FILE.py|FAMILY``: score one agent through the sandbox."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import typer

from designer.cli.live import Pulse, progress
from designer.cli.output import emit_json, err, fmt, out, table
from designer.cli.services import Options
from designer.errors import UsageError
from designer.executor import LocalExecutor
from designer.families import FamilyError, load_families
from designer.settings import limit_overrides, load_settings, parse_columns
from designer.workspace import MARKER, Workspace
from sandbox.evaluation import EvaluationJob


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)


def _candidate(target: str, params_json: Optional[str],
               families_dir: Optional[Path] = None) -> tuple[str, dict, Optional[float]]:
    try:
        params = json.loads(params_json) if params_json else {}
    except json.JSONDecodeError as e:
        raise UsageError(f"--params is not valid JSON ({e}); e.g. --params '{{\"l2\": 200}}'") from e
    if not isinstance(params, dict):
        raise UsageError("--params must be a JSON object, e.g. '{\"l2\": 200}'")
    path = Path(target)
    if target.endswith(".py"):
        if not path.is_file():
            raise UsageError(f"no agent file at {path}")
        return path.read_text(), params, None
    families = load_families(families_dir if families_dir and families_dir.is_dir() else None)
    if target not in families:
        raise UsageError(f"{target!r} is neither a .py file nor a family; families: {', '.join(families)}")
    family = families[target]
    try:
        full = family.validate(params)
    except FamilyError as e:  # the user's --params: a usage error (exit 2), like bad JSON
        raise UsageError(str(e)) from e
    return family.render(full), full, family.time_limit_seconds


def evaluate(ctx: typer.Context, target: str = typer.Argument(..., help="agent FILE.py or a family name"),
             params: Optional[str] = typer.Option(None, "--params", help="JSON object of parameters"),
             dataset: Optional[str] = typer.Option(None, "--dataset"),
             data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
             n_users: Optional[int] = typer.Option(None, "--n-users", min=10, help="synthetic: users"),
             n_items: Optional[int] = typer.Option(None, "--n-items", min=10, help="synthetic: items"),
             split: Optional[str] = typer.Option(None, "--split"),
             test: bool = typer.Option(False, "--test", help="sealed test: fit on train+validation, score test"),
             k: Optional[int] = typer.Option(None, "--k", min=1, help="list length (default 10)"),
             wall_limit: Optional[float] = typer.Option(None, "--wall-limit", help="seconds per run"),
             memory_mb: Optional[int] = typer.Option(None, "--memory-mb", help="memory per run"),
             columns: Optional[str] = typer.Option(None, "--columns", help="interactions file columns, comma-separated: user=COL, item=COL, timestamp=COL and optionally rating=COL"),
             allow_insecure: bool = typer.Option(False, "--allow-insecure-sandbox"),
             config: Optional[Path] = typer.Option(None, "--config", help="TOML file of settings "
                                                   "(default: the workspace's config.toml)"),
             json_out: bool = typer.Option(False, "--json")) -> None:
    """Validation metrics of one agent (sealed test metrics with --test), run in the sandbox.
    A family name may be a built-in family or one of the workspace's templates/agents/."""
    options: Options = ctx.obj
    workspace = Workspace.open(options.workspace, options.db) if (options.workspace / MARKER).is_file() else None
    code, full_params, family_limit = _candidate(target, params, workspace.families_dir if workspace else None)
    cache = workspace.cache_dir if workspace else Path.home() / ".cache" / "agenticrs"
    if config is None and workspace is not None and workspace.config_file.is_file():
        config = workspace.config_file
    settings = load_settings(config, dataset=dataset, data_dir=data_dir, n_users=n_users, n_items=n_items, columns=parse_columns(columns), split=split, k=k,
                             allow_insecure_sandbox=allow_insecure or None)
    limit = wall_limit or min(settings.limits.wall_seconds, family_limit or settings.limits.wall_seconds)
    limits = settings.limits.model_copy(update={"wall_seconds": limit, **limit_overrides(memory_mb=memory_mb)})
    executor = LocalExecutor(settings, cache)
    job = EvaluationJob(code=code, params=full_params, stage="test" if test else "validation", k=settings.k,
                        seed=settings.seed, limits=limits)
    with tempfile.TemporaryDirectory(prefix="agenticrs-eval-") as tmp:
        err.print(f"evaluating {target} on {executor.dataset_key} ({job.stage}) in sandbox tier {executor.tier} ...")
        with progress(err, Pulse(err, f"evaluating {target} ({job.stage})")):
            result = executor.evaluate(job, Path(tmp))
    data = {"target": target, "dataset": executor.dataset_key, "stage": job.stage, "outcome": result.outcome.value,
            "tier": result.tier, "metrics": result.metrics, "segments": result.segments,
            "fit_seconds": result.fit_seconds, "recommend_seconds": result.recommend_seconds,
            "wall_seconds": result.wall_seconds, "peak_memory_mb": result.peak_memory_mb,
            "error": None if result.outcome.ok else _error(result, limits)}
    if json_out:
        emit_json(data)
    else:
        _print(data, result)
    if not result.outcome.ok:
        raise typer.Exit(1)


def _error(result, limits) -> str:
    """``TIMED_OUT: wall-clock limit of 3 s reached; raise it with --wall-limit SECONDS``."""
    text = f"{result.error_type or result.outcome.value}: {result.message}"
    hints = {"TIMED_OUT": f"raise it with --wall-limit SECONDS (now {fmt(limits.wall_seconds, 'seconds')})",
             "OUT_OF_MEMORY": f"raise it with --memory-mb MB (now {limits.memory_mb})"}
    hint = hints.get(result.outcome.value)
    return f"{text}; {hint}" if hint else text


def _print(data: dict, result) -> None:
    out.print(f"outcome [bold]{data['outcome']}[/]  tier {data['tier']}  wall {data['wall_seconds']:.2f}s  "
              f"fit {data['fit_seconds'] or 0:.2f}s  peak memory {data['peak_memory_mb'] or 0:.0f} MB")
    if not result.outcome.ok:
        out.print(f"[red]{data['error']}[/]")
        if result.traceback_tail:
            out.print(result.traceback_tail, markup=False, highlight=False)
        return
    label = "sealed test" if data["stage"] == "test" else "validation"
    table(f"{label} metrics on {data['dataset']}", ["metric", "value"], sorted(data["metrics"].items()))
    seg = [[name, v.get("ndcg@10"), v.get("recall@10"), v.get("n_users")] for name, v in sorted(data["segments"].items())]
    if seg:
        table("by segment", ["segment", "ndcg@10", "recall@10", "users"], seg)
