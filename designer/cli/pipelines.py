"""``agenticrs pipelines list|show|versions|rollback``: pipelines and their versions."""
from __future__ import annotations

from pathlib import Path

import typer
import yaml

from designer.cli.agents import _test_flag, version_json
from designer.cli.output import emit_json, err, fmt, out, table, when
from designer.cli.services import Services
from designer.errors import UsageError
from designer.pipelines.defaults import create_pipeline
from designer.pipelines.resolve import resolve
from designer.pipelines.spec import PipelineSpec

pipelines_app = typer.Typer(no_args_is_help=True, help="Pipelines (recall sources -> ranker -> re-ranker, "
                                                       "router) and their versions.")


def register(app: typer.Typer) -> None:
    app.add_typer(pipelines_app, name="pipelines")


def _pipeline(s: Services, name: str):
    agent = s.store.get_agent(name)
    if agent.role != "pipeline":
        raise UsageError(f"{name} is an agent of role {agent.role}, not a pipeline: see `agenticrs agents show {name}`")
    return agent


def _champion_spec(s: Services, name: str) -> tuple[object, PipelineSpec | None]:
    champion = s.store.champion(name)
    if champion is None:
        return None, None
    return champion, PipelineSpec.from_yaml(s.repo.read_version(name, champion.number).code, f"{champion.tag}")


def _score(s: Services, version) -> float | None:
    """The version's validation objective: its promoting experiment's, else the latest
    baseline run that scored it (v1, rollbacks)."""
    if version is None:
        return None
    if version.experiment_id is not None:
        return s.store.get_experiment(version.experiment_id).inner_reward
    runs = [e for e in s.store.list_experiments(agent_name=version.agent_name, stage="full", limit=10_000)
            if e.proposer == "baseline" and e.parent_version_id == version.id and e.inner_reward is not None]
    return max(runs, key=lambda e: e.id).inner_reward if runs else None


@pipelines_app.command("list")
def list_pipelines(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """All pipelines with their champion version and its graph."""
    s = Services(ctx.obj)
    rows = []
    for agent in s.store.list_agents():
        if agent.role != "pipeline":
            continue
        champion, spec = _champion_spec(s, agent.name)
        rows.append({"name": agent.name, "champion": champion.tag if champion else None,
                     "objective": agent.inner_reward, "versions": len(s.store.list_versions(agent.name)),
                     "graph": describe(spec) if spec else None,
                     "val_objective": _score(s, champion)})
    if json_out:
        return emit_json(rows)
    table("pipelines", ["name", "champion", "versions", "objective", "val score", "graph"],
          [[r["name"], r["champion"], r["versions"], r["objective"], fmt(r["val_objective"]), r["graph"]] for r in rows])


def describe(spec: PipelineSpec) -> str:
    """The spec's one-line graph (``PipelineSpec.graph``)."""
    return spec.graph()


@pipelines_app.command("show")
def show(ctx: typer.Context, name: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """One pipeline: its champion's spec (YAML), components and validation metrics."""
    s = Services(ctx.obj)
    agent = _pipeline(s, name)
    champion, spec = _champion_spec(s, name)
    exp = s.store.get_experiment(champion.experiment_id) if champion and champion.experiment_id else None
    inner = {k.removeprefix("inner/"): v for k, v in (exp.metrics if exp else {}).items() if k.startswith("inner/")}
    data = {"name": name, "objective": agent.inner_reward, "champion": champion.tag if champion else None,
            "spec": spec.to_dict() if spec else None, "experiment_id": exp.id if exp else None,
            "val_objective": exp.inner_reward if exp else None, "inner_rewards": inner,
            "val_metrics": {k: v for k, v in (exp.metrics if exp else {}).items() if not k.startswith("inner/")}}
    if json_out:
        return emit_json(data)
    out.print(f"[bold]{name}[/] (pipeline), objective {agent.inner_reward}; champion {data['champion']}")
    if spec is not None:
        out.print(describe(spec))
        out.print(spec.to_yaml(), markup=False, highlight=False)
    if exp is not None:
        out.print(f"val {agent.inner_reward} {exp.inner_reward:.4f} (experiment {exp.id})")
        for key, value in sorted(inner.items()):
            out.print(f"  inner reward {key}: {value:.4f}", markup=False)
    else:
        out.print(f"not scored yet on any data set: agenticrs compose --pipeline {name}")


@pipelines_app.command("versions")
def versions(ctx: typer.Context, name: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """Versions of a pipeline (git tags <name>/vN), oldest first; * marks the champion."""
    s = Services(ctx.obj)
    _pipeline(s, name)
    found = s.store.list_versions(name)
    by_id = {v.id: v for v in found}
    rows = []
    for v in found:
        row = version_json(v, by_id, s.store)
        spec = PipelineSpec.from_yaml(s.repo.read_version(name, v.number).code, v.tag)
        row.update({"graph": describe(spec), "val_objective": _score(s, v)})
        rows.append(row)
    if json_out:
        return emit_json(rows)
    table(f"versions of {name}", ["", "tag", "val score", "test delta", "graph", "created"],
          [["*" if r["champion"] else "", r["tag"], fmt(r["val_objective"]), _test_flag(r), r["graph"],
            when(r["created_at"])] for r in rows])


@pipelines_app.command("rollback")
def rollback(ctx: typer.Context, name: str, version: str = typer.Argument(..., help="e.g. v2")) -> None:
    """Make an older version of a pipeline current again, as a new commit and version."""
    number = version.lstrip("v")
    if not number.isdigit():
        raise UsageError(f"version must look like v2, not {version!r}")
    s = Services(ctx.obj)
    _pipeline(s, name)
    new = s.releaser.rollback(name, int(number))
    err.print(f"{name}: {new.tag} is now the champion (same spec as v{number}, commit {new.git_sha[:10]})")


@pipelines_app.command("create")
def create(ctx: typer.Context, name: str,
           spec_file: Path = typer.Option(..., "--spec", metavar="FILE.yaml",
                                          help="the pipeline spec (see `agenticrs pipelines show default`)"),
           json_out: bool = typer.Option(False, "--json")) -> None:
    """Register a new pipeline NAME whose v1 is the spec in FILE.yaml (its `name` is set to NAME)."""
    s = Services(ctx.obj)
    if any(a.name == name for a in s.store.list_agents()):
        raise UsageError(f"{name} exists already: evolve it with `agenticrs compose --pipeline {name}` "
                         "or choose another name")
    try:
        text = spec_file.read_text()
    except OSError as e:
        raise UsageError(f"cannot read {spec_file}: {e.strerror or e}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raw = None                # from_yaml below says where the syntax breaks
    if isinstance(raw, dict):
        raw = {**raw, "name": name}
    spec = PipelineSpec.from_dict(raw, str(spec_file)) if isinstance(raw, dict) else PipelineSpec.from_yaml(text, str(spec_file))
    resolve(spec, store=s.store, repo=s.repo, families=s.families)
    version = create_pipeline(s.store, s.releaser, spec)
    if json_out:
        return emit_json({"name": name, "version": version.tag, "spec": spec.to_dict()})
    err.print(f"pipeline {name} created: {version.tag} = {describe(spec)}")
    err.print(f"next: agenticrs compose --pipeline {name} --iterations 20")
