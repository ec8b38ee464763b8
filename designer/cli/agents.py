"""``agenticrs agents list|show|versions|rollback|check``."""
from __future__ import annotations

import typer

from designer.cli.output import emit_json, err, fmt, number, out, table, when
from designer.cli.services import Services
from knowledge_base.models import ExperimentStatus

agents_app = typer.Typer(no_args_is_help=True, help="Agents and their versions.")


def register(app: typer.Typer) -> None:
    app.add_typer(agents_app, name="agents")


def agent_json(store, agent) -> dict:
    champion = store.champion(agent.name)
    scores = version_scores(store, champion) if champion else {}
    return {"name": agent.name, "role": agent.role, "family": agent.family,
            "description": agent.description, "inner_reward": agent.inner_reward,
            "champion": champion.tag if champion else None,
            "champion_family": champion.family if champion else None,
            "champion_val_reward": scores.get("val_reward"),
            "versions": len(store.list_versions(agent.name))}


def version_json(v, versions_by_id: dict, store=None) -> dict:
    parent = versions_by_id.get(v.parent_version_id)
    sealed = ((store.get_test_metrics(v.experiment_id) or {}).get("verdict") or {}) if store and v.experiment_id else {}
    return {"number": v.number, "tag": v.tag, "git_sha": v.git_sha, "family": v.family,
            "params": v.params, "experiment_id": v.experiment_id,
            "parent_version": parent.number if parent else None, "champion": v.is_champion,
            **(version_scores(store, v) if store else {}),
            "test_delta": sealed.get("delta"), "test_below_parent": (sealed["delta"] < 0) if "delta" in sealed else None,
            "created_at": v.created_at}


def version_scores(store, v) -> dict:
    """A version's validation inner reward (of the experiment that made it, else of its
    newest baseline run: v1 is scored when a session starts) with its data set, and its
    sealed test NDCG@10 (a released version is decided: no longer a number to pick on)."""
    exp = store.get_experiment(v.experiment_id) if v.experiment_id else None
    if exp is None:
        runs = store.list_experiments(agent_name=v.agent_name, proposer="baseline", stage="full",
                                      status=ExperimentStatus.COMPLETED, limit=200)
        exp = next((e for e in runs if e.parent_version_id == v.id), None)
    test = (store.get_test_metrics(exp.id) or {}).get("metrics") or {} if exp else {}
    return {"val_reward": exp.inner_reward if exp else None, "val_dataset": exp.dataset_key if exp else None,
            "test_ndcg@10": test.get("ndcg@10")}


