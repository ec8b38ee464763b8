"""Evaluate one candidate: write its inputs, run it in the sandbox, score it outside.

The candidate sees only what its stage needs: for ``validation``, train interactions and
the validation user ids (never their items); for ``confirm``, the train prefix before the
confirmation window and the window's user ids; for ``test``, train+validation and the test
user ids. Labels stay in this process; metrics are computed here, never by the candidate.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sandbox.composition import PipelineEvaluation, PipelinePlan
from sandbox.harness import (InvalidRecommendationsError, Split, eval_users, relevant_matrix,
                             require_validation_users, score_recommendations,
                             validate_recommendations)
from sandbox.limits import Limits
from sandbox.outcome import Outcome
from sandbox.runner import RunConfig, Runner, RunRequest, RunResult, SandboxError

log = logging.getLogger(__name__)

Stage = Literal["validation", "confirm", "test"]
# stage -> (the part the candidate fits on, the part it is scored on)
_PARTS = {"validation": ("train", "validation"), "confirm": ("confirm_train", "confirm"),
          "test": ("train_plus_validation", "test")}


class EvaluationJob(BaseModel):
    """One evaluation of one candidate module."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    params: dict[str, Any] = Field(default_factory=dict)
    stage: Stage = "validation"
    k: int = 10
    user_fraction: float = Field(1.0, gt=0, le=1)  # the cheap cascade stage samples users
    fidelity: float = Field(1.0, gt=0, le=1)       # ... and scales epochs
    seed: int = 0
    limits: Limits = Field(default_factory=Limits)
    inner_reward: str = "ndcg@10"
    pipeline: PipelinePlan | None = None           # set: ``code`` is the spec, run as a pipeline


class EvaluationResult(BaseModel):
    """What the harness measured. ``user_ids``/``user_rewards`` feed the paired test."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    outcome: Outcome
    tier: str
    metrics: dict[str, float] = Field(default_factory=dict)
    segments: dict[str, dict[str, float]] = Field(default_factory=dict)
    inner_reward: float | None = None
    user_ids: np.ndarray | None = None
    user_rewards: np.ndarray | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float | None = None
    fit_seconds: float | None = None
    recommend_seconds: float | None = None
    peak_memory_mb: float | None = None
    error_type: str | None = None
    message: str = ""
    traceback_tail: str = ""
    stderr_tail: str = ""


class Evaluator:
    """Runs candidates against one fixed split through a ``Runner``.

    Raises ``SplitTooSmallError`` (a ``DatasetError``) at construction when the split has
    no validation user: nothing could ever be scored or compared on it.
    """

    def __init__(self, runner: Runner, split: Split, cache_dir: Path):
        require_validation_users(split)
        self.runner, self.split = runner, split
        self.cache_dir = Path(cache_dir)
        self._seen_cache: dict[str, Any] = {}

    def evaluate(self, job: EvaluationJob, run_dir: Path) -> EvaluationResult:
        """Evaluate ``job`` with artifacts in ``run_dir`` (created; reused output is cleared)."""
        if job.pipeline is not None:
            return PipelineEvaluation(self).evaluate(job, run_dir)
        fit_data, target = self._parts(job.stage)
        users = self._users(job)
        result, recs = self.run_agent(job, run_dir, fit_data, users)
        if recs is None:
            return result
        report = score_recommendations(recs, relevant_matrix(target, users), users=users,
                                       train=fit_data, k=job.k, checked=True)
        rewards = per_user_reward(report, job.inner_reward)
        return result.model_copy(update=dict(
            metrics={**report.summary, **result.metrics}, segments={k: dict(v) for k, v in report.segments.items()},
            inner_reward=float(rewards.mean()) if len(rewards) else 0.0, user_ids=users, user_rewards=rewards))

    def run_agent(self, job: EvaluationJob, run_dir: Path, fit_data: Any,
                  users: np.ndarray) -> tuple[EvaluationResult, np.ndarray | None]:
        """Run ``job``'s agent fitted on ``fit_data`` for ``users`` in the sandbox: (the run's
        result with its costs, its validated ``(len(users), job.k)`` lists or None if it failed)."""
        inputs = self._inputs(job.stage, fit_data, users)
        run = sandbox_run(self.runner, run_dir, job.stage, job.code, inputs,
                          RunConfig(k=job.k, params=job.params, fidelity=job.fidelity, seed=job.seed),
                          job.limits)
        if run.outcome is not Outcome.COMPLETED:
            return failed_result(run), None
        try:
            recs = validate_recommendations(run_lists(run), users, fit_data.n_items,
                                            seen=_seen_matrix(self, fit_data))
        except InvalidRecommendationsError as e:
            return failed_result(run, Outcome.INVALID_OUTPUT, str(e)), None
        return EvaluationResult(
            outcome=Outcome.COMPLETED, tier=run.tier.value, metrics=_costs(run, len(users)),
            wall_seconds=run.wall_seconds, cpu_seconds=run.cpu_seconds, fit_seconds=run.fit_seconds,
            recommend_seconds=run.recommend_seconds, peak_memory_mb=run.peak_memory_mb,
            stderr_tail=run.stderr_tail), recs

    def _parts(self, stage: str):
        fit_name, target_name = _PARTS[stage]
        fit = self.split.train_plus_validation() if fit_name == "train_plus_validation" else self.split.part(fit_name)
        return fit, self.split.part(target_name)

    def _seen(self, stage: str, fit_data: Any):
        """Users x items matrix of the fitting data (cached per stage)."""
        return _seen_matrix(self, fit_data)

    def _users(self, job: EvaluationJob) -> np.ndarray:
        users = eval_users(self.split, _PARTS[job.stage][1])
        if job.user_fraction < 1.0 and len(users):
            rng = np.random.default_rng(job.seed)
            size = max(1, int(round(job.user_fraction * len(users))))
            users = np.sort(rng.choice(users, size=size, replace=False))
        return users.astype(np.int64)

    def _inputs(self, stage: str, fit_data: Any, users: np.ndarray) -> Path:
        """The read-only input folder of ``fit_data`` and ``users`` (built once, atomically)."""
        key = hashlib.sha256(f"{self.split.fingerprint}:{stage}:{len(fit_data)}".encode()
                             + users.tobytes()).hexdigest()[:20]
        folder = self.cache_dir / "inputs" / key
        if folder.exists():
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        fit_data.to_train_data().save(tmp)
        np.save(tmp / "users.npy", users, allow_pickle=False)
        for path in [tmp, *tmp.iterdir()]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        try:
            tmp.rename(folder)
        except OSError:  # another process won the race; its folder is identical
            shutil.rmtree(tmp, ignore_errors=True)
        return folder


def per_user_reward(report: Any, inner_reward: str) -> np.ndarray:
    """Per-user values of the inner reward, e.g. ``ndcg@10`` -> ``report.per_user['ndcg@10']``.

    A reward named at another cut-off than the run's ``k`` uses the run's: ``ndcg@10``
    with k=20 is ``ndcg@20``. Raises ``UnknownRewardError`` for a metric the harness lacks.
    """
    if inner_reward in report.per_user:
        return np.asarray(report.per_user[inner_reward], dtype=np.float64)
    at_k = f"{inner_reward.split('@')[0]}@{report.k}"
    if at_k in report.per_user:
        return np.asarray(report.per_user[at_k], dtype=np.float64)
    raise UnknownRewardError(f"unknown inner reward {inner_reward!r}: use one of {sorted(report.per_user)}")


class UnknownRewardError(SandboxError):
    """An agent's inner reward names a metric the harness does not compute."""


