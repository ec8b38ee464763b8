"""The HTML report of a workspace: ``build_report`` reads the knowledge base and the agents
repository and returns one self-contained page (see ``designer.report.page``)."""
from __future__ import annotations

from typing import Any, TYPE_CHECKING

from designer.errors import UsageError
from designer.report.history import AgentHistory, load_history
from designer.report.page import render
from designer.report.pipeline_history import PipelineHistory, load_pipeline_history

if TYPE_CHECKING:
    from knowledge_base.store import Store

__all__ = ["AgentHistory", "PipelineHistory", "build_report", "load_history", "load_pipeline_history"]


def build_report(store: Store, repo: Any, families: dict[str, Any], agent: str | None = None,
                 source: str = "", pipeline: str | None = None) -> tuple[str, list[AgentHistory]]:
    """``(html, histories)`` for ``agent`` or ``pipeline``, or for every agent and pipeline
    with an experiment (or an evolve phase) when both are None. A pipeline's section shows
    its graph, lineage, inner rewards, INFEASIBLE candidates and evolve phases; ``agent``
    may name a pipeline too. ``histories`` holds the pipelines' histories as well.

    Raises ``NotFoundError`` for an unknown name, ``UsageError`` when ``pipeline`` names an
    agent that is not a pipeline.
    """
    one = agent or pipeline
    chosen = [store.get_agent(one)] if one else store.list_agents()
    if pipeline and chosen[0].role != "pipeline":
        raise UsageError(f"{pipeline} is an agent of role {chosen[0].role}, not a pipeline: "
                         f"use `agenticrs report --agent {pipeline}`")
    sections: list[AgentHistory | PipelineHistory] = [
        load_pipeline_history(store, repo, a.name) if a.role == "pipeline" else load_history(store, repo, a.name)
        for a in chosen]
    if one is None:
        sections = [s for s in sections if _has_history(s)]
    title = f"AgenticRS report: {one}" if one else "AgenticRS report"
    histories = [s.history if isinstance(s, PipelineHistory) else s for s in sections]
    return render(sections, families, title, source), histories


def _has_history(section: AgentHistory | PipelineHistory) -> bool:
    if isinstance(section, PipelineHistory):
        return bool(section.history.experiments or section.phases)
    return bool(section.experiments)
