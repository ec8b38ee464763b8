"""The CLI as a user runs it: the real console script, workspace, sandbox and knowledge base."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.clirun import BIN, TINY, cli


def test_init_then_lists_print_json(ws):
    agents = json.loads(cli(ws, "agents", "list", "--json").stdout)
    assert {"name", "role", "champion", "versions"} <= set(agents[0])
    assert any(a["name"] == "recommender" and a["champion"] == "recommender/v1" for a in agents)
    assert json.loads(cli(ws, "history", "--json").stdout) == []
    assert json.loads(cli(ws, "review", "list", "--json").stdout) == []
    cli(ws, "init")  # twice is safe
    assert len(json.loads(cli(ws, "agents", "versions", "recommender", "--json").stdout)) == 1


def test_outside_a_workspace_the_error_says_how_to_create_one(tmp_path):
    result = cli(tmp_path / "nowhere", "history", check=False)
    assert result.returncode == 1
    assert "agenticrs init" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(ws):
    assert cli(ws, "history", "--status", "NOPE", check=False).returncode == 2
    assert cli(ws, "design", "--agent", "recommender", "--proposer", "llm", check=False).returncode == 2
    assert cli(ws, "frobnicate", check=False).returncode == 2


def test_a_missing_data_folder_is_one_clear_error(ws, tmp_path):
    result = cli(ws, "evaluate", "popularity", "--dataset", "ml-100k", "--data-dir", str(tmp_path / "missing"),
                 check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "ml-100k" in result.stderr


@pytest.mark.sandbox
@pytest.mark.slow
def test_evaluate_runs_a_family_through_the_sandbox(ws):
    data = json.loads(cli(ws, "evaluate", "ease", *TINY, "--json").stdout)
    assert data["outcome"] == "COMPLETED" and data["tier"] in ("A", "B", "C")
    assert 0 < data["metrics"]["ndcg@10"] <= 1


@pytest.mark.sandbox
@pytest.mark.slow
def test_design_promotes_commits_and_shows_history(ws):
    summary = json.loads(cli(ws, "design", "--agent", "recommender", "--iterations", "3", "--auto-approve",
                             "--json", *TINY).stdout)
    assert summary["iterations"] == 3 and summary["best_reward"] >= summary["baseline_reward"]
    versions = json.loads(cli(ws, "agents", "versions", "recommender", "--json").stdout)
    assert len(versions) == 1 + len(summary["approved_versions"])
    history = json.loads(cli(ws, "history", "--agent", "recommender", "--json").stdout)
    assert history and all(h["agent"] == "recommender" for h in history)
    shown = cli(ws, "history", "show", str(history[0]["id"])).stdout
    assert f"experiment {history[0]['id']}" in shown
    if summary["approved_versions"]:
        tags = subprocess.run(["git", "tag"], cwd=ws / "agents", capture_output=True, text=True).stdout.split()
        assert summary["approved_versions"][-1] in tags and "recommender/champion" in tags


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_killed_design_run_resumes_without_duplicates(ws):
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen([str(BIN), "--workspace", str(ws), "design", "--agent", "recommender",
                             "--iterations", "20", "--auto-approve", *TINY],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        history = json.loads(cli(ws, "history", "--json").stdout)
        if len(history) >= 3:
            break
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    cli(ws, "design", "--agent", "recommender", "--iterations", "2", "--auto-approve", *TINY)
    rows = json.loads(cli(ws, "history", "--limit", "500", "--json").stdout)
    finished = [(r["stage"], r["id"]) for r in rows if r["status"] not in ("RUNNING", "INTERRUPTED")]
    assert not [r for r in rows if r["status"] == "RUNNING"]
    exps = [json.loads(cli(ws, "history", "show", str(i), "--json").stdout) for _, i in finished]
    keys = [(e["stage"], e["code_hash"]) for e in exps]
    assert len(keys) == len(set(keys)), "a candidate was evaluated twice"
    check = cli(ws, "agents", "check")
    assert "consistent" in check.stderr or "created rows" in check.stderr
    assert "consistent" in cli(ws, "agents", "check").stderr


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_crashing_agent_file_fails_with_exit_1_and_its_traceback(ws, tmp_path):
    agent = tmp_path / "agent.py"
    agent.write_text("import numpy as np\n\nclass Agent:\n    def __init__(self, **p):\n        pass\n"
                     "    def fit(self, train):\n        raise RuntimeError('no luck')\n"
                     "    def recommend(self, users, k):\n        return np.zeros((len(users), k), dtype=np.int64)\n")
    result = cli(ws, "evaluate", str(agent), *TINY, "--k", "20", "--json", check=False)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["outcome"] == "FAILED" and "no luck" in data["error"]
    ok = json.loads(cli(ws, "evaluate", "popularity", *TINY, "--k", "20", "--json").stdout)
    assert "ndcg@20" in ok["metrics"]
