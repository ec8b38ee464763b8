"""The composition LLM proposer: the real openai client over HTTP to the scripted server,
the real design loop, knowledge base and agents repository, a fake executor."""
from __future__ import annotations

import pytest
from fake_llm_server import ScriptedLLMServer
from llm_fixtures import experiment

from designer.cli.llm_wiring import StoreRecorder
from designer.llm.budget import LLMBudget
from designer.llm.errors import BudgetExhaustedError
from designer.llm.openai_client import OpenAIClient
from designer.loop import DesignLoop
from designer.pipelines.defaults import CONTRACT, create_pipeline, default_spec
from designer.pipelines.pool import recall_pool
from designer.pipelines.spec import PipelineSpec
from designer.proposal import Candidate, ProposalError, ProposalKind
from designer.proposers.compose_llm import CompositionLLMProposer
from designer.proposers.compose_search import CompositionSearchProposer
from designer.proposers.mixed import MixedProposer
from designer.subjects import PipelineSubject
from knowledge_base.models import Agent, FailureKind, PromotionState
from tests.designer.conftest import FakeExecutor

EASE_FUSED = """name: default
branches:
  - sources:
      - {family: ease, params: {l2: 300.0}, quota: 100}
      - {family: itemknn, quota: 50}
    ranker: {family: fusion, params: {method: borda}}
"""
ROUTED = """name: default
router: {family: activity_router, params: {threshold: 10}}
branches:
  - sources: [{family: popularity, quota: 100}]
    ranker: {family: fusion}
  - sources: [{family: ease, quota: 100}, {family: itemknn, quota: 100}]
    ranker: {family: mlp_ranker, params: {hidden: 16}}
    reranker: {family: mmr, params: {relevance_weight: 0.9}}
"""


def answer(yaml_text: str, why: str = "EASE recalls better than the popularity prior; Borda fuses it.") -> str:
    return f"{why}\n\n```yaml\n{yaml_text}```\n"


def by_spec(job) -> float:
    """Better pipelines score more: EASE helps, the router helps a little more."""
    return 0.10 + 0.05 * ("ease" in job.code) + 0.01 * ("router" in job.code)


@pytest.fixture()
def pipeline(store, releaser, families) -> PipelineSubject:
    """Pipeline ``default`` (v1: the recommender's champion and item-kNN fused by RRF)."""
    create_pipeline(store, releaser, default_spec(store))
    return PipelineSubject(store=store, repo=releaser.repo, families=families)


def llm_proposer(server, store, subject, fast_retry, *, budget=None, **kw):
    client = OpenAIClient(api_base=server.url, retry=fast_retry)
    pool = recall_pool(store, subject.families, FakeExecutor.dataset_key)
    return CompositionLLMProposer(client, model="openai/scripted", recorder=StoreRecorder(store),
                                  budget=budget or LLMBudget(), pool=pool, families=subject.families,
                                  subject=subject, session_id="sess-c", timeout=5.0, **kw)


def compose_loop(store, releaser, settings, workspace, subject, proposer):
    return DesignLoop(store=store, proposer=proposer, executor=FakeExecutor(by_spec), releaser=releaser,
                      families=subject.families, agent_name="default", settings=settings, workspace=workspace,
                      auto_approve=True, subject=subject, session_id="sess-c")


def test_a_valid_spec_is_evaluated_and_its_experiments_record_the_llm(
        server, store, releaser, settings, workspace, pipeline, fast_retry):
    server.push(answer(EASE_FUSED))
    proposer = llm_proposer(server, store, pipeline, fast_retry)
    summary = compose_loop(store, releaser, settings, workspace, pipeline, proposer).run(iterations=1)
    assert summary.evaluated or summary.promoted, summary
    mine = [e for e in store.list_experiments(agent_name="default", limit=100) if e.proposer == "llm"]
    assert {e.stage for e in mine} >= {"cheap", "full"}
    full = next(e for e in mine if e.stage == "full")
    assert full.family == "pipeline" and full.proposal["model"] == "openai/scripted"
    assert full.proposal["rationale"].startswith("EASE recalls better")
    assert full.params["branches"][0]["sources"][0]["family"] == "ease"      # the spec as evaluated
    assert full.promotion is PromotionState.APPROVED
    assert store.champion("default").number == 2
    [call] = store.list_llm_calls(agent_name="default")
    assert call.purpose == "propose" and call.session_id == "sess-c" and call.error is None
    assert call.prompt_tokens > 0 and call.completion_tokens > 0
    # the prompt: contract from its one source, the champion's YAML, the pool, the families
    prompt = server.requests[0].text
    assert CONTRACT in prompt and "```yaml\nname: default" in prompt and "window_share" in prompt
    assert "- family:itemknn: {family: itemknn, params: {" in prompt
    assert "## ranker" in prompt and "- mlp_ranker: " in prompt and "hidden: int in [" in prompt
    assert "## router" in prompt and "- activity_router: Routes users by activity" in prompt
    assert "## reranker" in prompt and "relevance_weight: float in [0, 1], default 0.9" in prompt


