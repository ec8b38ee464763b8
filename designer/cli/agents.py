"""``agenticrs agents list|show|versions|rollback|check``."""
from __future__ import annotations

import typer

from designer.cli.output import emit_json, err, fmt, out, table, when
from designer.cli.services import Services

agents_app = typer.Typer(no_args_is_help=True, help="Agents and their versions.")


def register(app: typer.Typer) -> None:
    app.add_typer(agents_app, name="agents")


def agent_json(store, agent) -> dict:
    champion = store.champion(agent.name)
    return {"name": agent.name, "role": agent.role, "family": agent.family,
            "description": agent.description, "inner_reward": agent.inner_reward,
            "champion": champion.tag if champion else None,
            "champion_family": champion.family if champion else None,
            "versions": len(store.list_versions(agent.name))}


def version_json(v, versions_by_id: dict, store=None) -> dict:
    parent = versions_by_id.get(v.parent_version_id)
    sealed = ((store.get_test_metrics(v.experiment_id) or {}).get("verdict") or {}) if store and v.experiment_id else {}
    return {"number": v.number, "tag": v.tag, "git_sha": v.git_sha, "family": v.family,
            "params": v.params, "experiment_id": v.experiment_id,
            "parent_version": parent.number if parent else None, "champion": v.is_champion,
            "test_delta": sealed.get("delta"), "test_below_parent": (sealed["delta"] < 0) if "delta" in sealed else None,
            "created_at": v.created_at}


@agents_app.command("list")
def list_agents(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """All agents with their champion version."""
    s = Services(ctx.obj)
    rows = [agent_json(s.store, a) for a in s.store.list_agents()]
    if json_out:
        return emit_json(rows)
    table("agents", ["name", "role", "champion", "family", "versions", "inner reward"],
          [[r["name"], r["role"], r["champion"], r["champion_family"], r["versions"], r["inner_reward"]] for r in rows])


@agents_app.command("show")
def show(ctx: typer.Context, name: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """One agent: description, contract, parameter space, champion and its code."""
    s = Services(ctx.obj)
    agent = s.store.get_agent(name)
    data = agent_json(s.store, agent) | {"interface": agent.interface, "parameter_space": agent.parameter_space}
    champion = s.store.champion(name)
    if json_out:
        return emit_json(data)
    out.print(f"[bold]{agent.name}[/] ({agent.role}), inner reward {agent.inner_reward}")
    out.print(agent.description)
    out.print(f"champion: {data['champion']} ({data['champion_family']}), {data['versions']} version(s)")
    if champion:
        out.print(f"params: {champion.params}")
    out.print("\ncontract:\n" + agent.interface)


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
    table(f"versions of {name}", ["", "tag", "family", "parent", "experiment", "test delta", "sha", "created"],
          [["*" if r["champion"] else "", r["tag"], r["family"], fmt(r["parent_version"]),
            fmt(r["experiment_id"]), _test_flag(r), r["git_sha"][:10], when(r["created_at"])] for r in rows])


def _test_flag(row: dict) -> str:
    """Sealed-test delta against the parent; a negative one is flagged."""
    if row["test_delta"] is None:
        return "-"
    return f"{row['test_delta']:+.4f}" + (" (below parent!)" if row["test_below_parent"] else "")


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
