"""Sessions that span runs, a clean stop on SIGTERM, and progress while `design` works
(issue 15 items 4 and 9), through the real console script and sandbox."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.integration.clirun import BIN, TINY, cli

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.integration]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    return env | {"NO_COLOR": "1", **extra}


def _session_rows(ws, session: str) -> list[tuple[int, str]]:
    db = sqlite3.connect(ws / "knowledge.db")
    rows = db.execute("SELECT id, status FROM experiments WHERE session_id = ?", (session,)).fetchall()
    db.close()
    return rows


@pytest.mark.timeout(900)
def test_sigterm_stops_at_a_step_and_a_plain_rerun_continues_the_whole_session(ws):
    proc = subprocess.Popen([str(BIN), "--workspace", str(ws), "design", "--agent", "recommender",
                             "--session", "s1", "--iterations", "40", "--json", *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.time() + 300
    while len(_session_rows(ws, "s1") if (ws / "knowledge.db").exists() else []) < 4:
        assert proc.poll() is None and time.time() < deadline, "design ended or was slow before the signal"
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr
    assert "SIGTERM: stopping after the current step" in stderr and "Traceback" not in stderr
    first = json.loads(stdout)
    assert first["session"] == "s1" and first["stopped"] == "interrupted (SIGTERM)" and not first["finished"]
    assert 1 <= first["iterations"] < 40 and first["runs"] == 1
    statuses = {status for _, status in _session_rows(ws, "s1")}
    assert not statuses & {"RUNNING", "INTERRUPTED"}, statuses     # the step in flight was finished

    target = first["iterations"] + 2
    again = json.loads(cli(ws, "design", "--agent", "recommender", "--iterations", str(target), "--json",
                           *TINY).stdout)   # no --session: continues the unfinished one
    assert again["session"] == "s1" and again["runs"] == 2 and again["iterations"] == target
    assert again["finished"] and again["stopped"] == "iterations done"
    assert again["evaluated"] >= first["evaluated"] and again["elapsed_seconds"] >= first["elapsed_seconds"]
    assert again["best_reward"] >= first["best_reward"]
    assert set(first["promoted_experiments"]) <= set(again["promoted_experiments"])

    before = _session_rows(ws, "s1")
    done = cli(ws, "design", "--agent", "recommender", "--session", "s1", "--iterations", str(target), *TINY)
    assert f"session s1 already ran {target} of {target} iteration(s): nothing to do" in done.stderr
    assert _session_rows(ws, "s1") == before

    fresh = json.loads(cli(ws, "design", "--agent", "recommender", "--iterations", "1", "--json", *TINY).stdout)
    assert fresh["session"] != "s1" and fresh["runs"] == 1 and fresh["iterations"] == 1   # s1 was finished
    other = cli(ws, "design", "--agent", "recommender", "--session", "s1", "--dataset", "synthetic",
                "--n-users", "400", "--n-items", "200", check=False)
    assert other.returncode == 2 and "session s1 is agent recommender's on data set" in other.stderr
    assert cli(ws, "design", "--agent", "recommender", "--session", "a b", check=False).returncode == 2


def test_without_a_tty_long_work_prints_heartbeat_lines(ws):
    beat = cli(ws, "design", "--agent", "recommender", "--iterations", "2", *TINY,
               env={"AGENTICRS_HEARTBEAT_SECONDS": "0.3"}).stderr
    beats = [line for line in beat.splitlines() if line.startswith("... iteration ")]
    assert beats, beat
    assert all("/2 · " in line and " elapsed · best val ndcg@10 " in line for line in beats), beats
    quiet = cli(ws, "design", "--agent", "recommender", "--session", "quiet", "--iterations", "1", *TINY).stderr
    assert not [line for line in quiet.splitlines() if line.startswith("... ")], quiet   # < 30 s: no heartbeat


def test_on_a_tty_a_status_line_shows_iteration_candidate_stage_elapsed_and_best(ws):
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(BIN), "--workspace", str(ws), "design", "--agent", "recommender",
                             "--iterations", "2", *TINY], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, env=_env(COLUMNS="200", TERM="xterm"))
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:   # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=300)
    os.close(master)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "iteration 1/2 · " in text and "iteration 2/2 · " in text, text
    assert " evaluation, experiment " in text and " elapsed · best val ndcg@10 " in text, text


def test_a_long_evaluate_is_not_silent_without_a_tty(ws, tmp_path):
    agent = tmp_path / "slow.py"
    agent.write_text("import time\nimport numpy as np\n\nclass Agent:\n    def __init__(self, **p):\n        pass\n"
                     "    def fit(self, train):\n        time.sleep(3)\n"
                     "    def recommend(self, users, k):\n        return np.zeros((len(users), k), dtype=np.int64)\n")
    result = cli(ws, "evaluate", str(agent), *TINY, env={"AGENTICRS_HEARTBEAT_SECONDS": "0.5"}, check=False)
    beats = [line for line in result.stderr.splitlines()
             if line.startswith(f"... evaluating {agent} (validation) · ")]
    assert len(beats) >= 2 and all(line.endswith(" elapsed") for line in beats), result.stderr
