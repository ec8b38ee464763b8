"""Fixtures for designer tests: a real workspace (SQLite KB + git repo) and a fake executor."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from designer.builtin_agents import builtin_specs
from designer.families import load_families
from designer.release import Releaser
from designer.settings import DesignSettings
from designer.versions import AgentRepository
from designer.workspace import Workspace
from knowledge_base.store import Store
from sandbox.evaluation import EvaluationJob, EvaluationResult
from sandbox.outcome import Outcome

N_USERS = 300


class FakeExecutor:
    """Scores candidates with ``reward_of(job) -> float | Outcome`` instead of running them.

    Per-user rewards are the mean plus a fixed per-user offset, so paired tests see the
    true difference between candidates. Records every job it got.
    """

    dataset_key = "fake/user_temporal/000000000000"

    def __init__(self, reward_of: Callable[[EvaluationJob], float | Outcome]):
        self.reward_of = reward_of
        self.jobs: list[EvaluationJob] = []
        offsets = np.random.default_rng(7).normal(0, 0.05, N_USERS)
        self.offsets = offsets - offsets.mean()

    def evaluate(self, job: EvaluationJob, run_dir: Path) -> EvaluationResult:
        self.jobs.append(job)
        run_dir.mkdir(parents=True, exist_ok=True)
        value = self.reward_of(job)
        if isinstance(value, Outcome):
            return EvaluationResult(outcome=value, tier="fake", error_type="RuntimeError",
                                    message="boom", traceback_tail="Traceback ...\nRuntimeError: boom")
        users = np.arange(N_USERS, dtype=np.int64)
        if job.user_fraction < 1:
            users = users[: int(N_USERS * job.user_fraction)]
        seed = int(hashlib.sha256((job.code + json.dumps(job.params, sort_keys=True)).encode()).hexdigest()[:8], 16)
        jitter = np.random.default_rng(seed).normal(0, 0.002, len(users))
        rewards = np.clip(value + self.offsets[users] + jitter, 0, 1)
        return EvaluationResult(outcome=Outcome.COMPLETED, tier="fake", metrics={"ndcg@10": float(rewards.mean())},
                                segments={"cold": {"ndcg@10": float(rewards.mean())}},
                                inner_reward=float(rewards.mean()), user_ids=users, user_rewards=rewards,
                                wall_seconds=0.01, fit_seconds=0.01)


@pytest.fixture()
def workspace(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.delenv("AGENTICRS_DB", raising=False)
    return Workspace.create(tmp_path / "ws")


@pytest.fixture()
def families():
    return load_families()


@pytest.fixture()
def store(workspace):
    s = Store.open(workspace.db_url)
    s.upgrade()
    yield s
    s.close()


def publish_builtins(store, workspace: Workspace, families) -> Releaser:
    """Initialise ``workspace`` (its KB open as ``store``) like `agenticrs init` does."""
    r = Releaser(store, AgentRepository.init(workspace.agents_repo))
    for spec in builtin_specs(families):
        store.upsert_agent(spec)
        family = families[spec.family]
        r.publish_initial(spec.name, spec.family, family.defaults(), family.render(family.defaults()))
    return r


@pytest.fixture()
def releaser(store, workspace, families) -> Releaser:
    """A workspace initialised like `agenticrs init` does."""
    return publish_builtins(store, workspace, families)


@pytest.fixture()
def settings(workspace) -> DesignSettings:
    return DesignSettings(workspace=workspace.root)