@pytest.mark.parametrize("bad, says", [
    ("Use EASE.\n```yaml\nbranches: [\n  - sources\n```\n", "is not valid YAML at line"),
    (answer(EASE_FUSED.replace("quota: 100", "quota: 900")), "quota 900 > depth 200"),
    (answer(EASE_FUSED.replace("itemknn", "nosuchknn")), "unknown recall family 'nosuchknn'"),
    (answer(EASE_FUSED.replace("l2: 300.0", "lambda: 3")), "unknown parameter 'lambda'"),
    ("I would add EASE to the sources, fused by Borda count.", "No ```yaml block found"),
], ids=["malformed-yaml", "invalid-spec", "unknown-family", "unknown-param", "no-yaml-block"])
def test_an_unusable_answer_is_reasked_once_with_the_exact_error(
        server, store, pipeline, fast_retry, bad, says):
    server.push(bad, answer(EASE_FUSED))
    context = context_of(store, pipeline)
    proposal = llm_proposer(server, store, pipeline, fast_retry).propose(context)
    assert (proposal.proposer, proposal.kind, proposal.family, proposal.params) == (
        "llm", ProposalKind.PARAMS, "pipeline", {})
    assert "family: ease" in proposal.code and proposal.meta["answers"] == 2
    assert len(server.requests) == 2
    *_, replayed, reask = server.requests[1].messages
    assert replayed == {"role": "assistant", "content": bad}
    assert reask["role"] == "user" and says in reask["content"]
    calls = list(reversed(store.list_llm_calls(agent_name="default")))
    assert [c.purpose for c in calls] == ["propose", "reask"]
    assert "answer rejected" in calls[0].error and says in calls[0].error and calls[1].error is None


def test_the_champion_unchanged_or_an_evaluated_spec_is_reasked(server, store, pipeline, fast_retry):
    context = context_of(store, pipeline)
    server.push(answer(context.parent_code, "Keep it."), answer(EASE_FUSED))
    proposal = llm_proposer(server, store, pipeline, fast_retry).propose(context)
    assert "family: ease" in proposal.code
    assert "the champion pipeline unchanged" in server.requests[1].messages[-1]["content"]
    spec = PipelineSpec.from_yaml(EASE_FUSED)
    seen = Candidate(proposal=proposal, code=spec.to_yaml(), params=spec.to_dict()).content_hash
    ran = experiment(9, reward=0.1234).model_copy(update={"agent_name": "default", "code_hash": seen,
                                                          "params": spec.to_dict()})
    server.push(answer(EASE_FUSED), answer(ROUTED))
    proposal = llm_proposer(server, store, pipeline, fast_retry).propose(context.model_copy(update={"history": [ran]}))
    assert "activity_router" in proposal.code
    assert "already evaluated (experiment #9, val ndcg@10 0.1234)" in server.requests[3].messages[-1]["content"]


def test_the_name_and_the_outer_reward_stay_the_champions(server, store, pipeline, fast_retry):
    loose = EASE_FUSED.replace("name: default", "name: mine") + (
        "outer_reward: {objective: coverage@10, constraints: []}\n")
    server.push(answer(loose))
    proposal = llm_proposer(server, store, pipeline, fast_retry).propose(context_of(store, pipeline))
    assert proposal.code.startswith("name: default") and "objective: ndcg@10" in proposal.code
    assert proposal.meta["kept_from_champion"] == ["name", "outer_reward"]


def test_garbage_twice_is_a_proposal_failure_and_the_session_goes_on(
        server, store, releaser, settings, workspace, pipeline, fast_retry):
    server.push("I cannot help with that.", "```yaml\n: : :\n```", answer(EASE_FUSED))
    proposer = llm_proposer(server, store, pipeline, fast_retry)
    summary = compose_loop(store, releaser, settings, workspace, pipeline, proposer).run(iterations=2)
    assert summary.iterations == 2 and len(server.requests) == 3
    [failure] = [f for f in store.list_failures(agent_name="default") if f.kind is FailureKind.PROPOSAL]
    assert "no usable pipeline spec in 2 answers" in failure.message and "not valid YAML" in failure.message
    assert any(e.proposer == "llm" and e.stage == "full" for e in store.list_experiments(agent_name="default"))
    # the next prompt shows the failure
    assert "PROPOSAL: the LLM gave no usable pipeline spec" in server.requests[2].text


