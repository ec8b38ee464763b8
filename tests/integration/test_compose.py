"""``agenticrs compose`` and ``pipelines``: a pipeline evolved, versioned, judged and shown."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.integration.clirun import BIN, TINY, cli, evaluated_keys

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_compose_promotes_a_pipeline_that_the_pipeline_commands_show(ws):
    # one iteration on the tiny data set: its first move (the best source alone) already wins
    # by far (p ~ 1e-15 over 300 users), and the later ones only add minutes
    summary = json.loads(cli(ws, "compose", "--iterations", "1", "--auto-approve", "--json", *TINY).stdout)
    assert summary["agent"] == "default" and summary["approved_versions"], summary
    versions = json.loads(cli(ws, "pipelines", "versions", "default", "--json").stdout)
    assert [v["tag"] for v in versions][:2] == ["default/v1", "default/v2"] and versions[-1]["champion"]
    assert versions[-1]["val_objective"] > versions[0]["val_objective"]
    listed = json.loads(cli(ws, "pipelines", "list", "--json").stdout)
    assert listed[0]["champion"] == versions[-1]["tag"] and " -> " in listed[0]["graph"]
    shown = cli(ws, "pipelines", "show", "default").stdout
    assert "branches:" in shown and "inner reward src0/recall@" in shown
    promoted = summary["promoted_experiments"][0]
    text = cli(ws, "history", "show", str(promoted)).stdout
    assert "pipeline components" in text and "spec diff against the parent" in text
    assert "segment cold: val ndcg@10" in text
    # the agents repository holds the spec as a versioned file next to its manifest
    assert (ws / "agents" / "default" / "pipeline.yaml").read_text().startswith("name: default")


@pytest.mark.timeout(600)
def test_a_pipeline_breaking_its_latency_constraint_is_infeasible_and_never_promoted(ws, tmp_path):
    spec = tmp_path / "tight.yaml"
    spec.write_text("name: x\nouter_reward:\n  objective: ndcg@10\n  constraints:\n"
                    "    - {metric: latency_ms_per_user, max: 0.000001}\n"
                    "branches:\n  - sources:\n      - {family: popularity, quota: 50}\n"
                    "      - {family: itemknn, quota: 50}\n    ranker: {family: fusion}\n")
    cli(ws, "pipelines", "create", "tight", "--spec", str(spec))
    summary = json.loads(cli(ws, "compose", "--pipeline", "tight", "--iterations", "3", "--auto-approve",
                             "--json", *TINY).stdout)
    assert not summary["approved_versions"] and not summary["promoted_experiments"]
    rows = json.loads(cli(ws, "history", "--agent", "tight", "--limit", "100", "--json").stdout)
    infeasible = [r for r in rows if r["promotion"] == "INFEASIBLE"]
    assert infeasible, rows
    text = cli(ws, "history", "show", str(infeasible[0]["id"])).stdout
    assert "INFEASIBLE (never promoted): latency_ms_per_user" in text and "breaks latency_ms_per_user <= 1e-06" in text
    assert len(json.loads(cli(ws, "pipelines", "versions", "tight", "--json").stdout)) == 1


def test_bad_pipeline_specs_are_refused_with_one_line(ws, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("branches:\n  - sources: [{agent: nosuch, version: 1, quota: 10}]\n    ranker: {family: fusion}\n")
    result = cli(ws, "pipelines", "create", "p2", "--spec", str(bad), check=False)
    assert result.returncode == 1 and "unknown agent 'nosuch'" in result.stderr and "Traceback" not in result.stderr
    bad.write_text("branches: [\n")
    result = cli(ws, "pipelines", "create", "p2", "--spec", str(bad), check=False)
    assert result.returncode == 1 and "not valid YAML at line" in result.stderr
    result = cli(ws, "compose", "--pipeline", "recommender", check=False)
    assert result.returncode != 0 and "not a pipeline" in result.stderr


@pytest.mark.timeout(900)
def test_a_killed_compose_resumes_with_nothing_lost_or_duplicated(ws):
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    proc = subprocess.Popen([str(BIN), "--workspace", str(ws), "compose", "--iterations", "20", "--auto-approve",
                             *TINY], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env | {"NO_COLOR": "1"}, start_new_session=True)
    deadline = time.time() + 300
    while len(json.loads(cli(ws, "history", "--agent", "default", "--json").stdout)) < 3:
        assert proc.poll() is None, f"compose ended (rc {proc.returncode}) before it could be killed"
        assert time.time() < deadline, "compose recorded fewer than 3 experiments in 300 s"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    before = json.loads(cli(ws, "history", "--agent", "default", "--limit", "500", "--json").stdout)
    resumed = json.loads(cli(ws, "compose", "--iterations", "2", "--auto-approve", "--json", *TINY).stdout)
    assert resumed["iterations"] == 2
    rows = json.loads(cli(ws, "history", "--agent", "default", "--limit", "500", "--json").stdout)
    assert len(rows) > len(before)
    db = sqlite3.connect(ws / "knowledge.db")
    running = db.execute("SELECT id FROM experiments WHERE status = 'RUNNING'").fetchall()
    db.close()
    assert not running
    keys = evaluated_keys(ws, rows, "stage")
    assert len(keys) == len(set(keys)), "a pipeline was evaluated twice"
    lines = cli(ws, "agents", "check").stderr.strip().splitlines()
    assert lines and all(line.endswith(": consistent") for line in lines), lines
