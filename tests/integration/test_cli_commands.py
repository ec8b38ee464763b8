"""User-facing commands that had no test: agents show/rollback, review reject, history diff
(issue 13 item 13). The candidates are recorded through the store, as `design` would; the
commands under test run through the real console script."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from designer.families import load_families
from designer.release import Releaser
from designer.versions import AgentRepository
from knowledge_base.models import ExperimentDraft, ExperimentResult, ExperimentStatus, PromotionState
from knowledge_base.store import Store
from tests.designer.llm.fake_llm_server import ScriptedLLMServer
from tests.integration.clirun import BIN, TINY, cli

REASON = "EASE at l2=7 overfits the heavy users; try a stronger prior"


def ease_code(l2: float) -> str:
    family = load_families()["ease"]
    return family.render(family.validate({"l2": l2}))


def record_candidate(ws: Path, l2: float, ndcg: float, promotion=PromotionState.PENDING_REVIEW) -> int:
    """An EASE experiment compared with the current champion, as `design` records it."""
    with Store.open(f"sqlite:///{ws / 'knowledge.db'}") as store:
        code = ease_code(l2)
        store.put_code(f"ease-{l2}", code)
        exp = store.start_experiment(ExperimentDraft(
            agent_name="recommender", session_id="t", proposer="search", family="ease", params={"l2": l2},
            code_hash=f"ease-{l2}", dataset_key="synthetic/user_temporal/x", stage="full",
            parent_version_id=store.champion("recommender").id))
        store.finish_experiment(exp.id, ExperimentResult(
            status=ExperimentStatus.COMPLETED, inner_reward=ndcg, metrics={"ndcg@10": ndcg, "recall@10": ndcg * 2}))
        store.set_promotion(exp.id, promotion, 1e-6, 0.05)
        return exp.id


def approve(ws: Path, experiment_id: int) -> None:
    with Store.open(f"sqlite:///{ws / 'knowledge.db'}") as store:
        Releaser(store, AgentRepository(ws / "agents")).approve(experiment_id, reviewer="test")


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws / "agents", capture_output=True, text=True, check=True).stdout.strip()


def test_agents_show_prints_description_contract_params_and_champion(ws):
    data = json.loads(cli(ws, "agents", "show", "recommender", "--json").stdout)
    assert data["champion"] == "recommender/v1" and data["versions"] == 1
    assert "recommend" in data["interface"] and data["parameter_space"]
    text = cli(ws, "agents", "show", "recommender").stdout
    assert "recommender/v1" in text and "contract:" in text and "params:" in text
    assert data["description"].splitlines()[0] in text
    missing = cli(ws, "agents", "show", "nope", check=False)
    assert missing.returncode == 1 and "nope" in missing.stderr and "Traceback" not in missing.stderr


def test_agents_rollback_makes_the_old_code_champion_as_a_new_version(ws):
    approve(ws, record_candidate(ws, 7.0, 0.3))
    v1_code = git(ws, "show", "recommender/v1:recommender/agent.py")
    assert git(ws, "show", "recommender/champion:recommender/agent.py") != v1_code

    result = cli(ws, "agents", "rollback", "recommender", "v1")
    assert "recommender/v3 is now the champion" in result.stderr
    versions = json.loads(cli(ws, "agents", "versions", "recommender", "--json").stdout)
    assert [(v["tag"], v["champion"]) for v in versions] == [
        ("recommender/v1", False), ("recommender/v2", False), ("recommender/v3", True)]
    assert versions[2]["family"] == versions[0]["family"] and versions[2]["params"] == versions[0]["params"]
    assert git(ws, "show", "recommender/champion:recommender/agent.py") == v1_code
    assert git(ws, "rev-parse", "recommender/champion^{commit}") == git(ws, "rev-parse", "recommender/v3^{commit}")
    assert "roll back to v1" in git(ws, "log", "-1", "--format=%s", "recommender/v3")
    assert json.loads(cli(ws, "agents", "show", "recommender", "--json").stdout)["champion"] == "recommender/v3"

    assert cli(ws, "agents", "rollback", "recommender", "two", check=False).returncode == 2
    unknown = cli(ws, "agents", "rollback", "recommender", "v9", check=False)
    assert unknown.returncode == 1 and "v9" in unknown.stderr and "Traceback" not in unknown.stderr
    assert len(json.loads(cli(ws, "agents", "versions", "recommender", "--json").stdout)) == 3


def test_review_reject_records_the_reason_and_takes_it_off_the_list(ws):
    exp = record_candidate(ws, 7.0, 0.3)
    assert [r["id"] for r in json.loads(cli(ws, "review", "list", "--json").stdout)] == [exp]
    assert cli(ws, "review", "reject", str(exp), "--reason", " ", check=False).returncode == 2
    cli(ws, "review", "reject", str(exp), "--reason", REASON)
    assert json.loads(cli(ws, "review", "list", "--json").stdout) == []
    assert json.loads(cli(ws, "history", "show", str(exp), "--json").stdout)["promotion"] == "REJECTED"
    assert [v["tag"] for v in json.loads(cli(ws, "agents", "versions", "recommender", "--json").stdout)] \
        == ["recommender/v1"]
    again = cli(ws, "review", "approve", str(exp), check=False)
    assert again.returncode == 2 and "REJECTED" in again.stderr


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.integration
def test_a_rejection_reason_reaches_the_next_llm_prompt(ws):
    exp = record_candidate(ws, 7.0, 0.3)
    cli(ws, "review", "reject", str(exp), "--reason", REASON)
    with ScriptedLLMServer() as server:
        server.push(f"Stronger prior.\n\n```python\n{ease_code(300.0)}\n```\n")
        result = cli(ws, "design", "--agent", "recommender", "--proposer", "llm", "--model", "openai/scripted",
                     "--api-base", server.url, "--iterations", "1", "--max-calls", "1", *TINY,
                     env={"OPENAI_API_KEY": "sk-test"}, check=False)
        assert result.returncode == 0, result.stderr
        assert server.requests, "design made no LLM call"
        prompt = server.requests[0].text
    assert REASON in prompt and f"experiment {exp}" in prompt


def test_history_diff_shows_code_params_and_metric_deltas(ws):
    a, b = record_candidate(ws, 7.0, 0.30), record_candidate(ws, 300.0, 0.35)
    data = json.loads(cli(ws, "history", "diff", str(a), str(b), "--json").stdout)
    assert data["params"] == {"l2": [7.0, 300.0]}
    assert data["metrics"]["ndcg@10"]["delta"] == pytest.approx(0.05)
    assert data["metrics"]["recall@10"] == {"a": 0.6, "b": 0.7, "delta": pytest.approx(0.1)}
    assert f"--- experiment {a}" in data["code_diff"] and f"+++ experiment {b}" in data["code_diff"]
    assert "-" in data["code_diff"] and "300" in data["code_diff"]
    text = cli(ws, "history", "diff", str(a), str(b)).stdout
    assert "l2" in text and "ndcg@10" in text and f"+++ experiment {b}" in text
    same = cli(ws, "history", "diff", str(a), str(a)).stdout
    assert f"experiments {a} and {a} do not differ" in same
    missing = cli(ws, "history", "diff", str(a), "999", check=False)
    assert missing.returncode == 1 and "999" in missing.stderr and "Traceback" not in missing.stderr


def test_review_reject_all_pending_rejects_them_all_and_show_prints_the_reason(ws):
    first, second = record_candidate(ws, 7.0, 0.3), record_candidate(ws, 300.0, 0.35)
    assert cli(ws, "review", "reject", "--reason", REASON, check=False).returncode == 2
    assert cli(ws, "review", "reject", str(first), "--all-pending", "--reason", REASON, check=False).returncode == 2
    unknown = cli(ws, "review", "reject", "--all-pending", "--agent", "nosuch", "--reason", REASON, check=False)
    assert unknown.returncode == 1 and "nosuch" in unknown.stderr
    listed = cli(ws, "review", "list", "--agent", "nosuch", check=False)   # like `history --agent nosuch`
    assert listed.returncode == 1 and "nosuch" in listed.stderr and "Traceback" not in listed.stderr
    assert len(json.loads(cli(ws, "review", "list", "--json").stdout)) == 2

    done = cli(ws, "review", "reject", "--all-pending", "--agent", "recommender", "--reason", REASON)
    assert f"rejected 2 pending experiment(s) ({second}, {first})" in done.stderr
    assert json.loads(cli(ws, "review", "list", "--json").stdout) == []
    for exp in (first, second):
        assert json.loads(cli(ws, "history", "show", str(exp), "--json").stdout)["promotion"] == "REJECTED"
        shown = cli(ws, "review", "show", str(exp)).stdout
        assert f"review: REJECTED by " in shown and f"reason: {REASON}" in shown
    assert "nothing waits for review" in cli(ws, "review", "reject", "--all-pending", "--reason", "x").stderr


def test_approving_one_candidate_supersedes_the_others_compared_with_the_old_champion(ws):
    first, second = record_candidate(ws, 7.0, 0.3), record_candidate(ws, 300.0, 0.35)
    done = cli(ws, "review", "approve", str(second))
    assert f"superseded 1 other pending candidate(s) compared with the old champion ({first})" in done.stderr
    assert json.loads(cli(ws, "review", "list", "--json").stdout) == []
    shown = json.loads(cli(ws, "history", "show", str(first), "--json").stdout)
    assert shown["promotion"] == "SUPERSEDED"
    assert "the champion is now recommender/v2" in shown["evidence"]["superseded"]
