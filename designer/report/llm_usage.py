"""Totals of recorded LLM calls per design session (shared by the report and `llm logs`)."""
from __future__ import annotations

from typing import Any


def summarise_sessions(calls: list[Any]) -> list[dict[str, Any]]:
    """Per session, in order of first call: calls, tokens, cost, latency, errors, models."""
    rows: dict[str, dict] = {}
    for c in sorted(calls, key=lambda c: c.id):
        row = rows.setdefault(c.session_id, {"session": c.session_id, "calls": 0, "prompt_tokens": 0,
                                             "completion_tokens": 0, "cost_usd": 0.0, "latency_seconds": 0.0,
                                             "errors": 0, "models": [], "first": c.created_at})
        row["calls"] += 1
        row["prompt_tokens"] += c.prompt_tokens
        row["completion_tokens"] += c.completion_tokens
        row["cost_usd"] += c.cost_usd
        row["latency_seconds"] += c.latency_seconds
        row["errors"] += c.error is not None
        row["last"] = c.created_at
        if c.model not in row["models"]:
            row["models"].append(c.model)
    return list(rows.values())