def _costs(run: RunResult, n_users: int) -> dict[str, float]:
    """Fit time, inference latency per user and peak memory (timings reported by the entry)."""
    costs = {"wall_seconds": run.wall_seconds}
    if run.fit_seconds is not None:
        costs["fit_seconds"] = run.fit_seconds
    if run.recommend_seconds is not None and n_users:
        costs["latency_ms_per_user"] = 1000.0 * run.recommend_seconds / n_users
    if run.peak_memory_mb is not None:
        costs["peak_memory_mb"] = run.peak_memory_mb
    return costs


def _seen_matrix(evaluator: Evaluator, fit_data: Any):
    """The users x items matrix of ``fit_data``, cached per distinct fitting data."""
    key = (len(fit_data), int(fit_data.user.sum()), int(fit_data.item.sum()))
    if key not in evaluator._seen_cache:
        evaluator._seen_cache[key] = fit_data.to_train_data().matrix()
    return evaluator._seen_cache[key]


def sandbox_run(runner: Runner, run_dir: Path, stage: str, code: str, inputs: Path,
                config: RunConfig, limits: Limits) -> RunResult:
    """Run ``code`` on ``inputs`` in the sandbox: the candidate file and a fresh output
    folder in ``run_dir`` (``output-<stage>``), the run's logs saved next to them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    candidate = run_dir / "agent.py"
    candidate.write_text(code)
    output = run_dir / f"output-{stage}"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir()
    os.chmod(output, 0o777)  # the sandbox uid writes here
    run = runner.run(RunRequest(candidate=candidate, inputs=inputs, output=output,
                                config=config, limits=limits))
    _save_logs(run_dir, stage, run)
    return run


def run_lists(run: RunResult) -> np.ndarray:
    """The recommendations a COMPLETED run read (once) from its output."""
    if run.recommendations is None:
        raise SandboxError("the runner returned COMPLETED without its recommendations; a "
                           "Runner must set RunResult.recommendations (see sandbox.runner.models)")
    return run.recommendations


def failed_result(run: RunResult, outcome: Outcome | None = None, message: str | None = None) -> EvaluationResult:
    return EvaluationResult(
        outcome=outcome or run.outcome, tier=run.tier.value, wall_seconds=run.wall_seconds,
        cpu_seconds=run.cpu_seconds, fit_seconds=run.fit_seconds, peak_memory_mb=run.peak_memory_mb,
        error_type=run.error_type if outcome is None else "InvalidOutputError",
        message=message or run.message, traceback_tail=run.traceback_tail, stderr_tail=run.stderr_tail)


def _save_logs(run_dir: Path, stage: str, run: RunResult) -> None:
    (run_dir / f"{stage}.stdout.log").write_text(run.stdout_tail)
    (run_dir / f"{stage}.stderr.log").write_text(run.stderr_tail)
