"""Contract: experiments, pagination and filters, resume, per-user scores, sealed test."""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC

import numpy as np
import pytest

from knowledge_base import (
    ExperimentDraft,
    ExperimentResult,
    ExperimentStatus,
    NotFoundError,
    PromotionState,
    Store,
)

Draft = Callable[..., ExperimentDraft]
DONE = ExperimentResult(status=ExperimentStatus.COMPLETED, metrics={"ndcg@10": 0.25})


def test_experiment_lifecycle_round_trip(store: Store, agent: str, draft: Draft) -> None:
    started = store.start_experiment(draft(proposal={"kind": "search", "why": "é ✓"},
                                           params={"k": 3}))
    assert (started.status, started.promotion) == (
        ExperimentStatus.RUNNING, PromotionState.NONE)
    assert started.finished_at is None and started.created_at.tzinfo == UTC

    result = ExperimentResult(
        status=ExperimentStatus.COMPLETED, metrics={"ndcg@10": 0.3, "novelty": math.nan},
        segments={"cold": {"ndcg@10": 0.1}}, inner_reward=0.3, outer_reward=0.7,
        fit_seconds=1.5, wall_seconds=2.0, peak_memory_mb=64.0, sandbox_tier="process",
    )
    store.finish_experiment(started.id, result)
    store.set_promotion(started.id, PromotionState.PENDING_REVIEW, p_value=0.01,
                        effect_size=0.02)
    got = store.get_experiment(started.id)
    assert got.proposal == {"kind": "search", "why": "é ✓"} and got.params == {"k": 3}
    assert got.segments == {"cold": {"ndcg@10": 0.1}} and math.isnan(got.metrics["novelty"])
    assert (got.outer_reward, got.sandbox_tier, got.p_value) == (0.7, "process", 0.01)
    assert got.promotion is PromotionState.PENDING_REVIEW
    assert got.finished_at is not None and got.finished_at >= got.created_at


def test_unknown_agent_or_experiment_raises_not_found(store: Store, draft: Draft) -> None:
    with pytest.raises(NotFoundError, match="pop"):
        store.start_experiment(draft())
    with pytest.raises(NotFoundError, match="42"):
        store.get_experiment(42)
    with pytest.raises(NotFoundError):
        store.finish_experiment(42, DONE)
    with pytest.raises(NotFoundError):
        store.set_promotion(42, PromotionState.APPROVED)


def test_finishing_as_running_is_refused(store: Store, agent: str, draft: Draft) -> None:
    exp = store.start_experiment(draft())
    with pytest.raises(ValueError):
        store.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.RUNNING))


def test_keyset_pagination_walks_every_row_once(
    store: Store, agent: str, draft: Draft
) -> None:
    ids = [store.start_experiment(draft(code_hash=f"h{i}")).id for i in range(23)]
    seen, cursor = [], None
    while page := store.list_experiments(agent_name=agent, limit=10, before_id=cursor):
        seen += [e.id for e in page]
        cursor = page[-1].id
    assert seen == sorted(ids, reverse=True)
    oldest = store.list_experiments(agent_name=agent, limit=5, newest_first=False,
                                    after_id=ids[4])
    assert [e.id for e in oldest] == ids[5:10]


def test_filters_combine(store: Store, agent: str, draft: Draft) -> None:
    a = store.start_experiment(draft(stage="cheap", family="als", dataset_key="d1"))
    b = store.start_experiment(draft(stage="full", dataset_key="d2"))
    c = store.start_experiment(draft(stage="full", dataset_key="d1"))
    store.finish_experiment(a.id, DONE)
    store.finish_experiment(b.id, ExperimentResult(status=ExperimentStatus.TIMED_OUT))
    store.set_promotion(a.id, PromotionState.SCREENED_OUT)

    def ids(**filters: object) -> list[int]:
        return [e.id for e in store.list_experiments(**filters)]  # type: ignore[arg-type]

    assert ids(status=ExperimentStatus.RUNNING) == [c.id]
    assert ids(status=[ExperimentStatus.COMPLETED, "TIMED_OUT"]) == [b.id, a.id]
    assert ids(promotion=PromotionState.SCREENED_OUT) == [a.id]
    assert ids(dataset_key="d1", stage="full") == [c.id]
    assert ids(family="als") == [a.id]
    assert ids(agent_name="other") == []
    assert store.count_experiments(agent_name=agent) == 3
    assert store.count_experiments(status=[ExperimentStatus.RUNNING,
                                           ExperimentStatus.TIMED_OUT]) == 2


def test_find_experiment_sees_only_finished_runs(store: Store, agent: str, draft: Draft) -> None:
    key = ("pop", "synthetic/user_temporal", "h0", "full")
    running = store.start_experiment(draft())
    assert store.find_experiment(*key) is None
    store.interrupt_running(agent)
    assert store.find_experiment(*key) is None  # interrupted runs are retried
    failed = store.start_experiment(draft())
    store.finish_experiment(failed.id, ExperimentResult(status=ExperimentStatus.FAILED))
    found = store.find_experiment(*key)
    assert found is not None and found.id == failed.id != running.id
    assert store.find_experiment("pop", "synthetic/user_temporal", "h0", "cheap") is None


