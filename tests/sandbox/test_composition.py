"""A pipeline evaluated in the real sandbox: the ranker learns from the past of train only,
and sources are fitted once per (code, params, split, stage) whatever else changes."""
from __future__ import annotations

import numpy as np
import pytest

from designer.families import load_families
from designer.pipelines.resolve import resolve
from designer.pipelines.spec import PipelineSpec
from sandbox.evaluation import EvaluationJob, Evaluator
from sandbox.harness import split_interactions
from sandbox.harness.datasets import load_dataset
from sandbox.limits import Limits
from sandbox.outcome import Outcome
from sandbox.runner import make_runner
from sandbox.sdk.agent_sdk import TrainData, ranker_window

FAMILIES = load_families()
LIMITS = Limits(wall_seconds=120, memory_mb=2048, threads=1)
SPEC = """
name: p
depth: 50
branches:
  - sources:
      - {family: popularity, quota: 30}
      - {family: itemknn, params: {neighbours: 50}, quota: 30}
    ranker: {family: fusion, params: {method: rrf}}
"""


def split_of(seed: int, tmp_path_factory):
    data = load_dataset("synthetic", seed=seed, n_users=300, n_items=200,
                        cache_dir=tmp_path_factory.mktemp("datasets"))
    return split_interactions(data, method="user_temporal")


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return split_of(0, tmp_path_factory)


@pytest.fixture(scope="module")
def runner():
    return make_runner(allow_insecure=True, slot=5)


def job_for(text: str, stage: str = "validation") -> EvaluationJob:
    spec = PipelineSpec.from_yaml(text)
    plan = resolve(spec, store=None, repo=None, families=FAMILIES)
    return EvaluationJob(code=spec.to_yaml(), stage=stage, k=10, seed=0, limits=LIMITS, pipeline=plan)


def evaluate(runner, split, cache, run, text):
    result = Evaluator(runner, split, cache).evaluate(job_for(text), run)
    assert result.outcome is Outcome.COMPLETED, result.message
    return result


def test_changing_only_the_ranker_reuses_the_sources_and_a_changed_source_or_split_refits(
        runner, split, tmp_path, tmp_path_factory):
    cache = tmp_path / "cache"
    first = evaluate(runner, split, cache, tmp_path / "a", SPEC)
    assert first.metrics["sources"] == 2 and first.metrics["sources_cached"] == 0
    assert 0 < first.inner_reward < 1 and first.metrics["latency_ms_per_user"] > 0
    assert first.metrics["inner/src1/recall@30"] > 0 and "inner/b0-ranker/ndcg@10" in first.metrics

    fused_differently = SPEC.replace("{method: rrf}", "{method: borda, w1: 0.3}").replace("quota: 30}\n    ranker", "quota: 10}\n    ranker")
    second = evaluate(runner, split, cache, tmp_path / "b", fused_differently)
    assert second.metrics["sources_cached"] == 2          # quotas and fusion changed: no refit
    assert not np.array_equal(second.user_rewards, first.user_rewards)

    other_source = SPEC.replace("neighbours: 50", "neighbours: 20")
    third = evaluate(runner, split, cache, tmp_path / "c", other_source)
    assert third.metrics["sources_cached"] == 1           # itemknn's params changed: it alone refits

    other_split = split_of(1, tmp_path_factory)
    fourth = evaluate(runner, other_split, cache, tmp_path / "d", SPEC)
    assert fourth.metrics["sources_cached"] == 0          # another split fingerprint: nothing reused


def leak_checking_ranker(validation_pairs: set[tuple[int, int]]) -> str:
    """A ranker that fails the run if validation interactions reach it, or if the window's
    labels are also in the prefix the sources were fitted on."""
    return f'''
import numpy as np

VALIDATION = {sorted(validation_pairs)!r}


class Agent:
    def __init__(self, **params):
        pass

    def fit(self, train, window):
        validation = set(map(tuple, VALIDATION))
        given = set(zip(train.user.tolist(), train.item.tolist()))
        if given & validation:
            raise RuntimeError(f"leak: {{len(given & validation)}} validation interactions in the ranker's data")
        positives = set()
        for r, u in enumerate(window.users.tolist()):
            for c in np.flatnonzero(window.labels[r] > 0):
                positives.add((u, int(window.items[r, c])))
        if not positives:
            raise RuntimeError("the window has no positive label: nothing to learn from")
        if positives & validation:
            raise RuntimeError("leak: a window label is a validation interaction")
        if positives & given:
            raise RuntimeError("leak: a window label is also in the prefix the ranker sees")

    def score(self, users, candidates):
        return candidates.features["rr_0"] + candidates.features["rr_1"]
'''


def test_the_ranker_never_sees_a_validation_interaction(runner, split, tmp_path):
    validation = set(zip(split.validation.user.tolist(), split.validation.item.tolist()))
    job = job_for(SPEC)
    ranker = job.pipeline.components[0]
    spied = ranker.model_copy(update={"code": leak_checking_ranker(validation), "params": {}})
    plan = job.pipeline.model_copy(update={"components": [spied]})
    result = Evaluator(runner, split, tmp_path / "cache").evaluate(job.model_copy(update={"pipeline": plan}),
                                                                    tmp_path / "run")
    assert result.outcome is Outcome.COMPLETED, result.message + result.stderr_tail[-2000:]


def test_the_ranker_window_holds_out_each_users_latest_train_interactions(split):
    train = split.train.to_train_data()
    held = ranker_window(train, 0.2)
    prefix_last = {}
    for u, t in zip(train.user[~held].tolist(), train.timestamp[~held].tolist()):
        prefix_last[u] = max(prefix_last.get(u, t), t)
    for u, t in zip(train.user[held].tolist(), train.timestamp[held].tolist()):
        assert t >= prefix_last[u]          # every held-out row is later than the user's prefix
    counts = np.bincount(train.user, minlength=train.n_users)
    held_counts = np.bincount(train.user[held], minlength=train.n_users)
    assert (held_counts[counts >= 2] >= 1).all() and (held_counts[counts < 2] == 0).all()
    assert (counts - held_counts >= 1)[counts >= 1].all()  # someone is always left to fit on
    assert isinstance(train, TrainData)
