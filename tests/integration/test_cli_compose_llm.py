"""``compose --proposer llm`` end to end: the real console script, openai client, sandbox and
a scripted OpenAI-compatible server."""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.designer.llm.fake_llm_server import ScriptedLLMServer
from tests.integration.clirun import TINY, cli

PINNED_AND_EASE = """name: default
branches:
  - sources: [{family: ease, params: {l2: 300.0}, quota: 100}, {agent: recommender, version: 1, quota: 50}]
    ranker: {family: fusion, params: {method: borda, w1: 0.5}}
"""
POP_EASE = """name: default
branches:
  - sources: [{family: ease, quota: 100}, {family: popularity, quota: 50}]
    ranker: {family: fusion, params: {method: rrf, w1: 0.3}}
"""


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(900)
def test_compose_with_the_llm_proposer_evaluates_its_specs_and_logs_its_calls(ws):
    with ScriptedLLMServer() as server:
        server.push(f"EASE as the main source, fused by Borda.\n```yaml\n{PINNED_AND_EASE}```\n",
                    f"Add the popularity prior for cold users.\n```yaml\n{POP_EASE}```\n")
        result = cli(ws, "compose", "--proposer", "llm", "--model", "openai/x", "--api-base", server.url,
                     "--iterations", "2", *TINY, timeout=900)
        assert result.returncode == 0
        assert len(server.requests) == 2 and server.pending == 0
        first, second = server.requests
    assert "; 300 users, 200 items, " in first.text                     # the data card
    assert "- family:ease: {family: ease, params: {" in first.text        # the recall pool
    assert "idea: EASE as the main source, fused by Borda." in second.text  # the history
    db = sqlite3.connect(ws / "knowledge.db")
    runs = db.execute("select status, code_hash, session_id, proposal from experiments "
                      "where proposer = 'llm' and stage = 'full'").fetchall()
    calls = db.execute("select agent_name, session_id, model, purpose, error from llm_calls").fetchall()
    db.close()
    assert {r[0] for r in runs} == {"COMPLETED"} and len({r[1] for r in runs}) == 2, runs
    assert {json.loads(r[3])["model"] for r in runs} == {"openai/x"}
    assert [c[:1] + c[2:] for c in calls] == [("default", "openai/x", "propose", None)] * 2
    assert {c[1] for c in calls} == {r[2] for r in runs}


@pytest.mark.integration
def test_compose_with_the_llm_proposer_needs_a_model(ws):
    result = cli(ws, "compose", "--proposer", "mixed", "--iterations", "1", check=False)
    assert result.returncode != 0 and "--proposer mixed needs --model" in result.stderr
    assert "Traceback" not in result.stderr
