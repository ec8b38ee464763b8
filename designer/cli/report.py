"""``agenticrs report [--agent NAME | --pipeline NAME] [-o FILE.html]``: every agent and
pipeline with a history, or one of them."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from designer.cli.output import emit_json, err, out
from designer.cli.services import Services
from designer.errors import UsageError


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(ctx: typer.Context,
           agent: Optional[str] = typer.Option(None, "--agent", metavar="NAME",
                                               help="one agent (default: every agent with experiments)"),
           pipeline: Optional[str] = typer.Option(None, "--pipeline", metavar="NAME",
                                                  help="one pipeline: its graph, lineage, inner rewards, "
                                                       "INFEASIBLE candidates and evolve phases"),
           output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE.html",
                                                 help="where to write (default <workspace>/report.html)"),
           json_out: bool = typer.Option(False, "--json", help="print what was written as JSON")) -> None:
    """Write one self-contained HTML report (plots work offline) and print its path."""
    if agent and pipeline:
        raise UsageError("pass --agent or --pipeline, not both")
    from designer.report import build_report
    s = Services(ctx.obj)
    target = output or s.workspace.root / "report.html"
    if target.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"the report is HTML: name the file FILE.html, not {target}")
    if not target.parent.is_dir():
        raise UsageError(f"no folder {target.parent}: create it or choose another -o path")
    started = time.perf_counter()
    page, histories = build_report(s.store, s.repo, s.families, agent, source=f"workspace {s.workspace.root}",
                                   pipeline=pipeline)
    target.write_text(page, encoding="utf-8")
    data = {"path": str(target.resolve()), "bytes": target.stat().st_size,
            "agents": [h.agent.name for h in histories if h.agent.role != "pipeline"],
            "pipelines": [h.agent.name for h in histories if h.agent.role == "pipeline"],
            "phases": sum(len(s.store.list_phases(h.agent.name)) for h in histories if h.agent.role == "pipeline"),
            "experiments": sum(len(h.experiments) for h in histories),
            "versions": sum(len(h.versions) for h in histories),
            "llm_calls": sum(len(h.llm_calls) for h in histories),
            "seconds": round(time.perf_counter() - started, 2)}
    if json_out:
        return emit_json(data)
    names = ", ".join(data["agents"] + [f"pipeline {p}" for p in data["pipelines"]]) or "no agent"
    err.print(f"report of {names}: {data['experiments']} experiments, "
              f"{data['versions']} versions, {data['bytes'] / 1e6:.1f} MB, {data['seconds']} s", highlight=False)
    out.print(data["path"], highlight=False, soft_wrap=True)
