"""LLMProposer end to end over HTTP with the real client libraries and the scripted server."""
from __future__ import annotations

import json

import pytest
from llm_fixtures import GOOD_MODULE, PARENT_CODE, experiment, failure, make_context
from fake_llm_server import Reply, free_port

from designer.llm.budget import LLMBudget
from designer.llm.errors import BudgetExhaustedError, LLMUnavailableError
from designer.llm.insights import summarise
from designer.llm.litellm_client import LiteLLMClient
from designer.llm.openai_client import OpenAIClient
from designer.llm.proposer import LLMProposer
from designer.proposal import ProposalError, ProposalKind

KEY = "sk-test-abcdefghijklmnopSECRET42"


def proposer(server, recorder, fast_retry, *, budget=None, client=None, model="local-model", **kw):
    client = client or OpenAIClient(api_base=server.url, retry=fast_retry)
    kw.setdefault("ask_policy", lambda ctx: "improve")
    return LLMProposer(client, model=model, recorder=recorder, budget=budget or LLMBudget(),
                       session_id="sess-1", timeout=5.0, **kw)


def md(code: str, why: str = "Popularity with a recency boost; tastes drift.") -> str:
    return f"{why}\n\n```python\n{code}```\n"


@pytest.mark.parametrize("backend", ["openai-sdk", "litellm"])
def test_plain_markdown_module_is_accepted_as_is(server, recorder, fast_retry, backend):
    client = (OpenAIClient(api_base=server.url, retry=fast_retry) if backend == "openai-sdk"
              else LiteLLMClient(api_base=server.url, retry=fast_retry))
    server.push(md(GOOD_MODULE))
    p = proposer(server, recorder, fast_retry, client=client, model="openai/local-model")
    proposal = p.propose(make_context())
    assert proposal.code == GOOD_MODULE and proposal.kind is ProposalKind.CODE
    assert (proposal.proposer, proposal.model, proposal.ask, proposal.family, proposal.params) == (
        "llm", "openai/local-model", "improve", "popularity", {})
    assert "recency boost" in proposal.rationale
    [call] = recorder.drafts
    assert call.purpose == "propose" and call.error is None and call.session_id == "sess-1"
    assert call.prompt_tokens > 0 and call.completion_tokens > 0 and call.latency_seconds > 0
    assert PARENT_CODE.strip() in call.prompt and call.response == md(GOOD_MODULE)


def test_search_replace_edits_are_applied_to_the_parent(server, recorder, fast_retry):
    line = "        self.pop = np.asarray(self.seen.sum(axis=0)).ravel()\n"
    server.push(f"Dampen popularity.\n<<<<<<< SEARCH\n{line}=======\n{line[:-1]} ** 0.5\n>>>>>>> REPLACE\n")
    proposal = proposer(server, recorder, fast_retry).propose(make_context())
    assert proposal.code == PARENT_CODE.replace(line, line[:-1] + " ** 0.5\n")
    assert proposal.meta["answer_form"] == "edits"


def test_json_form_requests_a_schema(server, recorder, fast_retry):
    server.push(json.dumps({"rationale": "json idea", "code": GOOD_MODULE}))
    proposal = proposer(server, recorder, fast_retry, answer_format="json").propose(make_context())
    assert proposal.code == GOOD_MODULE and proposal.rationale == "json idea"
    assert server.requests[0].body["response_format"]["type"] == "json_schema"


def test_malformed_answer_is_reasked_with_the_parse_error(server, recorder, fast_retry):
    server.push("I would use a two-tower model with in-batch negatives.", md(GOOD_MODULE))
    proposal = proposer(server, recorder, fast_retry).propose(make_context())
    assert proposal.code == GOOD_MODULE and proposal.meta["answers"] == 2
    second = server.requests[1]
    assert "No code found in the answer" in second.messages[-1]["content"]
    assert second.messages[-2] == {"role": "assistant",
                                   "content": "I would use a two-tower model with in-batch negatives."}
    assert [d.purpose for d in recorder.drafts] == ["propose", "reask"]
    assert "answer rejected: No code found" in recorder.drafts[0].error and recorder.drafts[1].error is None


def test_hostile_code_is_rejected_and_reasked(server, recorder, fast_retry):
    hostile = "import subprocess\nimport socket\n" + GOOD_MODULE
    server.push(md(hostile), md(GOOD_MODULE))
    proposal = proposer(server, recorder, fast_retry).propose(make_context())
    assert proposal.code == GOOD_MODULE
    feedback = server.requests[1].messages[-1]["content"]
    assert "import of 'subprocess' is not allowed" in feedback and "'socket'" in feedback


def test_still_failing_after_reasks_is_a_proposal_error(server, recorder, fast_retry):
    hostile = md("import os\n" + GOOD_MODULE)
    server.push(hostile, hostile, hostile)
    with pytest.raises(ProposalError, match=r"(?s)no usable module in 3 answers.*import of 'os'"):
        proposer(server, recorder, fast_retry, max_reasks=2).propose(make_context())
    assert len(recorder.drafts) == 3 and all(d.error for d in recorder.drafts)


