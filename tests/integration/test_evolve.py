"""``agenticrs evolve``: phases that alternate, adopt, refuse misaligned components, notice
drift and resume after kill -9."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.clirun import BIN, TINY, cli, evaluated_keys

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

# Recommends each user's least popular unseen items: val ndcg@10 near 0, novelty high.
TAIL = '''
import numpy as np
import agent_sdk


class Agent:
    def __init__(self, **params):
        pass

    def fit(self, train):
        self.seen = train.matrix()
        self.score = -np.bincount(train.item, minlength=train.n_items).astype(np.float64)

    def recommend(self, users, k):
        return agent_sdk.topk_unseen(np.tile(self.score, (len(users), 1)), self.seen, users, k)
'''


def add_agent(ws: Path, name: str, code: str) -> None:
    """A recommender agent whose v1 is ``code`` (what a person would write and register)."""
    from designer.builtin_agents import CONTRACT
    from designer.release import Releaser
    from designer.versions import AgentRepository
    from knowledge_base.models import AgentSpec
    from knowledge_base.store import Store

    store = Store.open(f"sqlite:///{ws / 'knowledge.db'}")
    store.upsert_agent(AgentSpec(name=name, role="recommender", family="custom", description="test source",
                                 interface=CONTRACT, inner_reward="ndcg@10", parameter_space={}))
    Releaser(store, AgentRepository(ws / "agents")).publish_initial(name, "custom", {}, code)
    store.close()


def novel_pipeline_over_tails(ws: Path, tmp_path: Path) -> None:
    """Pipeline ``novel`` (outer reward novelty@10) over agent ``tails`` v1."""
    add_agent(ws, "tails", TAIL)
    spec = tmp_path / "novel.yaml"
    spec.write_text("name: x\nouter_reward: {objective: novelty@10}\n"
                    "branches:\n  - sources: [{agent: tails, version: 1, quota: 50}]\n    ranker: {family: fusion}\n")
    cli(ws, "pipelines", "create", "novel", "--spec", str(spec))


def phases(ws: Path) -> list[tuple]:
    db = sqlite3.connect(ws / "knowledge.db")
    rows = db.execute("SELECT id, kind, target, ended_at, iterations FROM evolve_phases ORDER BY id").fetchall()
    db.close()
    return rows


@pytest.mark.timeout(900)
def test_a_component_better_alone_but_worse_in_the_pipeline_is_not_adopted(ws, tmp_path):
    novel_pipeline_over_tails(ws, tmp_path)
    summary = json.loads(cli(ws, "evolve", "--pipeline", "novel", "--iterations", "2", "--patience", "2",
                             "--auto-approve", "--json", *TINY).stdout)
    individual = [p for p in summary["phases"] if p["kind"] == "individual"]
    assert individual and individual[0]["target"] == "tails", summary["phases"]
    # the search's first move for `tails` is a popularity model: far better val ndcg@10 alone
    versions = json.loads(cli(ws, "agents", "versions", "tails", "--json").stdout)
    assert [v["tag"] for v in versions][:2] == ["tails/v1", "tails/v2"] and versions[1]["family"] == "popularity"
    record = summary["misaligned"][0]
    assert record["component"] == "tails/v2" and record["inner_after"] > record["inner_before"]
    assert record["outer_after"] < record["outer_before"] and not record["adopted"]
    assert individual[0]["adoptions"][0]["misaligned"]
    kept = json.loads(cli(ws, "pipelines", "show", "novel", "--json").stdout)
    assert kept["champion"] == "novel/v1"
    assert kept["spec"]["branches"][0]["sources"][0] == {"agent": "tails", "version": 1, "quota": 50}


@pytest.mark.timeout(900)
def test_with_two_workers_a_phase_runs_candidates_at_once_and_still_refuses_a_misaligned_component(ws, tmp_path):
    novel_pipeline_over_tails(ws, tmp_path)
    summary = json.loads(cli(ws, "evolve", "--pipeline", "novel", "--iterations", "2", "--patience", "2",
                             "--workers", "2", "--auto-approve", "--json", *TINY).stdout)
    individual = [p for p in summary["phases"] if p["kind"] == "individual"]
    assert individual and individual[0]["target"] == "tails" and individual[0]["iterations"] == 2
    record = summary["misaligned"][0]
    assert record["component"] == "tails/v2" and not record["adopted"]
    assert json.loads(cli(ws, "pipelines", "show", "novel", "--json").stdout)["champion"] == "novel/v1"
    db = sqlite3.connect(ws / "knowledge.db")
    runs = db.execute("SELECT stage, code_hash, created_at, finished_at FROM experiments WHERE agent_name = 'tails' "
                      "AND proposer != 'baseline' ORDER BY id").fetchall()
    db.close()
    keys = [(stage, code) for stage, code, _, _ in runs]
    assert len(keys) == len(set(keys)), keys                     # nothing evaluated twice
    cheap = [(start, end) for stage, _, start, end in runs if stage == "cheap"]
    assert len(cheap) == 2 and cheap[1][0] < cheap[0][1], cheap   # the second started before the first ended


def snapshot_csv(path: Path, switch: float, fresh: float) -> Path:
    from sandbox.harness.datasets.synthetic import generate_synthetic

    data = generate_synthetic(300, 200, seed=0, switch=switch, fresh=fresh)
    lines = ["user,item,timestamp"] + [f"{u},{i},{t}" for u, i, t in zip(data.user, data.item, data.timestamp)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.timeout(1200)
def test_a_significant_drop_on_a_newer_snapshot_starts_a_compositional_phase(ws, tmp_path):
    before = snapshot_csv(tmp_path / "snapshot1.csv", switch=0.07, fresh=0.2)
    after = snapshot_csv(tmp_path / "snapshot2.csv", switch=0.9, fresh=0.95)
    # one iteration: its first move (the best source alone) is promoted, all the drift check needs
    compose = json.loads(cli(ws, "compose", "--iterations", "1", "--auto-approve", "--json",
                             "--dataset", str(before)).stdout)
    assert compose["approved_versions"], "the drift check needs a champion promoted on the first snapshot"
    summary = json.loads(cli(ws, "evolve", "--iterations", "1", "--auto-approve", "--json",
                             "--dataset", str(after)).stdout)
    first = summary["phases"][0]
    assert first["kind"] == "compositional" and first["started_because"].startswith("drift: champion default/v2")
    same = json.loads(cli(ws, "evolve", "--iterations", "1", "--auto-approve", "--json",
                          "--dataset", str(before)).stdout)
    assert not same["phases"][0]["started_because"].startswith("drift"), same["phases"][0]


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("kind", ["individual", "compositional"])
def test_a_killed_evolve_resumes_in_the_same_phase(ws, kind):
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    # patience 1: the first individual phases end fast, so a compositional one comes soon
    proc = subprocess.Popen([str(BIN), "--workspace", str(ws), "evolve", "--iterations", "40", "--patience", "1",
                             "--auto-approve", *TINY], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env | {"NO_COLOR": "1"}, start_new_session=True)
    deadline = time.time() + 900
    while True:
        rows = phases(ws) if (ws / "knowledge.db").exists() else []
        open_rows = [r for r in rows if r[3] is None and r[1] == kind and r[4] >= 1]
        if open_rows:
            break
        assert proc.poll() is None, f"evolve ended (rc {proc.returncode}) before a {kind} phase ran"
        assert time.time() < deadline, f"no {kind} phase with a finished iteration within 900 s: {rows}"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    killed = open_rows[-1]
    history_before = json.loads(cli(ws, "history", "--limit", "1000", "--json").stdout)
    summary = json.loads(cli(ws, "evolve", "--iterations", "1", "--auto-approve", "--json", *TINY).stdout)
    resumed = summary["phases"][0]
    assert (resumed["id"], resumed["kind"], resumed["target"]) == killed[:3], (resumed, killed)
    assert resumed["iterations"] == killed[4] + 1
    assert all(r[3] is not None for r in phases(ws)), "a phase stayed open"
    rows = json.loads(cli(ws, "history", "--limit", "1000", "--json").stdout)
    assert len(rows) > len(history_before)
    db = sqlite3.connect(ws / "knowledge.db")
    running = db.execute("SELECT id FROM experiments WHERE status = 'RUNNING'").fetchall()
    db.close()
    assert not running
    keys = evaluated_keys(ws, rows, "agent", "stage")
    assert len(keys) == len(set(keys)), "a candidate was evaluated twice"
