"""Several candidates per call: each module of one answer is checked and proposed in turn."""
from __future__ import annotations

from fake_llm_server import Reply
from llm_fixtures import GOOD_MODULE, PARENT_CODE, make_context

from designer.llm.budget import LLMBudget
from designer.llm.openai_client import OpenAIClient
from designer.llm.proposer import LLMProposer

OTHER = GOOD_MODULE.replace("np.tile(self.pop, (len(users), 1))", "np.tile(np.sqrt(self.pop) + 1.0, (len(users), 1))")
RENAMED = GOOD_MODULE.replace("recent", "fresh")
HOSTILE = "import socket\n" + OTHER.replace("np.sqrt", "np.log1p")


def answer(*modules: str) -> str:
    return "\n\n".join(f"Idea {i}: try this.\n\n```python\n{m}```" for i, m in enumerate(modules, 1))


def proposer(server, recorder, fast_retry, n=3):
    client = OpenAIClient(api_base=server.url, retry=fast_retry, prices=(1_000_000.0, 0.0))  # $1 per token in
    return LLMProposer(client, model="local", recorder=recorder,
                       budget=LLMBudget(), ask_policy=lambda ctx: "improve", timeout=5.0, candidates_per_call=n)


def test_one_call_yields_every_usable_module_in_turn(server, recorder, fast_retry):
    server.push(Reply(content=answer(GOOD_MODULE, HOSTILE, OTHER, RENAMED), prompt_tokens=10))
    p = proposer(server, recorder, fast_retry)
    first, second = p.propose(make_context()), p.propose(make_context())
    assert (first.code, second.code) == (GOOD_MODULE, OTHER) and len(server.requests) == 1
    assert "Propose 3 substantially different modules" in server.requests[0].messages[-1]["content"]
    assert first.rationale.startswith("Idea 1") and second.rationale.startswith("Idea 3")
    assert first.meta["candidates_in_call"] == 2 and second.meta["candidate_index"] == 1
    assert first.meta["cost_usd_share"] == second.meta["cost_usd_share"] == 5.0  # $10 call, 2 modules
    assert recorder.drafts[0].cost_usd == 10.0
    server.push(answer(RENAMED.replace("0.8", "0.5")))
    p.propose(make_context())
    assert len(server.requests) == 2  # the queue was empty: a new call


def test_near_duplicate_siblings_and_stale_queues_are_dropped(server, recorder, fast_retry):
    server.push(answer(GOOD_MODULE, RENAMED, OTHER), answer(OTHER.replace("1.0,", "2.0,")))
    p = proposer(server, recorder, fast_retry)
    assert p.propose(make_context()).code == GOOD_MODULE
    other_parent = make_context(parent_code=PARENT_CODE.replace("Most popular", "Popular"))
    assert p.propose(other_parent).code == OTHER.replace("1.0,", "2.0,")  # OTHER was for the old parent
    assert len(server.requests) == 2


def test_one_candidate_per_call_keeps_the_single_module_prompt(server, recorder, fast_retry):
    server.push(Reply(content=answer(GOOD_MODULE, OTHER)))
    p = proposer(server, recorder, fast_retry, n=1)
    assert p.propose(make_context()).code == OTHER  # the last complete module wins, as before
    assert "in one ```python block" in server.requests[0].messages[-1]["content"]
