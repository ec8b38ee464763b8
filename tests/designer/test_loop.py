"""The design loop with a real knowledge base and git repository, and a fake executor."""
from __future__ import annotations

import re

from designer.events import EventKind
from designer.loop import DesignLoop
from designer.proposal import Proposal, ProposalKind
from designer.proposers.search import SearchProposer
from knowledge_base.models import ExperimentDraft, ExperimentStatus, FailureKind, PromotionState
from sandbox.outcome import Outcome

from tests.designer.conftest import FakeExecutor

QUALITY = {"popularity": 0.05, "ease": 0.14, "recency_ease": 0.12, "itemknn": 0.10, "ials": 0.11,
           "bpr": 0.09, "sasrec": 0.08, "mmr": 0.07}


def family_of(job) -> str:
    """The family a rendered module came from (its docstring names it: family `name`)."""
    match = re.search(r"family `(\w+)`", job.code)
    return match.group(1) if match else "popularity"


def by_family(job):
    return QUALITY[family_of(job)]


def make_loop(store, releaser, families, settings, workspace, executor, proposer=None, auto=True, events=None):
    return DesignLoop(store=store, proposer=proposer or SearchProposer(seed=1), executor=executor,
                      releaser=releaser, families=families, agent_name="recommender", settings=settings,
                      workspace=workspace, auto_approve=auto,
                      on_event=(events.append if events is not None else None))


class FixedProposer:
    name = "fixed"

    def __init__(self, family: str, params: dict | None = None):
        self.family, self.params = family, params or {}

    def propose(self, context):
        return Proposal(proposer="fixed", kind=ProposalKind.FAMILY_SWITCH, family=self.family, params=self.params)


def test_a_better_family_is_promoted_committed_and_tagged(store, releaser, families, settings, workspace):
    events = []
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(by_family), events=events)
    summary = loop.run(iterations=6)
    champion = store.champion("recommender")
    assert champion.family == "ease" and champion.number >= 2
    assert summary.approved and summary.best_reward > summary.baseline_reward
    stored = releaser.repo.read_version("recommender", champion.number)
    assert stored.manifest["experiment_id"] == champion.experiment_id
    assert "p_value" in stored.manifest and stored.manifest["test"]
    assert releaser.repo.champion_number("recommender") == champion.number
    assert store.get_test_metrics(champion.experiment_id)["metrics"]
    assert any(e.kind is EventKind.APPROVED for e in events)


def test_without_auto_approve_winners_wait_for_review(store, releaser, families, settings, workspace):
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(by_family),
                     proposer=FixedProposer("ease"), auto=False)
    loop.run(iterations=1)
    pending = store.list_experiments(agent_name="recommender", promotion=PromotionState.PENDING_REVIEW)
    assert len(pending) == 1
    assert store.champion("recommender").number == 1
    version = releaser.approve(pending[0].id)
    assert version.number == 2 and store.champion("recommender").family == "ease"


def test_a_crashing_candidate_is_recorded_as_data_and_the_loop_goes_on(store, releaser, families, settings, workspace):
    def crash_ease(job):
        return Outcome.FAILED if family_of(job) == "ease" else by_family(job)
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(crash_ease),
                     proposer=FixedProposer("ease"))
    summary = loop.run(iterations=2)
    failed = store.list_experiments(agent_name="recommender", status=ExperimentStatus.FAILED)
    assert len(failed) == 1 and summary.failed == 1
    failure = store.list_failures(experiment_id=failed[0].id)[0]
    assert failure.kind is FailureKind.RUNTIME and "boom" in failure.traceback_tail


def test_a_content_hash_is_never_evaluated_twice(store, releaser, families, settings, workspace):
    executor = FakeExecutor(by_family)
    loop = make_loop(store, releaser, families, settings, workspace, executor,
                     proposer=FixedProposer("itemknn"), auto=False)
    summary = loop.run(iterations=3)
    assert summary.duplicates == 2
    codes = [j.code for j in executor.jobs if j.stage == "validation" and j.user_fraction < 1]
    assert len(codes) == 1


def test_the_cheap_stage_screens_out_a_much_worse_candidate(store, releaser, families, settings, workspace):
    def bad_knn(job):
        return 0.001 if family_of(job) == "itemknn" else by_family(job)
    executor = FakeExecutor(bad_knn)
    loop = make_loop(store, releaser, families, settings, workspace, executor, proposer=FixedProposer("itemknn"))
    summary = loop.run(iterations=1)
    assert summary.screened_out == 1
    exp = store.list_experiments(agent_name="recommender", stage="cheap")[0]
    assert exp.promotion is PromotionState.SCREENED_OUT
    assert not store.list_experiments(agent_name="recommender", family="itemknn", stage="full")


def test_an_equal_candidate_is_not_promoted(store, releaser, families, settings, workspace):
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(lambda job: 0.05),
                     proposer=FixedProposer("ease"))
    loop.run(iterations=1)
    full = store.list_experiments(agent_name="recommender", family="ease", stage="full")[0]
    assert full.promotion is PromotionState.NOT_BETTER
    assert store.champion("recommender").number == 1


