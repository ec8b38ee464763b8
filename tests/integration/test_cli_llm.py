"""``design --proposer llm`` end to end: real openai client over HTTP to a scripted server."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from designer.families import load_families
from tests.designer.llm.fake_llm_server import ScriptedLLMServer
from tests.integration.clirun import BIN, TINY, cli

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.integration]


def fenced(code: str, note: str = "Here is the module.") -> str:
    return f"{note}\n\n```python\n{code}\n```\n"


def ease_module(l2: float) -> str:
    family = load_families()["ease"]
    return family.render(family.validate({"l2": l2}))


HOSTILE = '''import socket
import numpy as np

class Agent:
    def __init__(self, **params):
        pass
    def fit(self, train):
        socket.create_connection(("127.0.0.1", 80))
    def recommend(self, users, k):
        return np.zeros((len(users), k), dtype=np.int64)
'''

SNOOPING = '''import numpy as np

class Agent:
    def __init__(self, **params):
        pass
    def fit(self, train):
        self.secret = np.loadtxt("/etc/shadow", dtype=str)
    def recommend(self, users, k):
        return np.zeros((len(users), k), dtype=np.int64)
'''


REASK = "Your previous answer could not be used"


def reask_of(request) -> tuple[str, str]:
    """(the assistant answer being replayed, the user's re-ask) that end ``request``."""
    *_, answer, reask = request.messages
    assert answer["role"] == "assistant" and reask["role"] == "user" and reask["content"].startswith(REASK)
    return answer["content"], reask["content"]


def test_llm_design_reasks_contains_promotes_records_and_stops_at_budget(tmp_path):
    ws = tmp_path / "ws"
    cli(ws, "init")
    with ScriptedLLMServer() as server:
        server.push(
            "I would switch to a linear item-item model; it should do better.",   # no code: re-asked
            fenced(ease_module(300.0), "EASE with l2=300 should beat popularity."),  # evaluated, promoted
            fenced(HOSTILE),                                                     # static check: re-asked
            fenced(SNOOPING, "Read extra data."),                                # passes checks, fails in sandbox
            fenced(ease_module(80.0), "Less regularisation."),                   # debug answer
        )
        env = {k: v for k, v in os.environ.items() if k != "AGENTICRS_DB"}
        env |= {"NO_COLOR": "1", "OPENAI_API_KEY": "sk-test-never-stored-123456"}
        result = subprocess.run(
            [str(BIN), "--workspace", str(ws), "design", "--agent", "recommender", "--proposer", "llm",
             "--model", "openai/scripted", "--api-base", server.url, "--iterations", "10", "--max-calls", "5",
             "--prices", "1.0,2.0", "--auto-approve", "--json", *TINY],
            capture_output=True, text=True, timeout=900, env=env)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert "budget" in summary["stopped"]
        assert len(server.requests) == 5
        first, no_code, _, hostile, _ = server.requests
        assert [m["role"] for m in first.messages] == ["system", "user"]
        assert "; 300 users, 200 items, " in first.text                        # the data card
        assert "train interactions per user:" in first.text
        assert not any(REASK in m["content"] for m in first.messages)
        # a re-ask replays the unusable answer and says what was wrong with it
        assert reask_of(no_code)[0] == "I would switch to a linear item-item model; it should do better."
        assert "No code found in the answer" in reask_of(no_code)[1]
        assert "import of 'socket' is not allowed" in reask_of(hostile)[1]
        assert "import of 'socket'" not in first.text and "No code found" not in first.text
    assert summary["approved_versions"], summary

    db = sqlite3.connect(ws / "knowledge.db")
    calls = db.execute("select model, prompt_tokens, completion_tokens, cost_usd, prompt, response, error "
                       "from llm_calls").fetchall()
    assert len(calls) == 5
    assert all(c[0] == "openai/scripted" and c[1] > 0 and c[2] > 0 and c[3] > 0 for c in calls)
    assert not any("sk-test-never-stored" in (c[4] + c[5] + (c[6] or "")) for c in calls)
    statuses = dict(db.execute("select status, count(*) from experiments group by status").fetchall())
    assert statuses.get("FAILED", 0) >= 1                          # the snooping module, contained
    failure = db.execute("select message, traceback_tail from failures where kind != 'PROPOSAL'").fetchone()
    assert "shadow" in (failure[0] + failure[1])

    versions = json.loads(cli(ws, "agents", "versions", "recommender", "--json").stdout)
    llm_version = versions[-1]  # one of the two EASE modules, whichever the promotion rules kept
    exp = json.loads(cli(ws, "history", "show", str(llm_version["experiment_id"]), "--json").stdout)
    rationale = exp["proposal"]["rationale"]
    assert rationale in ("EASE with l2=300 should beat popularity.", "Less regularisation.")
    shown = cli(ws, "review", "show", str(llm_version["experiment_id"])).stdout
    assert "openai/scripted" in shown and rationale in shown and "+++" in shown


def test_a_dead_endpoint_is_one_clear_error(tmp_path):
    ws = tmp_path / "ws"
    cli(ws, "init")
    result = cli(ws, "design", "--agent", "recommender", "--proposer", "llm", "--model", "openai/x",
                 "--api-base", "http://127.0.0.1:9/v1", "--iterations", "1", *TINY, check=False)
    assert result.returncode == 1
    assert "cannot reach the LLM" in result.stderr and "Traceback" not in result.stderr
