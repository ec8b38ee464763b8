"""``agenticrs init``: create or upgrade a workspace."""
from __future__ import annotations

import json

from pathlib import Path
from typing import Optional

import typer

from designer.builtin_agents import builtin_specs
from designer.pipelines.defaults import DEFAULT_PIPELINE, create_pipeline, default_spec
from designer.cli.output import emit_json, err
from designer.errors import UsageError
from designer.cli.services import Options, Services, archive_foreign_experiments
from designer.release import Releaser
from designer.versions import AgentRepository
from knowledge_base.engine import safe_url
from knowledge_base.schema import known_revisions
from knowledge_base.store import Store


def write_workspace_config(path: Path, **values: Optional[str]) -> None:
    """Set top-level string keys in the workspace's TOML config, keeping everything else."""
    lines = path.read_text().splitlines() if path.exists() else []
    keys = {k for k, v in values.items() if v is not None}
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in keys]
    new = [f"{k} = {json.dumps(str(values[k]))}" for k in sorted(keys)]
    path.write_text("\n".join(new + kept) + "\n")


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(ctx: typer.Context,
         dataset: Optional[str] = typer.Option(None, "--dataset", help="default data set of this workspace"),
         data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="default data folder"),
         json_out: bool = typer.Option(False, "--json", help="print what was set up as JSON")) -> None:
    """Create the workspace (knowledge base, agents repository, experiments/); safe to run twice.

    --dataset and --data-dir are written to WORKSPACE/config.toml, the workspace's
    defaults for design and evaluate (flags and AGENTICRS_* variables still override them).
    """
    options: Options = ctx.obj
    if data_dir is not None and not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder: pass the folder that holds the data set "
                         "(e.g. ../shared/data/ml-100k)")
    services = Services(options, create=True)
    ws = services.workspace
    if dataset or data_dir:
        write_workspace_config(ws.config_file, dataset=dataset,
                               data_dir=str(data_dir.resolve()) if data_dir else None)
    store = Store.open(ws.db_url)
    if store.revision() not in (None, *known_revisions()):
        store.check_schema()  # written by a newer agenticrs: says so instead of an alembic trace
    with store.exclusive("agenticrs.init"):  # workspaces initialised at once on one database
        store.upgrade()
        archived = archive_foreign_experiments(ws, store)
        created, replicated = _builtin_agents(store, Releaser(store, AgentRepository.init(ws.agents_repo)),
                                              services.families)
    summary = {"workspace": str(ws.root), "db": safe_url(ws.db_url), "schema": store.revision(),
               "agents": [a.name for a in store.list_agents()], "created_agents": created,
               "replicated_versions": replicated,
               "archived_experiments": str(archived) if archived else None}
    if json_out:
        emit_json(summary)
    else:
        err.print(f"workspace ready at {ws.root}  (database {summary['db']}, schema {summary['schema']})")
        err.print(f"agents: {', '.join(summary['agents'])}" + (f"  (new: {', '.join(created)})" if created else ""))
        if replicated:
            err.print(f"agents repository: {len(replicated)} version(s) copied from the knowledge base "
                      f"(released by other workspaces): {', '.join(replicated)}")
        if archived:
            err.print(f"moved experiment folders this knowledge base has no record of to {archived}")
        err.print("next: agenticrs design --agent recommender --iterations 10")


def _builtin_agents(store: Store, releaser: Releaser, families: dict) -> tuple[list[str], list[str]]:
    """Register the built-in agents; v1 of each new one; the versions other workspaces
    released copied into this repository. Returns (new agents, copied versions)."""
    created, replicated = [], []
    for spec in builtin_specs(families):
        store.upsert_agent(spec)
        replicated += releaser.reconcile(spec.name).rebuilt
        if not store.list_versions(spec.name):
            family = families[spec.family]
            params = family.defaults()
            releaser.publish_initial(spec.name, spec.family, params, family.render(params))
            created.append(spec.name)
    replicated += releaser.reconcile(DEFAULT_PIPELINE).rebuilt if _known(store, DEFAULT_PIPELINE) else []
    if not _known(store, DEFAULT_PIPELINE):
        create_pipeline(store, releaser, default_spec(store))
        created.append(DEFAULT_PIPELINE)
    return created, replicated


def _known(store: Store, name: str) -> bool:
    return any(a.name == name for a in store.list_agents())
