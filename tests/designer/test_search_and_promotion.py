"""The search proposer's policy and the paired promotion test."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from designer.context import build_context
from designer.promotion import compare
from designer.proposal import ProposalKind
from designer.proposers.search import SearchProposer
from designer.settings import PromotionConfig
from knowledge_base.models import ExperimentDraft, ExperimentResult, ExperimentStatus

KEY = "fake/user_temporal/000000000000"


def context(store, families, agent="recommender"):
    champion = store.champion(agent)
    return build_context(store, agent=store.get_agent(agent), parent=champion, parent_code="",
                         parent_reward=0.05, families=families, dataset_key=KEY, time_limit_seconds=60,
                         memory_limit_mb=1024, iteration=1)


def record(store, family, params, reward, stage="full"):
    exp = store.start_experiment(ExperimentDraft(agent_name="recommender", session_id="s", proposer="search",
                                                 family=family, params=params, code_hash=f"{family}{params}",
                                                 dataset_key=KEY, stage=stage))
    store.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.COMPLETED, inner_reward=reward))


def test_unexplored_families_come_first_cheapest_first(store, releaser, families):
    proposal = SearchProposer().propose(context(store, families))
    assert proposal.kind is ProposalKind.FAMILY_SWITCH
    limits = {n: f.time_limit_seconds for n, f in families.items() if f.role == "recommender" and n != "popularity"}
    assert families[proposal.family].time_limit_seconds == min(limits.values())
    assert proposal.params == families[proposal.family].defaults()


def test_tuning_proposes_valid_params_warm_started_from_the_kb(store, releaser, families):
    for name, family in families.items():
        if family.role == "recommender":
            record(store, name, family.defaults(), 0.05)
    for l2 in (10.0, 100.0, 1000.0):
        record(store, "popularity", {**families["popularity"].defaults(), "window_days": l2}, 0.06)
    proposal = SearchProposer(switch_probability=0.0).propose(context(store, families))
    assert proposal.kind is ProposalKind.PARAMS and proposal.family == "popularity"
    assert proposal.meta["warm_trials"] == 4
    families["popularity"].validate(proposal.params)  # inside the declared space


def test_a_clear_paired_gain_is_promoted():
    rng = np.random.default_rng(0)
    parent = rng.random(500)
    result = compare(parent + 0.02 + rng.normal(0, 0.01, 500), parent, PromotionConfig())
    assert result.promote and result.p_value < 0.01 and result.ci_low > 0


def test_noise_and_tiny_gains_are_not_promoted():
    rng = np.random.default_rng(1)
    parent = rng.random(500)
    assert not compare(parent + rng.normal(0, 0.05, 500), parent, PromotionConfig()).promote
    tiny = compare(parent + 0.001, parent, PromotionConfig(min_effect=0.002))
    assert not tiny.promote and "minimum effect" in tiny.reason


def test_comparison_needs_paired_arrays():
    with pytest.raises(ValueError):
        compare(np.zeros(3), np.zeros(4), PromotionConfig())
