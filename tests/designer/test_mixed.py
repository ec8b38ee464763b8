"""The ``mixed`` bandit shares iterations between LLM structure and parameter search."""
from __future__ import annotations

from designer.proposal import Proposal, ProposalKind
from designer.proposers.mixed import MixedProposer
from knowledge_base.models import ExperimentDraft, ExperimentResult, ExperimentStatus, PromotionState
from tests.designer.test_search_and_promotion import KEY, context


class Arm:
    def __init__(self, name):
        self.name, self.calls = name, 0

    def propose(self, ctx):
        self.calls += 1
        return Proposal(proposer=self.name, kind=ProposalKind.PARAMS, family="ease")


def add(store, proposer, n, effect, seconds):
    for i in range(n):
        exp = store.start_experiment(ExperimentDraft(agent_name="recommender", session_id="s", proposer=proposer,
                                                     family="ease", code_hash=f"{proposer}{i}", dataset_key=KEY))
        store.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.COMPLETED, inner_reward=0.1,
                                                         wall_seconds=seconds))
        store.set_promotion(exp.id, PromotionState.NOT_BETTER, 0.5, effect)


def test_each_arm_is_tried_before_the_bandit_exploits(store, releaser, families):
    bandit = MixedProposer(Arm("llm"), Arm("search"))
    assert bandit.choose(context(store, families)) == "llm"
    add(store, "llm", 1, 0.0, 10)
    assert bandit.choose(context(store, families)) == "search"


def test_the_arm_with_more_gain_per_second_gets_the_iterations(store, releaser, families):
    add(store, "llm", 6, 0.0, 30)        # expensive, never gained
    add(store, "search", 6, 0.01, 5)     # cheap, steady gains
    bandit = MixedProposer(Arm("llm"), Arm("search"), exploration=0.1)
    picks = [bandit.choose(context(store, families)) for _ in range(3)]
    assert picks == ["search"] * 3
    proposal = bandit.propose(context(store, families))
    assert proposal.proposer == "search" and bandit.last_arm == "search"
