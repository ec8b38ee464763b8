"""Honest promotion through the real loop, KB and git: the LORD++ level of each test,
confirmation on the earlier window and another seed, the sealed test as a veto, and a
champion replaced while a session runs."""
from __future__ import annotations

import pytest

from designer.error_control import lord_alpha
from designer.events import EventKind
from knowledge_base.models import PromotionState

from tests.designer.conftest import FakeExecutor
from tests.designer.test_loop import FixedProposer, by_family, family_of, make_loop


def _run(store, releaser, families, settings, workspace, reward_of, family="ease", iterations=1, events=None):
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(reward_of),
                     proposer=FixedProposer(family), events=events)
    return loop.run(iterations=iterations)


def _full(store, family="ease"):
    [exp] = store.list_experiments(agent_name="recommender", family=family, stage="full")
    return exp


def test_a_real_gain_is_tested_at_the_lord_level_confirmed_and_approved(store, releaser, families, settings, workspace):
    _run(store, releaser, families, settings, workspace, by_family)
    exp = _full(store)
    assert exp.promotion is PromotionState.APPROVED and store.champion("recommender").family == "ease"
    ev = exp.evidence
    assert ev["error_control"]["seq"] == 1
    assert ev["validation"]["alpha"] == pytest.approx(lord_alpha(1, [], 0.05, 0.005))   # 2.68e-4, not 0.05
    assert ev["validation"]["p_value"] <= ev["validation"]["alpha"]
    assert ev["confirmation"]["confirmed"] and ev["confirmation"]["stochastic"] is False
    stages = {e.stage for e in store.list_experiments(agent_name="recommender", limit=50)}
    assert {"confirm", "confirm-seed"} <= stages                  # confirmation runs are experiments
    [test] = store.list_error_control_tests("recommender")
    assert test.discovery is True and test.experiment_id == exp.id
    assert store.get_test_metrics(exp.id)["verdict"]["vetoed"] is False


def test_a_gain_that_vanishes_on_the_earlier_window_is_not_promoted(store, releaser, families, settings, workspace):
    def overfit(job):
        return 0.02 if job.stage == "confirm" and family_of(job) == "ease" else by_family(job)
    events = []
    _run(store, releaser, families, settings, workspace, overfit, events=events)
    exp = _full(store)
    assert exp.promotion is PromotionState.NOT_CONFIRMED
    assert "earlier window" in exp.evidence["confirmation"]["reason"]
    assert store.champion("recommender").number == 1
    assert store.list_error_control_tests("recommender")[0].discovery is False
    assert any(e.kind is EventKind.NOT_CONFIRMED for e in events)


def test_a_lucky_seed_of_a_stochastic_candidate_is_not_promoted(store, releaser, families, settings, workspace):
    def lucky(job):
        if family_of(job) == "ease" and job.stage == "validation":
            return 0.06 if job.seed == settings.seed else 0.04     # champion: 0.05
        return by_family(job)
    _run(store, releaser, families, settings, workspace, lucky)
    exp = _full(store)
    assert exp.promotion is PromotionState.NOT_CONFIRMED
    assert exp.evidence["confirmation"]["stochastic"] is True
    assert "two seeds" in exp.evidence["confirmation"]["reason"]


def test_a_candidate_that_sabotages_the_test_stage_is_not_auto_approved(store, releaser, families, settings, workspace):
    def sabotage(job):
        return 0.002 if job.stage == "test" and family_of(job) == "ease" else by_family(job)
    events = []
    summary = _run(store, releaser, families, settings, workspace, sabotage, events=events)
    exp = _full(store)
    assert exp.promotion is PromotionState.PENDING_REVIEW and not summary.approved
    verdict = store.get_test_metrics(exp.id)["verdict"]
    assert verdict["vetoed"] and verdict["candidate"] < verdict["parent"]
    assert store.champion("recommender").number == 1
    assert any(e.kind is EventKind.VETOED for e in events)
    # a later session does not auto-approve it either
    _run(store, releaser, families, settings, workspace, sabotage, family="popularity")
    assert store.get_experiment(exp.id).promotion is PromotionState.PENDING_REVIEW


def test_a_champion_replaced_during_the_session_supersedes_the_pending_winner(
        store, releaser, families, settings, workspace):
    _run(store, releaser, families, settings, workspace, by_family, family="itemknn")
    assert store.champion("recommender").number == 2

    def rollback_while_sealing(job):
        if job.stage == "test" and family_of(job) == "ease":
            releaser.rollback("recommender", 1)                     # `agents rollback` from elsewhere
        return by_family(job)
    events = []
    summary = _run(store, releaser, families, settings, workspace, rollback_while_sealing, iterations=2, events=events)
    exp = _full(store)
    assert exp.promotion is PromotionState.SUPERSEDED and "but the champion is now recommender/v3" in exp.evidence["superseded"]
    assert summary.iterations == 2 and store.champion("recommender").family == "popularity"
    assert any(e.kind is EventKind.SUPERSEDED for e in events)
    _run(store, releaser, families, settings, workspace, by_family, family="popularity")   # starts fine


def test_per_test_control_reproduces_the_first_wave_gate(store, releaser, families, settings, workspace):
    loose = settings.model_copy(update={"promotion": settings.promotion.model_copy(
        update={"error_control": "per-test", "confirm": False})})
    _run(store, releaser, families, loose, workspace, by_family)
    exp = _full(store)
    assert exp.evidence["validation"]["alpha"] == 0.05 and "confirmation" not in exp.evidence


def test_llm_written_code_is_family_custom_in_history(store, releaser, families, settings, workspace):
    from designer.proposal import Proposal, ProposalKind

    class CodeProposer:
        name = "llm"

        def propose(self, context):
            code = families["ease"].render(families["ease"].defaults()) + "\n# rewritten by a model\n"
            return Proposal(proposer="llm", kind=ProposalKind.CODE, family=context.parent_family, code=code)
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(by_family), proposer=CodeProposer())
    loop.run(iterations=1)
    [exp] = [e for e in store.list_experiments(agent_name="recommender", stage="full") if e.proposer == "llm"]
    assert exp.family == "custom" and exp.proposal["base_family"] == "popularity"
    assert exp.promotion is PromotionState.APPROVED
    assert store.champion("recommender").family == "custom"


def test_without_an_earlier_window_the_seed_check_alone_decides(store, releaser, families, settings, workspace):
    class NoWindow(FakeExecutor):          # users too short for an earlier window: 0 users scored
        def evaluate(self, job, run_dir):
            result = super().evaluate(job, run_dir)
            if job.stage != "confirm":
                return result
            empty = result.user_ids[:0]
            return result.model_copy(update={"user_ids": empty, "user_rewards": result.user_rewards[:0]})
    loop = make_loop(store, releaser, families, settings, workspace, NoWindow(by_family), proposer=FixedProposer("ease"))
    loop.run(iterations=1)
    exp = _full(store)
    assert exp.promotion is PromotionState.APPROVED
    assert exp.evidence["confirmation"]["window"] is None
    assert "seed check alone" in exp.evidence["confirmation"]["reason"]
