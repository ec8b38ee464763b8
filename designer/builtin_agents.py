"""The agents a new workspace starts with, each from a built-in family at its defaults."""
from __future__ import annotations

from typing import Any

from knowledge_base.models import AgentSpec

CONTRACT = """\
One Python module importing only the standard library, numpy, scipy, torch and agent_sdk:
class Agent:
    def __init__(self, **params): ...
    def fit(self, train) -> None: ...   # agent_sdk.TrainData: user, item, timestamp, rating,
                                        # n_users, n_items, item_features, user_features,
                                        # matrix(), sequences()
    def recommend(self, users: np.ndarray, k: int) -> np.ndarray: ...
        # int64 (len(users), k), best first, no item the user had in train"""

BUILTIN_AGENTS: dict[str, dict[str, Any]] = {
    "recommender": {
        "role": "recommender", "family": "popularity",
        "description": "Top-k recommender for all users: retrieves and ranks the catalogue from "
                       "the interaction history. Starts as a popularity model; any built-in "
                       "family of role recommender, or new code, may replace it.",
    },
    "reranker": {
        "role": "reranker", "family": "mmr",
        "description": "Re-ranks a base model's top candidates to trade relevance for "
                       "intra-list diversity (MMR).",
    },
}


def builtin_specs(families: dict[str, Any]) -> list[AgentSpec]:
    """Specs of the built-in agents whose family exists in ``families``."""
    specs = []
    for name, info in BUILTIN_AGENTS.items():
        family = families.get(info["family"])
        if family is None:
            continue
        space = {p: spec.model_dump(mode="json") for p, spec in family.params.items()}
        specs.append(AgentSpec(name=name, role=info["role"], family=info["family"],
                               description=info["description"], interface=CONTRACT,
                               inner_reward="ndcg@10", parameter_space=space))
    return specs
