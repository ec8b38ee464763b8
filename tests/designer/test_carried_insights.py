"""Lessons cross the phase kinds of ``evolve``: a pipeline's prompt shows what its components'
individual phases learned, a component's prompt what its pipelines learned."""
from __future__ import annotations

from designer.context import build_context, related_agents
from designer.llm.context_view import insight_bullets
from designer.llm.prompts import PromptBudget
from designer.pipelines.defaults import create_pipeline, default_spec
from designer.pipelines.spec import PipelineSpec


def context_of(store, families, name: str):
    agent = store.get_agent(name)
    return build_context(store, agent=agent, parent=store.champion(name), parent_code="", parent_reward=None,
                         families=families, dataset_key="d", time_limit_seconds=60, memory_limit_mb=512, iteration=1)


def test_insights_cross_between_a_pipeline_and_the_agents_it_pins(store, releaser, families):
    create_pipeline(store, releaser, default_spec(store))          # pins recommender/v1, item-kNN by family
    other = PipelineSpec.from_dict({"name": "other", "branches": [{"sources": [{"family": "ease", "quota": 50}],
                                                                   "ranker": {"family": "fusion"}}]})
    create_pipeline(store, releaser, other)                        # does not pin the recommender
    store.add_insight("recommender", "EASE with l2 near 300 wins alone", {})
    store.add_insight("default", "a second source hurts cold users", {})
    store.add_insight("other", "unrelated lesson", {})
    store.add_insight("recommender", "misaligned in default", {})   # evolve stores a misalignment for both
    store.add_insight("default", "misaligned in default", {})

    assert related_agents(store, store.get_agent("default")) == ["recommender"]
    assert related_agents(store, store.get_agent("recommender")) == ["default"]

    pipeline = insight_bullets(context_of(store, families, "default").insights, PromptBudget(), own="default")
    assert pipeline == ["misaligned in default", "a second source hurts cold users", "(from recommender) EASE with l2 near 300 wins alone"]
    agent = insight_bullets(context_of(store, families, "recommender").insights, PromptBudget(), own="recommender")
    assert agent == ["misaligned in default", "EASE with l2 near 300 wins alone", "(from default) a second source hurts cold users"]