def test_a_spent_budget_stops_the_session_cleanly(server, store, releaser, settings, workspace, pipeline,
                                                  fast_retry):
    server.push(answer(EASE_FUSED))
    proposer = llm_proposer(server, store, pipeline, fast_retry, budget=LLMBudget(max_calls=1))
    summary = compose_loop(store, releaser, settings, workspace, pipeline, proposer).run(iterations=3)
    assert "budget" in (summary.stopped_reason or "") and len(server.requests) == 1
    with pytest.raises(BudgetExhaustedError):
        proposer.propose(context_of(store, pipeline))


def test_a_dead_call_fails_the_proposal_not_the_session(store, pipeline, fast_retry):
    with ScriptedLLMServer() as server:
        server.push(500, 500, 500)
        with pytest.raises(ProposalError, match="the LLM call failed"):
            llm_proposer(server, store, pipeline, fast_retry).propose(context_of(store, pipeline))


def test_mixed_alternates_the_llm_and_the_search(server, store, releaser, settings, workspace, pipeline,
                                                 fast_retry):
    server.push(answer(ROUTED, "Route cold users to popularity and heavy users to a learned ranker."))
    llm = llm_proposer(server, store, pipeline, fast_retry)
    mixed = MixedProposer(llm, CompositionSearchProposer(llm.pool, seed=0))
    compose_loop(store, releaser, settings, workspace, pipeline, mixed).run(iterations=2)
    proposers = [e.proposer for e in store.list_experiments(agent_name="default", stage="cheap", limit=100)]
    assert sorted(proposers) == ["llm", "search"] and len(server.requests) == 1


def test_the_history_shows_components_segments_slack_and_infeasible_reasons(server, store, pipeline, fast_retry):
    spec = {"name": "default", "outer_reward": {"objective": "ndcg@10",
                                                "constraints": [{"metric": "latency_ms_per_user", "max": 5.0}]},
            "branches": [{"sources": [{"family": "ease", "params": {}, "quota": 100},
                                      {"family": "itemknn", "params": {}, "quota": 50}],
                          "ranker": {"family": "logistic_ranker", "params": {}}}]}
    metrics = {"ndcg@10": 0.2, "latency_ms_per_user": 7.5, "inner/src0/recall@100": 0.41,
               "inner/src1/recall@50": 0.33, "inner/b0-ranker/ndcg@10": 0.21}
    segments = {"cold": {"ndcg@10": 0.05, "n_users": 40}, "heavy": {"ndcg@10": 0.3, "n_users": 60},
                "tail": {"exposure@10": 0.02}}
    bad = experiment(5, reward=0.2, rationale="A learned ranker on EASE and kNN.", metrics=metrics).model_copy(
        update={"agent_name": "default", "family": "pipeline", "params": spec, "segments": segments,
                "promotion": PromotionState.INFEASIBLE, "evidence": {"infeasible": [
                    {"reason": "latency_ms_per_user = 7.5 breaks latency_ms_per_user <= 5 by 2.5"}]}})
    context = context_of(store, pipeline).model_copy(update={"history": [bad]})
    server.push(answer(EASE_FUSED))
    llm_proposer(server, store, pipeline, fast_retry).propose(context)
    [line] = [x for x in server.requests[0].text.splitlines() if x.startswith("- #5 ")]
    assert "[llm] ease@100 + itemknn@50 -> logistic_ranker" in line
    assert "val ndcg@10 0.2000" in line
    assert "src0=ease recall@100 0.4100" in line and "src1=itemknn recall@50 0.3300" in line
    assert "b0-ranker=logistic_ranker ndcg@10 0.2100" in line
    assert "cold (40 users) ndcg@10 0.0500" in line and "tail exposure@10 0.0200" in line
    assert "latency_ms_per_user <= 5 slack -2.5" in line
    assert "idea: A learned ranker on EASE and kNN." in line
    assert "INFEASIBLE (never promoted): latency_ms_per_user = 7.5 breaks" in line


def context_of(store, subject):
    """The context the loop gives a proposer for pipeline ``default`` (v1 the champion)."""
    from designer.context import build_context
    agent: Agent = store.get_agent("default")
    version = store.champion("default")
    code = subject.repo.read_version("default", version.number).code
    return build_context(store, agent=agent, parent=version, parent_code=code, parent_reward=None,
                         families=subject.families, dataset_key=FakeExecutor.dataset_key,
                         time_limit_seconds=60.0, memory_limit_mb=2048, iteration=1)

