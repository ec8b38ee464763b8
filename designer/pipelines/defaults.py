"""The pipeline a new workspace starts with: built from the built-in agents."""
from __future__ import annotations

from typing import Any, TYPE_CHECKING

from designer.pipelines.spec import PipelineSpec
from designer.subjects import PIPELINE_FAMILY
from knowledge_base.models import AgentSpec

if TYPE_CHECKING:
    from knowledge_base.store import Store

DEFAULT_PIPELINE = "default"

CONTRACT = """\
A pipeline spec (YAML; see designer/pipelines/spec.py and docs/agent-contract.md, "Pipelines"):
sources (recall agents at pinned versions or built-in families, each with a quota), a ranker
(score fusion or learned), an optional re-ranker, an optional router with one branch per
label, the candidate depth and the outer reward (objective + constraints)."""

DESCRIPTION = ("Pipeline of recall sources -> ranker -> re-ranker (router optional) judged on its outer "
               "reward; starts as the recommender's champion and item-kNN fused by reciprocal rank.")


def default_spec(store: Store, name: str = DEFAULT_PIPELINE) -> PipelineSpec:
    """The recommender's champion (pinned) and item-kNN at its defaults, fused by RRF."""
    champion = store.champion("recommender")
    first = ({"agent": "recommender", "version": champion.number, "quota": 100} if champion is not None
             else {"family": "popularity", "params": {}, "quota": 100})
    return PipelineSpec.from_dict({
        "name": name, "depth": 200, "window_share": 0.2,
        "outer_reward": {"objective": "ndcg@10", "constraints": []},
        "branches": [{"sources": [first, {"family": "itemknn", "params": {}, "quota": 100}],
                      "ranker": {"family": "fusion", "params": {"method": "rrf"}}}]})


def pipeline_agent_spec(name: str, description: str = DESCRIPTION, objective: str = "ndcg@10") -> AgentSpec:
    return AgentSpec(name=name, role="pipeline", family=PIPELINE_FAMILY, description=description,
                     interface=CONTRACT, inner_reward=objective, parameter_space={})


def create_pipeline(store: Store, releaser: Any, spec: PipelineSpec) -> Any:
    """Register ``spec.name`` as a pipeline with ``spec`` as v1 (idempotent); its v1 version."""
    store.upsert_agent(pipeline_agent_spec(spec.name, objective=spec.outer_reward.objective))
    releaser.reconcile(spec.name)
    versions = store.list_versions(spec.name)
    if versions:
        return versions[0]
    return releaser.publish_initial(spec.name, PIPELINE_FAMILY, spec.to_dict(), spec.to_yaml())
