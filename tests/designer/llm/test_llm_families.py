"""LLM-made families: a module's ``SPACE`` makes its constants searchable once it is the parent."""
from __future__ import annotations

import re

from llm_fixtures import GOOD_MODULE, experiment, make_context
from tests.designer.conftest import FakeExecutor

from designer.families import declared_space, llm_family_name
from designer.llm.budget import LLMBudget
from designer.llm.openai_client import OpenAIClient
from designer.llm.proposer import LLMProposer
from designer.loop import DesignLoop
from designer.proposal import ProposalKind
from designer.proposers.mixed import MixedProposer
from designer.proposers.search import SearchProposer, llm_family
from designer.static_check import check_module

SPACED = GOOD_MODULE.replace("class Agent:", '''SPACE = {
    "half_life": {"type": "float", "low": 1.0, "high": 100.0, "log": True, "default": 10.0},
    "blend": {"type": "categorical", "choices": ["sum", "max"], "default": "sum"},
}


class Agent:''').replace("    def __init__(self, **params):\n        self.params = params",
                         "    def __init__(self, half_life=10.0, blend=\"sum\"):\n"
                         "        self.params = {\"half_life\": half_life, \"blend\": blend}")


def quality(job) -> float:
    """The champion scores 0.05; the LLM module 0.20, best with a long half-life."""
    if "SPACE" not in job.code:
        return 0.05
    return 0.20 + 0.02 * (job.params.get("half_life", 10.0) / 100.0)


def loop(store, releaser, families, settings, workspace, proposer, executor):
    return DesignLoop(store=store, proposer=proposer, executor=executor, releaser=releaser,
                      families=families, agent_name="recommender", settings=settings,
                      workspace=workspace, auto_approve=True, static_check=check_module)


def test_a_space_must_be_valid_and_accepted_by_the_constructor():
    assert check_module(SPACED) == []
    assert set(declared_space(SPACED)) == {"half_life", "blend"}
    unaccepted = SPACED.replace('blend="sum"):', 'mix="sum"):')
    assert any("SPACE declares blend but Agent.__init__ does not accept it" in p for p in check_module(unaccepted))
    broken = SPACED.replace('"log": True, "default": 10.0', '"default": 1000.0')
    assert any("SPACE['half_life'] is not a valid spec" in p for p in check_module(broken))
    assert any("must be a literal dict" in p for p in check_module(SPACED.replace("SPACE = {", "SPACE = dict(**{", 1)
                                                                   .replace("}\n\n\nclass", "})\n\n\nclass", 1)))


def test_a_promoted_llm_module_with_a_space_is_tuned_by_search(server, recorder, fast_retry, store, releaser,
                                                               families, settings, workspace):
    executor = FakeExecutor(quality)
    server.push(f"Recency-weighted popularity with a tunable half-life.\n\n```python\n{SPACED}```\n")
    llm = LLMProposer(OpenAIClient(api_base=server.url, retry=fast_retry), model="local", recorder=recorder,
                      budget=LLMBudget(), ask_policy=lambda ctx: "improve", timeout=5.0)
    summary = loop(store, releaser, families, settings, workspace, llm, executor).run(iterations=1)
    assert summary.approved, summary
    champion = store.champion("recommender")
    assert champion.family == "custom"

    search = SearchProposer(seed=3, switch_probability=0.0)
    loop(store, releaser, families, settings, workspace, search, executor).run(iterations=4)
    name = llm_family_name(SPACED)
    tuned = [e for e in store.list_experiments(agent_name="recommender", limit=100)
             if e.proposal.get("base_family") == name and e.stage == "full"]
    assert len(tuned) >= 3 and all(e.proposer == "search" and e.family == "custom" for e in tuned)
    assert len({(e.params["half_life"], e.params["blend"]) for e in tuned}) == len(tuned)
    assert all(1.0 <= e.params["half_life"] <= 100.0 and e.params["blend"] in ("sum", "max") for e in tuned)
    warm = [e.proposal["meta"]["warm_trials"] for e in sorted(tuned, key=lambda e: e.id)]
    assert warm == sorted(warm) and warm[-1] >= 2  # each trial is warm-started from the earlier ones
    runs = [j for j in executor.jobs if j.params.get("half_life") is not None]
    assert runs and all("SPACE" in j.code for j in runs)


