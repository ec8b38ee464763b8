"""``evolve --proposer llm``: the real console script and openai client against a scripted
OpenAI-compatible server; one LLM budget over both phase kinds."""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.designer.llm.fake_llm_server import ScriptedLLMServer
from tests.integration.clirun import TINY, cli
from tests.integration.test_evolve import TAIL

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.integration]

SOLO = "name: x\nbranches:\n  - sources: [{agent: recommender, version: 1, quota: 50}]\n    ranker: {family: fusion}\n"


def answer(request) -> str:
    """A pipeline spec for a composition prompt (it lists the recall pool), else an agent
    module that recommends the least popular items (valid, never better: no promotion)."""
    n = len(request.text) % 50          # distinct specs, so none is refused as already evaluated
    if "# Recall pool" in request.text:
        return ("EASE fused with popularity.\n```yaml\nname: solo\nbranches:\n"
                f"  - sources: [{{family: ease, quota: 100}}, {{family: popularity, quota: {20 + n}}}]\n"
                "    ranker: {family: fusion, params: {method: rrf}}\n```\n")
    return f"The long tail.\n\n```python\n{TAIL}\n```\n"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_evolve_with_the_llm_proposer_spends_one_budget_over_both_phase_kinds(ws, tmp_path, workers):
    spec = tmp_path / "solo.yaml"
    spec.write_text(SOLO)
    cli(ws, "pipelines", "create", "solo", "--spec", str(spec))
    with ScriptedLLMServer(responder=answer) as server:
        result = cli(ws, "evolve", "--pipeline", "solo", "--proposer", "llm", "--model", "openai/x",
                     "--api-base", server.url, "--max-calls", "3", "--iterations", "20", "--patience", "1",
                     "--auto-approve", "--workers", workers, "--json", *TINY, timeout=900)
        requests = list(server.requests)
    summary = json.loads(result.stdout)
    # one budget for the whole run: three calls over the phases, then a clean stop (also when
    # a phase has two candidates in flight: the run does not go on to the next phase)
    assert len(requests) == 3, [r.text[:80] for r in requests]
    assert "--max-calls" in summary["stopped"], summary["stopped"]
    kinds = [p["kind"] for p in summary["phases"]]
    assert kinds[:2] == ["individual", "compositional"], summary["phases"]
    assert all(p["ended_because"] for p in summary["phases"]), summary["phases"]
    assert all("; 300 users, 200 items, " in r.text for r in requests)      # the data card, in both kinds
    db = sqlite3.connect(ws / "knowledge.db")
    calls = db.execute("select agent_name, session_id from llm_calls order by id").fetchall()
    runs = db.execute("select agent_name, session_id from experiments where proposer = 'llm' and stage in "
                      "('full', 'cheap')").fetchall()
    db.close()
    assert calls[0][0] == "recommender" and {c[0] for c in calls} == {"recommender", "solo"}, calls
    assert {c[1] for c in calls} <= {r[1] for r in runs}, (calls, runs)   # each call's proposal was run
