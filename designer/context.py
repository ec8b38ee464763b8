"""Build a proposer's ``DesignContext`` from the knowledge base (never sealed test metrics)."""
from __future__ import annotations

from typing import Any, TYPE_CHECKING

from designer.proposal import DesignContext, ReviewedProposal
from knowledge_base.models import Agent, AgentVersion, Experiment, Insight, ReviewDecision

if TYPE_CHECKING:
    from knowledge_base.store import Store

HISTORY_LIMIT = 5000
RELATED_INSIGHTS = 3        # per related agent or pipeline


def related_agents(store: Store, agent: Agent) -> list[str]:
    """What carries lessons across the two phase kinds of ``evolve``: for a pipeline, the
    agents its champion pins and those evolved for its family sources (``<pipeline>-<family>``);
    for an agent, the pipelines whose champion pins it or evolve it as a family source."""
    agents = store.list_agents()
    pipelines = [a for a in agents if a.role == "pipeline"]
    names = {a.name for a in agents}

    def members(pipeline: str) -> set[str]:
        champion = store.champion(pipeline)
        if champion is None:
            return set()
        out = set()
        for c in store.list_pipeline_components(champion.id):
            if c.agent_name:
                out.add(c.agent_name)
            elif c.family and f"{pipeline}-{c.family}" in names:
                out.add(f"{pipeline}-{c.family}")
        return out
    if agent.role == "pipeline":
        return sorted(members(agent.name) - {agent.name})
    return sorted(p.name for p in pipelines if agent.name in members(p.name))


def carried_insights(store: Store, agent: Agent, own: int = 5) -> list[Insight]:
    """``agent``'s newest insights (newest first), then the newest few of each related agent or pipeline
    (``related_agents``): what individual phases learned reaches the compositional prompt,
    and the reverse. Prompts name the source of an insight that is not the agent's own."""
    out = list(store.list_insights(agent.name, limit=own))      # newest first
    texts = {i.text for i in out}
    for name in related_agents(store, agent):      # a lesson stored for both (a misalignment) shows once
        out.extend(i for i in store.list_insights(name, limit=RELATED_INSIGHTS) if i.text not in texts)
    return out


def load_history(store: Store, agent: str, dataset_key: str) -> list[Experiment]:
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


def build_context(store: Store, *, agent: Agent, parent: AgentVersion | None, parent_code: str,
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
        rejected=rejected, insights=carried_insights(store, agent),
        families=same_role, time_limit_seconds=time_limit_seconds,
        memory_limit_mb=memory_limit_mb, iteration=iteration,
    )