def test_buggy_candidate_then_debug_fix(server, recorder, fast_retry):
    buggy = "class Agent:\n    def __init__(self, **p): pass\n    def fit(self, train): 1/0\n" \
            "    def recommend(self, users, k): pass\n"
    ctx = make_context(history=[experiment(7, status="FAILED")],
                       failures=[failure(1, 7, message="ZeroDivisionError: division by zero",
                                         tb='File "candidate.py", line 3, in fit\nZeroDivisionError')])
    server.push("Remove the division.\n<<<<<<< SEARCH\n    def fit(self, train): 1/0\n=======\n"
                "    def fit(self, train): self.n = train.n_items\n>>>>>>> REPLACE")
    p = proposer(server, recorder, fast_retry, ask_policy=None, code_for=lambda e: buggy)
    proposal = p.propose(ctx)
    assert proposal.ask == "debug" and "self.n = train.n_items" in proposal.code
    assert "DEBUG" in server.requests[0].text and 'line 3, in fit' in server.requests[0].text


def test_429_then_success_through_the_proposer(server, recorder, fast_retry):
    server.push(429, md(GOOD_MODULE))
    assert proposer(server, recorder, fast_retry).propose(make_context()).code == GOOD_MODULE
    assert len(recorder.drafts) == 1 and len(server.requests) == 2  # retries are inside one call


def test_timeouts_fail_the_iteration_not_the_run(server, recorder):
    from designer.llm.client import RetryPolicy
    server.push(Reply(content="late", delay=1.0), Reply(content="late", delay=1.0))
    client = OpenAIClient(api_base=server.url, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    p = LLMProposer(client, model="m", recorder=recorder, budget=LLMBudget(), timeout=0.3,
                    ask_policy=lambda c: "improve")
    with pytest.raises(ProposalError, match="did not answer within 0.3s"):
        p.propose(make_context())
    assert "LLMTimeoutError" in recorder.drafts[0].error


def test_dead_endpoint_stops_with_one_clear_error(recorder, fast_retry):
    client = OpenAIClient(api_base=f"http://127.0.0.1:{free_port()}/v1", retry=fast_retry)
    p = LLMProposer(client, model="m", recorder=recorder, budget=LLMBudget())
    with pytest.raises(LLMUnavailableError, match="start the server or fix --api-base"):
        p.propose(make_context())
    assert len(recorder.drafts) == 1 and "cannot reach the LLM" in recorder.drafts[0].error


def test_call_budget_stops_cleanly_before_the_call(server, recorder, fast_retry):
    budget = LLMBudget(max_calls=1)
    server.push("no code here", md(GOOD_MODULE))
    with pytest.raises(BudgetExhaustedError, match="raise --max-calls"):
        proposer(server, recorder, fast_retry, budget=budget).propose(make_context())
    assert budget.calls == 1 and len(server.requests) == 1 and len(recorder.drafts) == 1


def test_usd_budget_counts_cost_of_every_call(server, recorder, fast_retry):
    client = OpenAIClient(api_base=server.url, retry=fast_retry, prices=(1000.0, 1000.0))
    budget = LLMBudget(max_usd=0.5)
    server.push(md(GOOD_MODULE), md(GOOD_MODULE))
    p = proposer(server, recorder, fast_retry, budget=budget, client=client)
    p.propose(make_context())
    assert budget.spent_usd == pytest.approx(recorder.drafts[0].cost_usd) and budget.spent_usd > 0.5
    with pytest.raises(BudgetExhaustedError, match="raise --budget-usd"):
        p.propose(make_context())
    assert len(server.requests) == 1


def test_keys_never_reach_the_records(server, recorder, fast_retry, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    ctx = make_context(parent_code=PARENT_CODE + f"# leaked {KEY}\n")
    server.push(md(GOOD_MODULE + f"# echo {KEY}\n"), Reply(status=401, error_message=f"bad key {KEY}"))
    p = proposer(server, recorder, fast_retry)
    p.propose(ctx)
    with pytest.raises(Exception):
        p.propose(ctx)
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    blob = " ".join(f"{d.prompt} {d.response} {d.error}" for d in recorder.drafts)
    assert KEY not in blob and "[REDACTED]" in blob and len(recorder.drafts) == 2


def test_insight_summary_is_recorded(server, recorder, fast_retry):
    ctx = make_context(history=[experiment(1, reward=0.1, rationale="item-kNN"),
                                experiment(2, status="TIMED_OUT", reward=None, rationale="big MLP")],
                       failures=[failure(1, 2, message="timed out after 60 s")])
    server.push("  - item-kNN works; the big MLP timed out.  ")
    text = summarise(OpenAIClient(api_base=server.url, retry=fast_retry), "m", ctx, recorder,
                     LLMBudget(), session_id="s")
    assert text == "- item-kNN works; the big MLP timed out."
    prompt = server.requests[0].text
    assert "item-kNN" in prompt and "timed out after 60 s" in prompt
    assert prompt.index("item-kNN") < prompt.index("big MLP")  # oldest first
    assert recorder.drafts[0].purpose == "insight"