def test_search_ignores_llm_code_without_a_space_and_mixed_hands_structure_to_the_llm(families):
    ctx = make_context(parent_family="custom", parent_code=GOOD_MODULE, families=families)
    assert llm_family(ctx) is None
    spaced = make_context(parent_family="custom", parent_code=SPACED, families=families)
    proposal = SearchProposer(switch_probability=0.0).propose(spaced)
    assert proposal.kind is ProposalKind.CODE and proposal.code == SPACED
    assert proposal.family == llm_family_name(SPACED) and set(proposal.params) == {"half_life", "blend"}
    assert re.search(r"over the SPACE of LLM family llm-[0-9a-f]{10}", proposal.rationale)
    assert proposal.meta["warm_trials"] == 0
    parent = spaced.parent.model_copy(update={"experiment_id": 5, "family": "custom"})
    ran = make_context(parent=parent, parent_family="custom", parent_code=SPACED, families=families,
                       history=[experiment(5, reward=0.2)])
    tuned = SearchProposer(switch_probability=0.0).propose(ran)
    assert tuned.meta["warm_trials"] == 1  # the parent's own run is the trial at the SPACE defaults
    assert tuned.params != {"half_life": 10.0, "blend": "sum"}
    mixed = MixedProposer(object(), SearchProposer(switch_probability=0.0))
    mixed.attempts["llm"] = 1  # the LLM arm has had its turn: search tunes what it wrote
    assert mixed.propose(spaced).family == llm_family_name(SPACED)


def test_mixed_gives_a_fresh_llm_family_to_search_before_the_llm_changes_it_again(families):
    class Arm:
        def __init__(self, name):
            self.name = name

    bandit = MixedProposer(Arm("llm"), Arm("search"))
    fresh = make_context(parent_family="custom", parent_code=SPACED, families=families)
    assert bandit.choose(fresh) == "search"
    tuned = experiment(9, proposer="search").model_copy(
        update={"proposal": {"kind": "code", "base_family": llm_family_name(SPACED)}})
    assert bandit.choose(fresh.model_copy(update={"history": [tuned]})) == "llm"  # then UCB as usual


def test_a_near_best_llm_module_with_a_space_is_tuned_now_and_then(families):
    best = experiment(5, reward=0.099, code_hash="spaced")
    ctx = make_context(families=families, best=[best], parent_reward=0.1)
    code_for = {"spaced": SPACED}.get
    search = SearchProposer(switch_probability=1.0, code_for=lambda e: code_for(e.code_hash))
    proposal = search.propose(ctx)
    assert proposal.kind is ProposalKind.CODE and proposal.family == llm_family_name(SPACED)
    far = ctx.model_copy(update={"best": [best.model_copy(update={"inner_reward": 0.05})]})
    assert search.propose(far).kind is not ProposalKind.CODE  # not near the parent: built-in policy
    assert SearchProposer(switch_probability=1.0).propose(ctx).kind is not ProposalKind.CODE  # no lookup


def test_a_new_module_keeps_the_parent_constants_its_space_declares(server, recorder, fast_retry):
    tuned = {"half_life": 42.0, "blend": "max", "gone": 1}
    changed = SPACED.replace("np.tile(self.pop, (len(users), 1))", "np.tile(np.sqrt(self.pop), (len(users), 1))")
    server.push(f"Square-root popularity.\n\n```python\n{changed}```\n")
    llm = LLMProposer(OpenAIClient(api_base=server.url, retry=fast_retry), model="local", recorder=recorder,
                      budget=LLMBudget(), ask_policy=lambda ctx: "improve", timeout=5.0)
    proposal = llm.propose(make_context(parent_family="custom", parent_code=SPACED, parent_params=tuned))
    assert proposal.params == {"half_life": 42.0, "blend": "max"}
    assert "a new module keeps those its SPACE declares" in server.requests[0].messages[-1]["content"]