@agents_app.command("list")
def list_agents(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """All agents with their champion version."""
    s = Services(ctx.obj)
    rows = [agent_json(s.store, a) for a in s.store.list_agents()]
    if json_out:
        return emit_json(rows)
    table("agents", ["name", "role", "champion", "family", "versions", "champion val"],
          [[r["name"], r["role"], r["champion"], r["champion_family"], r["versions"], _score(r)] for r in rows],
          optional=("role", "versions"), wrap=("name", "family"))


@agents_app.command("show")
def show(ctx: typer.Context, name: str,
         code: bool = typer.Option(False, "--code", help="print the champion's full source"),
         json_out: bool = typer.Option(False, "--json")) -> None:
    """One agent: description, contract, the champion's parameter space and code."""
    s = Services(ctx.obj)
    agent = s.store.get_agent(name)
    champion = s.store.champion(name)
    source = s.store.get_code(champion.code_hash) if champion and champion.code_hash else None
    if champion and source is None:
        source = s.repo.read_version(name, champion.number).code
    space = champion_space(s.families, champion, source) if champion else agent.parameter_space
    data = agent_json(s.store, agent) | {
        "interface": agent.interface, "parameter_space": space,
        "champion_params": champion.params if champion else None, "champion_code": source,
        "champion_code_git": _git_show(s, champion) if champion else None}
    if json_out:
        return emit_json(data)
    out.print(f"[bold]{agent.name}[/] ({agent.role}), inner reward: validation {agent.inner_reward}")
    out.print(agent.description)
    out.print(f"champion: {data['champion']} ({data['champion_family']}), {data['versions']} version(s)")
    if champion:
        out.print(f"params: {champion.params}", highlight=False)
    if space:
        table(f"parameter space of {data['champion_family'] or agent.family}",
              ["param", "type", "range / choices", "default", "champion"],
              [[p, spec.get("type"), _range(spec), spec.get("default"),
                (champion.params if champion else {}).get(p)] for p, spec in space.items()])
    out.print("\ncontract:\n" + agent.interface, highlight=False, markup=False)
    if source is not None and code:
        out.print(f"\n--- {data['champion']} agent.py ---", highlight=False, markup=False)
        out.print(source, highlight=False, markup=False)
    elif source is not None:
        out.print(f"\ncode: {len(source.splitlines())} lines; print it with `agenticrs agents show {name} --code` "
                  f"or `{data['champion_code_git']}`", highlight=False, markup=False)


def champion_space(families: dict, champion, code: str | None) -> dict:
    """The parameter space of the champion's family (a built-in or workspace family), or the
    ``SPACE`` its module declares (LLM-written code); {} if it has none."""
    from designer.families import declared_space
    family = families.get(champion.family)
    specs = family.params if family is not None else declared_space(code or "")
    return {p: spec.model_dump(mode="json") for p, spec in specs.items()}


def _range(spec: dict) -> str:
    if spec.get("choices"):
        return ", ".join(map(str, spec["choices"]))
    if spec.get("low") is None and spec.get("high") is None:
        return "-"
    return f"{fmt(spec.get('low'))} .. {fmt(spec.get('high'))}" + (" (log)" if spec.get("log") else "")


def _git_show(s: Services, champion) -> str:
    return f"git -C {s.workspace.agents_repo} show {champion.tag}:{champion.agent_name}/agent.py"


@agents_app.command("versions")
def versions(ctx: typer.Context, name: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """Versions of an agent (git tags <name>/vN), oldest first; * marks the champion."""
    s = Services(ctx.obj)
    s.store.get_agent(name)
    found = s.store.list_versions(name)
    by_id = {v.id: v for v in found}
    rows = [version_json(v, by_id, s.store) for v in found]
    if json_out:
        return emit_json(rows)
    metric = s.store.get_agent(name).inner_reward
    table(f"versions of {name}", ["", "tag", "family", "parent", "experiment", f"val {metric}", "test ndcg@10",
                                  "test delta", "sha", "created"],
          [["*" if r["champion"] else "", r["tag"], r["family"], fmt(r["parent_version"]),
            fmt(r["experiment_id"]), r["val_reward"], r["test_ndcg@10"], _test_flag(r), r["git_sha"][:10],
            when(r["created_at"])] for r in rows],
          optional=("created", "sha", "parent", "experiment", "family"), wrap=("tag", "family", "test delta"))
    if len({r["val_dataset"] for r in rows if r["val_dataset"]}) > 1:
        out.print("(validation rewards come from different data sets: see --json val_dataset)")


def _score(row: dict) -> str:
    """``ndcg@10 0.2921`` of the champion, ``ndcg@10 -`` before it was scored."""
    return f"{row['inner_reward']} {fmt(row['champion_val_reward'])}"


def _test_flag(row: dict) -> str:
    """Sealed-test delta against the parent; a negative one is flagged."""
    if row["test_delta"] is None:
        return "-"
    return f"{number(row['test_delta'], signed=True)}" + (" (below parent!)" if row["test_below_parent"] else "")


@agents_app.command("rollback")
def rollback(ctx: typer.Context, name: str, version: str = typer.Argument(..., help="e.g. v2")) -> None:
    """Make an older version current again, as a new commit and version."""
    from designer.errors import UsageError
    number = version.lstrip("v")
    if not number.isdigit():
        raise UsageError(f"version must look like v2, not {version!r}")
    s = Services(ctx.obj)
    new = s.releaser.rollback(name, int(number))
    err.print(f"{name}: {new.tag} is now the champion (same code as v{number}, commit {new.git_sha[:10]})")


@agents_app.command("check")
def check(ctx: typer.Context, repair: bool = typer.Option(
        False, "--repair", help="also set aside tags whose code differs from the knowledge base and rebuild them")) -> None:
    """Make this workspace's agents repository a replica of the knowledge base; report what
    differed, and remove git locks that a killed process left."""
    s = Services(ctx.obj)
    for lock in s.repo.clear_stale_locks():
        err.print(f"agents repository: removed stale lock {lock} (left by a killed git write)")
    for agent in s.store.list_agents():
        report = s.releaser.reconcile(agent.name, repair=repair)
        err.print(f"{agent.name}: {report.describe(repair)}")
