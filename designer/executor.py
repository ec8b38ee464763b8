"""The seam between the loop and candidate evaluation: where and how runs happen.

``Executor`` is what the loop calls; ``LocalExecutor`` runs one candidate at a time in the
local sandbox. A Ray executor (next wave) implements the same protocol with each Ray
worker running the same sandbox.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from designer.settings import DesignSettings
from sandbox.evaluation import EvaluationJob, EvaluationResult, Evaluator
from sandbox.harness.datasets import load_dataset
from sandbox.harness.splits import Split, split_interactions
from sandbox.runner import make_runner

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Evaluates jobs; implementations decide where (local sandbox, Ray workers)."""

    dataset_key: str

    def evaluate(self, job: EvaluationJob, run_dir: Path) -> EvaluationResult: ...


def dataset_key(dataset: str, split: Split) -> str:
    """Identifies data set and split; experiments are comparable only within one key."""
    return f"{Path(dataset).name}/{split.method}/{split.fingerprint[:12]}"


def load_split(settings: DesignSettings, cache_dir: Path) -> Split:
    """The data set and split named by ``settings`` (cached by fingerprint)."""
    data = load_dataset(settings.dataset, data_dir=settings.data_dir, cache_dir=cache_dir / "datasets",
                        seed=settings.seed, n_users=settings.n_users, n_items=settings.n_items,
                        columns=settings.columns)
    return split_interactions(data, method=settings.split, cache_dir=cache_dir / "splits")


class LocalExecutor:
    """Runs candidates one at a time in this machine's sandbox."""

    def __init__(self, settings: DesignSettings, cache_dir: Path, split: Split | None = None):
        self.split = split or load_split(settings, cache_dir)
        self.runner = make_runner(allow_insecure=settings.allow_insecure_sandbox)
        self.evaluator = Evaluator(self.runner, self.split, cache_dir)
        self.dataset_key = dataset_key(settings.dataset, self.split)

    @property
    def tier(self) -> str:
        return self.runner.tier.value

    def evaluate(self, job: EvaluationJob, run_dir: Path) -> EvaluationResult:
        return self.evaluator.evaluate(job, run_dir)
