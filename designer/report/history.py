"""Everything the report shows about one agent, read once from the knowledge base and git.

Only the store's public API is used; the result is plain frozen data, so the figures are
pure functions of it (and tests can build one by hand).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING

from designer.errors import VersionError
from knowledge_base.models import (Agent, AgentVersion, Experiment, ExperimentStatus, Failure,
                                   LLMCall)

if TYPE_CHECKING:
    from knowledge_base.store import Store

PAGE = 1000          # experiments per keyset page
MANY = 1_000_000     # "all" for the list calls that only take a limit


@dataclass(frozen=True)
class VersionView:
    """One agent version with the numbers the lineage shows."""

    version: AgentVersion
    parent: AgentVersion | None
    experiment: Experiment | None       # the run that promoted it, else its baseline score
    test: dict[str, Any] | None         # sealed test {"metrics", "segments"}, None if not run
    code: str | None                    # the module as committed (None if the tag is gone)
    diff: str = ""                      # unified diff from the parent's code

    @property
    def promoted_by(self) -> Experiment | None:
        exp = self.experiment
        return exp if exp is not None and exp.id == self.version.experiment_id else None


@dataclass(frozen=True)
class AgentHistory:
    """The whole recorded history of one agent (experiments oldest first)."""

    agent: Agent
    experiments: list[Experiment]
    versions: list[VersionView]
    failures: list[Failure]
    llm_calls: list[LLMCall]
    metric: str = field(default="")     # e.g. "val ndcg@10"

    @property
    def champion(self) -> VersionView | None:
        return next((v for v in self.versions if v.version.is_champion), None)

    def version_by_id(self, version_id: int | None) -> VersionView | None:
        return next((v for v in self.versions if v.version.id == version_id), None)


def load_history(store: Store, repo: Any, agent_name: str) -> AgentHistory:
    """Read ``agent_name``'s experiments, versions (with code and diffs), failures and LLM
    calls. Raises ``NotFoundError`` for an unknown agent."""
    agent = store.get_agent(agent_name)
    experiments = all_experiments(store, agent_name)
    versions = _versions(store, repo, agent_name, experiments,
                         "pipeline.yaml" if agent.role == "pipeline" else "agent.py")
    failures = sorted(store.list_failures(agent_name=agent_name, limit=MANY), key=lambda f: f.id)
    calls = sorted(store.list_llm_calls(agent_name=agent_name, limit=MANY), key=lambda c: c.id)
    return AgentHistory(agent, experiments, versions, failures, calls,
                        metric=f"val {agent.inner_reward}")


def all_experiments(store: Store, agent_name: str) -> list[Experiment]:
    """Every experiment of ``agent_name``, oldest first (keyset pages of ``PAGE``)."""
    found: list[Experiment] = []
    while True:
        page = store.list_experiments(agent_name=agent_name, limit=PAGE, newest_first=False,
                                      after_id=found[-1].id if found else None)
        found += page
        if len(page) < PAGE:
            return found


def _versions(store: Store, repo: Any, agent_name: str, experiments: list[Experiment],
              filename: str) -> list[VersionView]:
    rows = store.list_versions(agent_name)
    by_id = {v.id: v for v in rows}
    experiment_by_id = {e.id: e for e in experiments}
    codes = {v.id: _code(repo, v) for v in rows}
    views = []
    for v in rows:
        parent = by_id.get(v.parent_version_id)
        exp = experiment_by_id.get(v.experiment_id) if v.experiment_id else _baseline(v, experiments)
        diff = _diff(codes[parent.id], codes[v.id], f"{parent.tag}/{filename}", f"{v.tag}/{filename}") \
            if parent else ""
        views.append(VersionView(v, parent, exp, store.get_test_metrics(exp.id) if exp else None,
                                 codes[v.id], diff))
    return views


def _baseline(version: AgentVersion, experiments: list[Experiment]) -> Experiment | None:
    """The latest full-stage score of a version that no experiment promoted (v1, rollbacks)."""
    scored = [e for e in experiments if e.proposer == "baseline" and e.parent_version_id == version.id
              and e.stage == "full" and e.status is ExperimentStatus.COMPLETED]
    return scored[-1] if scored else None


def _code(repo: Any, version: AgentVersion) -> str | None:
    try:
        return repo.read_version(version.agent_name, version.number).code
    except VersionError:
        return None


def _diff(old: str | None, new: str | None, old_name: str, new_name: str) -> str:
    if old is None or new is None:
        return ""
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), old_name, new_name))