def test_interrupt_running_spares_the_live_session(
    store: Store, agent: str, draft: Draft
) -> None:
    dead = [store.start_experiment(draft(session_id="dead")).id for _ in range(2)]
    live = store.start_experiment(draft(session_id="live")).id
    done = store.start_experiment(draft(session_id="dead")).id
    store.finish_experiment(done, DONE)

    assert store.interrupt_running(agent, exclude_session="live") == dead
    assert store.get_experiment(dead[0]).status is ExperimentStatus.INTERRUPTED
    assert store.get_experiment(live).status is ExperimentStatus.RUNNING
    assert store.get_experiment(done).status is ExperimentStatus.COMPLETED
    assert store.interrupt_running(agent, exclude_session="live") == []


def test_user_scores_round_trip_exactly(store: Store, agent: str, draft: Draft) -> None:
    exp = store.start_experiment(draft())
    users = np.arange(5000, dtype=np.int32) * 3
    scores = np.random.default_rng(0).random(5000)
    store.put_user_scores(exp.id, users, scores)
    got_users, got_scores = store.get_user_scores(exp.id)
    assert got_users.dtype == np.int64 and got_scores.dtype == np.float64
    np.testing.assert_array_equal(got_users, users)
    np.testing.assert_array_equal(got_scores, scores)
    store.put_user_scores(exp.id, users[:2], scores[:2])  # replaces
    assert len(store.get_user_scores(exp.id)[0]) == 2


def test_user_scores_errors(store: Store, agent: str, draft: Draft) -> None:
    exp = store.start_experiment(draft())
    with pytest.raises(NotFoundError, match=str(exp.id)):
        store.get_user_scores(exp.id)
    with pytest.raises(ValueError):
        store.put_user_scores(exp.id, np.arange(3), np.ones(4))
    with pytest.raises(NotFoundError):
        store.put_user_scores(exp.id + 1, np.arange(3), np.ones(3))


def test_sealed_test_metrics_are_kept_apart(store: Store, agent: str, draft: Draft) -> None:
    exp = store.start_experiment(draft())
    store.finish_experiment(exp.id, DONE)
    assert store.get_test_metrics(exp.id) is None
    store.set_test_metrics(exp.id, {"ndcg@10": 0.9}, {"cold": {"ndcg@10": 0.5}})
    assert store.get_test_metrics(exp.id) == {
        "metrics": {"ndcg@10": 0.9}, "segments": {"cold": {"ndcg@10": 0.5}}, "verdict": None}
    store.set_test_verdict(exp.id, {"vetoed": True, "delta": -0.1})
    assert store.get_test_metrics(exp.id)["verdict"] == {"vetoed": True, "delta": -0.1}
    assert store.get_experiment(exp.id).metrics == {"ndcg@10": 0.25}  # validation only
    assert store.get_experiment(exp.id).evidence is None               # the verdict stays sealed
    with pytest.raises(NotFoundError):
        store.set_test_metrics(exp.id + 1, {}, {})
    with pytest.raises(NotFoundError):
        store.set_test_verdict(exp.id + 1, {})


def test_filters_by_session_proposer_dataset_prefix_and_order_by_reward(store: Store, agent: str,
                                                                         draft: Draft) -> None:
    """What `history --session/--proposer/--dataset/--sort reward` ask for, on every backend."""
    def run(session: str, proposer: str, dataset: str, reward: float | None) -> int:
        exp = store.start_experiment(draft(session_id=session, proposer=proposer, dataset_key=dataset))
        store.finish_experiment(exp.id, ExperimentResult(
            status=ExperimentStatus.COMPLETED if reward is not None else ExperimentStatus.FAILED,
            inner_reward=reward))
        return exp.id
    low = run("s1", "search", "synthetic/user_temporal/a", 0.1)
    high = run("s1", "llm", "synthetic/user_temporal/b", 0.3)
    failed = run("s2", "search", "ml-100k/user_temporal/c", None)
    mid = run("s2", "search", "100%_/weird", 0.2)

    def ids(**kw) -> list[int]:
        return [e.id for e in store.list_experiments(agent_name=agent, **kw)]
    assert ids(session_id="s1") == [high, low]
    assert ids(proposer="llm") == [high]
    assert ids(dataset_prefix="synthetic/") == [high, low]
    assert ids(dataset_prefix="100%_") == [mid] and ids(dataset_prefix="100") == [mid]
    assert ids(dataset_prefix="1_0") == []          # LIKE wildcards are matched literally
    assert ids(by_reward=True) == [high, mid, low, failed]   # no reward: last
    assert ids(by_reward=True, session_id="s2", limit=1) == [mid]
