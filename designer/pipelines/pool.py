"""The recall pool: the sources a composition search may wire into a pipeline.

Each agent of role ``recommender`` at its champion version (pinned), and each built-in
recommender family of ``POOL_FAMILIES`` at the best parameters any experiment on this data
set found for it (the design runs' tuning carries over), else at its defaults. Options with
the same code are one option.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TYPE_CHECKING

from knowledge_base.models import ExperimentStatus

if TYPE_CHECKING:
    from knowledge_base.store import Store

# Cheap enough to fit twice per stage (target, ranker window) on any data set: the torch
# families (bpr, sasrec) stay out unless named with --pool (on ml-100k sasrec is the source
# that lets a learned ranker beat recency_ease: see the README). In the order of their
# usual strength on implicit feedback, which orders unscored options (a fresh workspace).
POOL_FAMILIES = ("recency_ease", "ease", "ials", "itemknn", "popularity")


@dataclass(frozen=True)
class PoolOption:
    label: str                 # stable across runs: the search's parameter names use it
    component: dict[str, Any]  # a spec source without its quota
    note: str                  # where it comes from, for people
    score: float | None = None # its best known validation inner reward on this data set


def best_params(store: Store, family: str, dataset_key: str) -> tuple[dict[str, Any], float] | None:
    """The params of the best completed full-stage run of ``family`` on ``dataset_key``."""
    best = None
    for agent in store.list_agents():
        if agent.role != "recommender":
            continue
        for exp in store.list_experiments(agent_name=agent.name, dataset_key=dataset_key, stage="full",
                                          status=ExperimentStatus.COMPLETED, limit=10_000):
            if exp.family == family and exp.inner_reward is not None and (best is None or exp.inner_reward > best[1]):
                best = (dict(exp.params), exp.inner_reward)
    return best


def recall_pool(store: Store, families: dict[str, Any], dataset_key: str,
                names: tuple[str, ...] | None = None) -> list[PoolOption]:
    """The pool (see the module docstring); ``names`` restricts it to these family or agent names."""
    options: list[PoolOption] = []
    seen: set[str] = set()

    def add(option: PoolOption, key: str) -> None:
        if key not in seen and (names is None or option.label.split(":", 1)[1] in names):
            seen.add(key)
            options.append(option)

    for agent in store.list_agents():
        champion = store.champion(agent.name) if agent.role == "recommender" else None
        if champion is None:
            continue
        exp = store.get_experiment(champion.experiment_id) if champion.experiment_id else None
        score = exp.inner_reward if exp is not None and exp.dataset_key == dataset_key else None
        if score is None and (found := best_params(store, champion.family, dataset_key)) \
                and found[0] == champion.params:
            score = found[1]
        add(PoolOption(f"agent:{agent.name}", {"agent": agent.name, "version": champion.number},
                       f"champion {champion.tag} ({champion.family})", score),
            json.dumps([champion.family, champion.params], sort_keys=True, default=str))
    wanted = names if names is not None else POOL_FAMILIES
    for name in wanted:
        family = families.get(name)
        if family is None or family.role != "recommender":
            continue
        found = best_params(store, name, dataset_key)
        params = family.validate(found[0]) if found else family.defaults()
        note = f"best val run of {name} ({found[1]:.4f})" if found else f"{name} at its defaults"
        add(PoolOption(f"family:{name}", {"family": name, "params": params}, note, found[1] if found else None),
            json.dumps([name, params], sort_keys=True, default=str))
    # Best known first; unscored ones after, families (in POOL_FAMILIES order) before agents.
    return sorted(options, key=lambda o: (o.score is None, -(o.score or 0.0), o.label.startswith("agent:")))