def test_resume_marks_the_experiment_of_a_killed_session_interrupted(store, releaser, families, settings, workspace):
    ghost = store.start_experiment(ExperimentDraft(agent_name="recommender", session_id="dead", proposer="search",
                                                   family="ease", params={}, code_hash="x" * 64,
                                                   dataset_key=FakeExecutor.dataset_key, stage="cheap"))
    events = []
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(by_family), events=events)
    loop.run(iterations=1)
    assert store.get_experiment(ghost.id).status is ExperimentStatus.INTERRUPTED
    assert any(e.kind is EventKind.RESUMED for e in events)


def test_a_second_run_continues_the_first(store, releaser, families, settings, workspace):
    executor = FakeExecutor(by_family)
    make_loop(store, releaser, families, settings, workspace, executor).run(iterations=4)
    first = store.count_experiments(agent_name="recommender")
    make_loop(store, releaser, families, settings, workspace, executor).run(iterations=4)
    hashes = [e.code_hash for e in store.list_experiments(agent_name="recommender", stage="full", limit=500)]
    assert store.count_experiments(agent_name="recommender") > first
    assert len(hashes) == len(set(hashes)), "no candidate evaluated twice across runs"


def test_a_crash_between_commit_and_row_is_repaired(store, releaser, families, settings, workspace):
    family = families["ease"]
    code = family.render(family.defaults())
    releaser.repo.commit_version("recommender", 2, code, {"family": "ease", "params": family.defaults(),
                                                          "parent_version": 1, "experiment_id": None}, "crash test")
    report = releaser.reconcile("recommender")
    assert report.created == ["recommender/v2"]
    assert store.champion("recommender").number == 2
    assert not releaser.reconcile("recommender").changed


def test_the_epsilon_policy_sometimes_starts_from_a_non_champion_version(store, releaser, families, settings, workspace):
    executor = FakeExecutor(lambda job: 0.2 if family_of(job) == "recency_ease" else by_family(job))
    make_loop(store, releaser, families, settings, workspace, executor).run(iterations=4)
    assert len(store.list_versions("recommender")) >= 3
    loop = DesignLoop(store=store, proposer=SearchProposer(seed=1), executor=executor, releaser=releaser,
                      families=families, agent_name="recommender", settings=settings, workspace=workspace,
                      parent_policy="epsilon", epsilon=1.0)
    incumbent = loop.incumbent()
    bases = {loop.pick_base(incumbent)[0].number for _ in range(10)}
    assert incumbent.version.number not in bases and bases
    greedy = DesignLoop(store=store, proposer=SearchProposer(seed=1), executor=executor, releaser=releaser,
                        families=families, agent_name="recommender", settings=settings, workspace=workspace)
    assert {greedy.pick_base(incumbent)[0].number for _ in range(5)} == {incumbent.version.number}


def test_sealed_test_metrics_never_reach_a_proposer(store, releaser, families, settings, workspace):
    seen = []

    class Spy(SearchProposer):
        def propose(self, context):
            seen.append(context.model_dump_json())
            return super().propose(context)

    def sealed(job):
        return 0.4321 if job.stage == "test" else by_family(job)
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(sealed), proposer=Spy(seed=1))
    loop.run(iterations=4)
    champion = store.champion("recommender")
    test_value = store.get_test_metrics(champion.experiment_id)["metrics"]["ndcg@10"]
    assert test_value > 0.4
    assert seen and not any(f"{test_value:.6f}"[:6] in blob for blob in seen)


class SequenceProposer:
    """Proposes the given families in order (one per call)."""

    name = "fixed"

    def __init__(self, *families: str):
        self.families = list(families)

    def propose(self, context):
        return Proposal(proposer="fixed", kind=ProposalKind.FAMILY_SWITCH, family=self.families.pop(0), params={})


def test_a_pending_winner_is_the_bar_later_candidates_must_beat(store, releaser, families, settings, workspace):
    # without review: recency_ease (0.12) waits; ease (0.14) must beat it, and does; itemknn
    # (0.10) beats the champion (popularity, 0.05) but not the pending ease: it stays out of review
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(by_family),
                     proposer=SequenceProposer("recency_ease", "ease", "itemknn"), auto=False)
    loop.run(iterations=3)
    pending = store.list_experiments(agent_name="recommender", promotion=PromotionState.PENDING_REVIEW,
                                     newest_first=False)
    assert [e.family for e in pending] == ["recency_ease", "ease"]
    assert "provisional_incumbent" not in pending[0].evidence
    assert pending[1].evidence["provisional_incumbent"] == pending[0].id
    assert pending[1].evidence["parent_version"] == "recommender/v1"   # its parent is still the champion
    knn = [e for e in store.list_experiments(agent_name="recommender") if e.family == "itemknn"]
    assert [e.promotion for e in knn] == [PromotionState.SCREENED_OUT]
    assert store.champion("recommender").number == 1


def test_with_auto_approve_the_bar_is_the_champion(store, releaser, families, settings, workspace):
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(by_family),
                     proposer=SequenceProposer("recency_ease", "ease"), auto=True)
    loop.run(iterations=2)
    [ease] = [e for e in store.list_experiments(agent_name="recommender", stage="full") if e.family == "ease"]
    assert "provisional_incumbent" not in ease.evidence and ease.evidence["parent_version"] == "recommender/v2"
