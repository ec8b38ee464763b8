"""The lists the harness scores are the ones the runner checked: the output file is read
once, so nothing the candidate leaves running can swap it between the check and the score."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sandbox.errors import SandboxError
from sandbox.evaluation import EvaluationJob, Evaluator
from sandbox.harness import load_dataset, relevant_matrix, split_interactions
from sandbox.outcome import Outcome
from sandbox.runner.models import IsolationTier, RunResult


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    data = load_dataset("synthetic", seed=0, n_users=300, n_items=200,
                        cache_dir=tmp_path_factory.mktemp("datasets"))
    return split_interactions(data, method="user_temporal")


class SwappingRunner:
    """Checks (and returns) lists that hit every held-out item it can, then leaves a file of
    padding behind, as a child process still running after the check could."""

    tier = IsolationTier.A

    def __init__(self, split, returns_lists: bool = True):
        self.split, self.returns_lists = split, returns_lists

    def run(self, request) -> RunResult:
        users = np.load(Path(request.inputs) / "users.npy")
        relevant = relevant_matrix(self.split.validation, users)
        k = request.config.k
        good = np.full((len(users), k), -1, dtype=np.int64)
        for row in range(len(users)):
            items = relevant[row].indices[:k]
            good[row, :len(items)] = items
        np.save(Path(request.output) / "recommendations.npy", np.full_like(good, -1))
        return RunResult(outcome=Outcome.COMPLETED, exit_code=0, wall_seconds=0.1, cpu_seconds=0.1,
                         peak_memory_mb=1.0, tier=self.tier, stdout_tail="", stderr_tail="",
                         error_type=None, message="", traceback_tail="", fit_seconds=0.0,
                         recommend_seconds=0.0, recommendations=good if self.returns_lists else None)


def test_the_checked_lists_are_scored_not_the_file_left_behind(split, tmp_path):
    result = Evaluator(SwappingRunner(split), split, tmp_path / "cache").evaluate(
        EvaluationJob(code="class Agent: pass\n"), tmp_path / "run")
    assert result.outcome is Outcome.COMPLETED
    assert result.metrics["ndcg@10"] > 0.9, "the padding file was scored, not the checked lists"


def test_a_runner_that_completes_without_its_lists_is_a_clear_error(split, tmp_path):
    with pytest.raises(SandboxError, match="RunResult.recommendations"):
        Evaluator(SwappingRunner(split, returns_lists=False), split, tmp_path / "cache").evaluate(
            EvaluationJob(code="class Agent: pass\n"), tmp_path / "run")
