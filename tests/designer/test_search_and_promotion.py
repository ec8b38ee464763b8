"""The search proposer's policy and the paired promotion test."""
from __future__ import annotations

import math

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


def _exact_sign_flip_p(diff: np.ndarray) -> float:
    """The exact one-sided sign-flip p-value: every one of the 2^n sign patterns."""
    n = len(diff)
    signs = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
    return float(np.mean((signs * diff).mean(axis=1) >= diff.mean() - 1e-12))


def test_the_p_value_matches_the_exact_sign_flip_distribution():
    rng = np.random.default_rng(4)
    parent = rng.random(14)
    for gain in (0.0, 0.05, 0.12):                          # p from ~0.5 down to ~0.01
        candidate = parent + gain + rng.normal(0, 0.1, 14)
        ours = compare(candidate, parent, PromotionConfig(resamples=20_000)).p_value
        exact = _exact_sign_flip_p(candidate - parent)
        assert ours == pytest.approx(exact, abs=0.01)         # Monte Carlo error ~0.0035


def test_beyond_the_resampling_floor_the_p_value_is_the_normal_tail():
    rng = np.random.default_rng(0)
    parent = rng.random(500)
    diff = 0.004 + rng.normal(0, 0.01, 500)                  # z ~ 9: no resample reaches it
    result = compare(parent + diff, parent, PromotionConfig())
    z = diff.sum() / np.sqrt((diff ** 2).sum())
    assert result.p_method == "normal approximation" and result.z == pytest.approx(z)
    assert result.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-9)
    assert result.p_value < 1 / (PromotionConfig().resamples + 1)   # below the permutation floor
    assert result.promote and result.ci_low > 0
    strict = compare(parent + diff, parent, PromotionConfig(), alpha=result.p_value / 2)
    assert not strict.promote and "not significant" in strict.reason


def test_noise_and_tiny_gains_are_not_promoted():
    rng = np.random.default_rng(1)
    parent = rng.random(500)
    assert not compare(parent + rng.normal(0, 0.05, 500), parent, PromotionConfig()).promote
    tiny = compare(parent + 0.001, parent, PromotionConfig(min_effect=0.002))
    assert not tiny.promote and "minimum effect" in tiny.reason


def test_comparison_needs_paired_arrays():
    with pytest.raises(ValueError):
        compare(np.zeros(3), np.zeros(4), PromotionConfig())
