"""The HTML report of a workspace: ``build_report`` reads the knowledge base and the agents
repository and returns one self-contained page (see ``designer.report.page``)."""
from __future__ import annotations

from typing import Any

from designer.report.history import AgentHistory, load_history
from designer.report.page import render

__all__ = ["AgentHistory", "build_report", "load_history"]


def build_report(store: Any, repo: Any, families: dict[str, Any], agent: str | None = None,
                 source: str = "") -> tuple[str, list[AgentHistory]]:
    """``(html, histories)`` for ``agent``, or for every agent with an experiment when None.

    Raises ``NotFoundError`` for an unknown ``agent``.
    """
    names = [agent] if agent else [a.name for a in store.list_agents()]
    histories = [load_history(store, repo, name) for name in names]
    if agent is None:
        histories = [h for h in histories if h.experiments]
    title = f"AgenticRS report: {agent}" if agent else "AgenticRS report"
    return render(histories, families, title, source), histories
