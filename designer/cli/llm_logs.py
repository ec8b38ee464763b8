"""``agenticrs llm logs [-n N] [--session S] [--agent A] [--json]``: recorded LLM calls, like
simonw's ``llm logs``: newest last, each with its prompt, answer, tokens, cost and latency,
then the cost per session."""
from __future__ import annotations

from typing import Optional

import typer

from designer.cli.output import emit_json, out, table, when
from designer.cli.services import Services
from designer.report.llm_usage import summarise_sessions

llm_app = typer.Typer(no_args_is_help=True, help="Language-model calls recorded by design sessions.")
ALL = 1_000_000


def register(app: typer.Typer) -> None:
    app.add_typer(llm_app, name="llm")


def call_json(c) -> dict:
    return {"id": c.id, "agent": c.agent_name, "session": c.session_id, "experiment_id": c.experiment_id,
            "model": c.model, "purpose": c.purpose, "prompt": c.prompt, "response": c.response,
            "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
            "cost_usd": c.cost_usd, "latency_seconds": c.latency_seconds, "error": c.error,
            "created_at": c.created_at}


def session_json(row: dict) -> dict:
    return {"session": row["session"], "calls": row["calls"], "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"], "cost_usd": round(row["cost_usd"], 6),
            "latency_seconds": round(row["latency_seconds"], 3), "errors": row["errors"],
            "models": row["models"], "first_call": row["first"], "last_call": row["last"]}


@llm_app.command("logs")
def logs(ctx: typer.Context,
         count: int = typer.Option(3, "--count", "-n", min=0, metavar="N", help="newest N calls (0: all)"),
         session: Optional[str] = typer.Option(None, "--session", "-s", metavar="ID", help="one design session"),
         agent: Optional[str] = typer.Option(None, "--agent", metavar="NAME", help="one agent"),
         json_out: bool = typer.Option(False, "--json", help="calls and per-session totals as JSON")) -> None:
    """Prompts and answers of recorded LLM calls (newest last) and the cost per session."""
    s = Services(ctx.obj)
    if agent:
        s.store.get_agent(agent)
    every = s.store.list_llm_calls(agent_name=agent, session_id=session, limit=ALL)
    shown = list(reversed(every[:count] if count else every))
    sessions = [session_json(r) for r in summarise_sessions(every)]
    if json_out:
        return emit_json({"calls": [call_json(c) for c in shown], "sessions": sessions})
    if not every:
        where = f" in session {session}" if session else ""
        out.print(f"no LLM call recorded{where}: `agenticrs design --proposer llm --model M` records them "
                  "(`agenticrs history` lists sessions)")
        return
    for c in shown:
        _print_call(c)
    table(f"cost per session ({len(every)} calls)",
          ["session", "calls", "tokens in", "tokens out", "USD", "secs", "errors"],
          [[r["session"], r["calls"], r["prompt_tokens"], r["completion_tokens"], f"{r['cost_usd']:.4f}",
            f"{r['latency_seconds']:.1f}", r["errors"]] for r in sessions])


def _print_call(c) -> None:
    experiment = f" · experiment {c.experiment_id}" if c.experiment_id else ""
    out.print(f"[bold]## {when(c.created_at)} · call {c.id} · {c.model} · {c.purpose}[/]", highlight=False)
    out.print(f"session {c.session_id}{experiment} · {c.prompt_tokens} prompt + {c.completion_tokens} "
              f"completion tokens · ${c.cost_usd:.4f} · {c.latency_seconds:.2f} s", highlight=False)
    out.print("\n### Prompt\n", style="bold")
    out.print(c.prompt, markup=False, highlight=False)
    out.print("\n### Response\n", style="bold")
    out.print(c.response or "(empty)", markup=False, highlight=False)
    if c.error:
        out.print(f"\n### Error\n\n{c.error}", markup=False, highlight=False)
    out.print("")
