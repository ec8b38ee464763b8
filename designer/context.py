"""Build a proposer's ``DesignContext`` from the knowledge base (never sealed test metrics)."""
from __future__ import annotations

from typing import Any

from designer.proposal import DesignContext, ReviewedProposal
from knowledge_base.models import Agent, AgentVersion, Experiment, ReviewDecision

HISTORY_LIMIT = 5000


def load_history(store: Any, agent: str, dataset_key: str) -> list[Experiment]:
    """Every experiment of ``agent`` on ``dataset_key``, oldest first (keyset pages)."""
    out: list[Experiment] = []
    before = None
    while len(out) < HISTORY_LIMIT:
        page = store.list_experiments(agent_name=agent, dataset_key=dataset_key, limit=500,
                                      before_id=before, newest_first=True)
        out.extend(page)
        if len(page) < 500:
            break
        before = page[-1].id
    return list(reversed(out))


def best_experiments(history: list[Experiment], n: int = 5) -> list[Experiment]:
    """Finished full-stage experiments with the highest inner reward, best first."""
    scored = [e for e in history if e.stage == "full" and e.inner_reward is not None]
    return sorted(scored, key=lambda e: e.inner_reward, reverse=True)[:n]


def build_context(store: Any, *, agent: Agent, parent: AgentVersion | None, parent_code: str,
                  parent_reward: float | None, families: dict[str, Any], dataset_key: str,
                  time_limit_seconds: float, memory_limit_mb: int, iteration: int) -> DesignContext:
    """Gather what a proposer may read about ``agent`` on this data set."""
    history = load_history(store, agent.name, dataset_key)
    rejected = []
    for review in store.list_reviews(agent_name=agent.name, decision=ReviewDecision.REJECTED, limit=5):
        rejected.append(ReviewedProposal(experiment=store.get_experiment(review.experiment_id), review=review))
    same_role = {name: f for name, f in families.items() if f.role == agent.role}
    return DesignContext(
        agent=agent, parent=parent,
        parent_family=parent.family if parent else agent.family,
        parent_params=dict(parent.params) if parent else {},
        parent_code=parent_code, parent_reward=parent_reward, dataset_key=dataset_key,
        history=history, best=best_experiments(history),
        failures=store.list_failures(agent_name=agent.name, limit=5),
        rejected=rejected, insights=store.list_insights(agent.name, limit=5),
        families=same_role, time_limit_seconds=time_limit_seconds,
        memory_limit_mb=memory_limit_mb, iteration=iteration,
    )
