"""The CLI as a user runs it: the real console script, workspace, sandbox and knowledge base."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.clirun import BIN, TINY, cli, evaluated_keys


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


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws / "agents", capture_output=True, text=True, check=True).stdout


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_design_promotes_commits_and_shows_history(ws):
    """On synthetic data EASE beats popularity (the v1 champion) by far more than any alpha
    or minimum effect can hide: a 3-iteration search run must promote and commit it."""
    summary = json.loads(cli(ws, "design", "--agent", "recommender", "--iterations", "3", "--auto-approve",
                             "--json", *TINY).stdout)
    assert summary["iterations"] == 3 and summary["approved_versions"], summary
    assert summary["best_reward"] > summary["baseline_reward"] + 0.03, summary
    versions = json.loads(cli(ws, "agents", "versions", "recommender", "--json").stdout)
    assert [v["tag"] for v in versions] == ["recommender/v1", *summary["approved_versions"]]
    champion = versions[-1]
    assert champion["champion"] and champion["experiment_id"] in summary["promoted_experiments"]
    assert champion["parent_version"] == versions[-2]["number"]

    tags = git(ws, "tag").split()
    assert set(summary["approved_versions"]) <= set(tags) and "recommender/champion" in tags
    assert git(ws, "rev-parse", "recommender/champion^{commit}") == git(ws, "rev-parse", f"{champion['tag']}^{{commit}}")
    message = git(ws, "log", "-1", "--format=%B", champion["tag"])
    assert f"experiment {champion['experiment_id']}" in message and f"parent: v{versions[-2]['number']}" in message

    history = json.loads(cli(ws, "history", "--agent", "recommender", "--json").stdout)
    assert history and all(h["agent"] == "recommender" for h in history)
    promoted = {h["id"]: h for h in history}[champion["experiment_id"]]
    assert promoted["promotion"] == "APPROVED"
    shown = cli(ws, "history", "show", str(promoted["id"])).stdout
    assert f"experiment {promoted['id']}" in shown and "APPROVED" in shown


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_design_run_resumes_without_duplicates(ws):
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    proc = subprocess.Popen([str(BIN), "--workspace", str(ws), "design", "--agent", "recommender",
                             "--iterations", "20", "--auto-approve", *TINY],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env | {"NO_COLOR": "1"},
                            start_new_session=True)
    deadline = time.time() + 240
    while len(json.loads(cli(ws, "history", "--json").stdout)) < 3:
        assert proc.poll() is None, f"design ended (rc {proc.returncode}) before it could be killed mid-run"
        assert time.time() < deadline, "design recorded fewer than 3 experiments in 240 s"
        time.sleep(0.5)
    assert proc.poll() is None, "design was no longer running when killed"
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    before = json.loads(cli(ws, "history", "--limit", "500", "--json").stdout)

    # A fresh session (a plain re-run would continue the killed one: see test_cli_sessions.py)
    resumed = json.loads(cli(ws, "design", "--agent", "recommender", "--iterations", "2", "--auto-approve",
                             "--session", "after-kill", "--json", *TINY).stdout)
    assert resumed["iterations"] == 2 and resumed["session"] == "after-kill"
    rows = json.loads(cli(ws, "history", "--limit", "500", "--json").stdout)
    assert len(rows) > len(before)
    # A killed process loses at most the experiment in flight: the resumed session sees that
    # the killed one ran on this host under a process that is gone (no need to wait 120 s for
    # its heartbeat to go stale) and marks its run INTERRUPTED; nothing stays RUNNING.
    db = sqlite3.connect(ws / "knowledge.db")
    running = db.execute("SELECT id, session_id FROM experiments WHERE status = 'RUNNING'").fetchall()
    interrupted = db.execute("SELECT count(*) FROM experiments WHERE status = 'INTERRUPTED'").fetchone()[0]
    db.close()
    assert not running and interrupted <= 1, (running, interrupted)
    keys = evaluated_keys(ws, rows, "stage")
    assert len(keys) == len(set(keys)), "a candidate was evaluated twice"
    for _ in range(2):  # consistent right after the resumed run, and stays so
        lines = cli(ws, "agents", "check").stderr.strip().splitlines()
        assert lines and all(line.endswith(": consistent") for line in lines), lines


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
