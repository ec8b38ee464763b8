"""``--model relay/DIR``: prompts are written to a folder and answers read from it."""
from __future__ import annotations

import json
import threading
import time

import pytest
from llm_fixtures import GOOD_MODULE, PARENT_CODE, make_context

from designer.llm.budget import LLMBudget
from designer.llm.backends import make_client
from designer.llm.errors import LLMTimeoutError
from designer.llm.proposer import LLMProposer
from designer.llm.relay_client import RelayClient
from designer.proposal import ProposalError


def answer_when_asked(folder, replies):
    """A stand-in for the person at the other end: answers each prompt file in turn."""
    def run():
        for number, reply in enumerate(replies, start=1):
            prompt = folder / f"{number:04d}-prompt.md"
            deadline = time.monotonic() + 10
            while not prompt.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            (folder / f"{number:04d}-answer.md").write_text(reply)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_relay_round_trip_through_the_proposer(tmp_path, recorder):
    folder = tmp_path / "relay"
    client = make_client(f"relay/{folder}")
    assert isinstance(client, RelayClient)
    client.poll = 0.02
    answer_when_asked(folder, ["Recency boost.\n\n```python\n" + GOOD_MODULE + "```\n"]).join(0)
    proposer = LLMProposer(client, model=f"relay/{folder}", recorder=recorder, budget=LLMBudget(),
                           ask_policy=lambda ctx: "improve", timeout=10.0)
    proposal = proposer.propose(make_context())
    assert proposal.code == GOOD_MODULE and proposal.model == f"relay/{folder}"
    prompt = (folder / "0001-prompt.md").read_text()
    assert prompt.startswith("### system\n") and PARENT_CODE.strip() in prompt
    assert [m["role"] for m in json.loads((folder / "0001-prompt.json").read_text())] == ["system", "user"]
    [call] = recorder.drafts
    assert call.model == f"relay/{folder}" and call.prompt_tokens > 0 and call.error is None


def test_numbers_continue_and_a_missing_answer_times_out_naming_the_file(tmp_path, recorder):
    (tmp_path / "0007-prompt.md").write_text("old")
    (tmp_path / "0007-answer.md").write_text("old answer")
    client = RelayClient(tmp_path, poll=0.01)
    with pytest.raises(LLMTimeoutError, match="0008-answer.md"):
        client.complete([{"role": "user", "content": "hi"}], model="relay/x", temperature=0, timeout=0.05)
    threading.Timer(0.1, lambda: (tmp_path / "0008-answer.md").write_text("hello")).start()
    again = client.complete([{"role": "user", "content": "hi"}], model="relay/x", temperature=0, timeout=1)
    assert again.text == "hello" and not (tmp_path / "0009-prompt.md").exists()  # the retry reused 0008
    proposer = LLMProposer(RelayClient(tmp_path, poll=0.01), model="relay/x", recorder=recorder,
                           budget=LLMBudget(), timeout=0.05, ask_policy=lambda ctx: "improve")
    with pytest.raises(ProposalError, match="no answer in .*0009-answer.md"):
        proposer.propose(make_context())
