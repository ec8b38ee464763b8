"""A data set too small for its split is one clear error naming the minimum (issue 13, item 9)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sandbox.evaluation import EvaluationJob, Evaluator
from sandbox.harness import DatasetError, Interactions, SplitTooSmallError, split_interactions
from sandbox.outcome import Outcome
from sandbox.runner.models import IsolationTier, RunResult


def one_per_user(n_users: int = 50) -> Interactions:
    """Every user has a single interaction: nothing left for validation under user_temporal."""
    return Interactions(np.arange(n_users), np.arange(n_users) % 7, np.arange(n_users),
                        np.ones(n_users), n_users, 7, name="one-per-user")


class WritingRunner:
    """Writes all-padding recommendations for the users it is given, like a trivial agent."""

    tier = IsolationTier.A

    def __init__(self):
        self.runs = 0

    def run(self, request) -> RunResult:
        self.runs += 1
        users = np.load(Path(request.inputs) / "users.npy")
        recs = np.full((len(users), request.config.k), -1, dtype=np.int64)
        np.save(Path(request.output) / "recommendations.npy", recs)
        return RunResult(outcome=Outcome.COMPLETED, exit_code=0, wall_seconds=0.1, cpu_seconds=0.1,
                         peak_memory_mb=1.0, tier=self.tier, stdout_tail="", stderr_tail="",
                         error_type=None, message="", traceback_tail="", fit_seconds=0.0,
                         recommend_seconds=0.0, recommendations=recs)


def test_user_temporal_without_validation_users_is_one_error_naming_the_minimum(tmp_path):
    split = split_interactions(one_per_user())
    with pytest.raises(SplitTooSmallError) as info:
        Evaluator(WritingRunner(), split, tmp_path)
    message = str(info.value)
    assert isinstance(info.value, DatasetError)          # the CLI prints DatasetErrors as one line
    assert "at least 3 interactions" in message and "most active user here has 1" in message
    assert "one-per-user" in message and "\n" not in message


def test_global_temporal_names_its_own_minimum(tmp_path):
    tiny = Interactions([0, 1], [0, 1], [0, 1], [1, 1], 2, 2, name="two-rows")
    with pytest.raises(SplitTooSmallError, match="needs at least 3 interactions"):
        Evaluator(WritingRunner(), split_interactions(tiny, "global_temporal"), tmp_path)


def test_a_cheap_stage_on_a_part_without_users_does_not_crash(tmp_path):
    """Users with 3 interactions have validation but no confirmation window: sampling a
    fraction of zero users used to crash in rng.choice."""
    n = 40
    data = Interactions(np.repeat(np.arange(n), 3), np.tile([0, 1, 2], n), np.tile([0, 1, 2], n),
                        np.ones(3 * n), n, 5, name="three-each")
    runner = WritingRunner()
    evaluator = Evaluator(runner, split_interactions(data), tmp_path / "cache")
    job = EvaluationJob(code="", stage="confirm", user_fraction=0.3)
    result = evaluator.evaluate(job, tmp_path / "run")
    assert result.outcome is Outcome.COMPLETED and len(result.user_ids) == 0
    validation = evaluator.evaluate(EvaluationJob(code="", user_fraction=0.3), tmp_path / "run2")
    assert len(validation.user_ids) == round(0.3 * n) and runner.runs == 2
