"""LORD++ levels against the R package onlineFDR's documented output, and the shared,
restart-proof stream of tests in the knowledge base."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal

import numpy as np
import pytest

from designer.error_control import Procedure, budget, gamma, lord_alpha
from knowledge_base.models import AgentSpec, ExperimentDraft
from knowledge_base.store import Store

# onlineFDR's LORD() example (version '++', alpha 0.05, w0 = alpha/10, random=FALSE):
# reference/LORD.md of dsrobertson/onlineFDR.
PVALUES = [2.90e-08, 0.06743, 0.01514, 0.08174, 0.00171, 3.60e-05, 0.79149, 0.27201,
           0.28295, 7.59e-08, 0.69274, 0.30443, 0.00136, 0.72342, 0.54757]
ALPHAS = [0.0002675839, 0.0024664457, 0.0005732818, 0.0004872805, 0.0004059066,
          0.0003447286, 0.0029745013, 0.0008450114, 0.0007305648, 0.0006243143,
          0.0032185913, 0.0010617227, 0.0009256825, 0.0008019657, 0.0007059610]
REJECTED = [1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]


def test_lord_plus_plus_levels_match_onlineFDR():
    discoveries: list[int] = []
    for t, p in enumerate(PVALUES, start=1):
        level = lord_alpha(t, discoveries, alpha=0.05, w0=0.005)
        assert level == pytest.approx(ALPHAS[t - 1], rel=1e-6)
        if p <= level:
            discoveries.append(t)
    assert [int(t in discoveries) for t in range(1, 16)] == REJECTED


def test_gamma_is_non_increasing_and_its_partial_sums_stay_below_one():
    g = gamma(np.arange(1, 2_000_001))           # the full series sums to ~1, very slowly
    assert 0.5 < g.sum() < 1.0
    assert np.all(np.diff(g) <= 0)


def test_no_discovery_means_the_whole_stream_spends_at_most_w0():
    proc = Procedure(alpha=0.05)
    spent = sum(lord_alpha(t, [], 0.05, proc.initial_wealth) for t in range(1, 10_001))
    assert spent <= proc.initial_wealth


def _draft(agent: str, i: int) -> ExperimentDraft:
    return ExperimentDraft(agent_name=agent, session_id="s", proposer="search", proposal={},
                           family="ease", params={}, code_hash=f"h{i}", dataset_key="d", stage="full")


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'kb.db'}")
    s.upgrade()
    s.upsert_agent(AgentSpec(name="recommender", family="ease"))
    yield s
    s.close()


def _test(store, proc, exp_id, p):
    return store.record_error_control_test("recommender", exp_id, p, True, proc.next_alpha,
                                           proc.name, proc.alpha, proc.initial_wealth)


def test_the_stream_in_the_knowledge_base_reproduces_the_reference(store):
    proc = Procedure()
    for i, p in enumerate(PVALUES):
        exp = store.start_experiment(_draft("recommender", i))
        test = _test(store, proc, exp.id, p)
        assert test.seq == i + 1 and test.alpha == pytest.approx(ALPHAS[i], rel=1e-6)
        if test.passed:
            store.set_discovery(test.id, True)
    again = _test(store, proc, exp.id, 0.9)                     # idempotent per experiment
    assert again.seq == 15 and again.p_value == PVALUES[-1]
    state = budget(proc, store.list_error_control_tests("recommender"))
    assert state.tests == 15 and state.discoveries == 3
    assert state.alpha_spent == pytest.approx(sum(ALPHAS), rel=1e-6)


def _worker(url: str, ids: list[int], ready, kill_after: int | None) -> None:
    s = Store.open(url)
    proc = Procedure()
    ready.wait()
    for n, exp_id in enumerate(ids):
        if kill_after is not None and n == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        s.record_error_control_test("recommender", exp_id, 0.5, True, proc.next_alpha,
                                    proc.name, proc.alpha, proc.initial_wealth)


def test_two_sessions_share_one_budget_and_a_killed_one_loses_nothing(store, tmp_path):
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    ids = [store.start_experiment(_draft("recommender", i)).id for i in range(40)]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    workers = [ctx.Process(target=_worker, args=(url, ids[0::2], ready, None)),
               ctx.Process(target=_worker, args=(url, ids[1::2], ready, 12))]
    for w in workers:
        w.start()
    ready.set()
    for w in workers:
        w.join(60)
    assert workers[1].exitcode == -signal.SIGKILL
    tests = store.list_error_control_tests("recommender")
    assert [t.seq for t in tests] == list(range(1, 33))        # 20 + 12, no gap, no duplicate
    proc = Procedure()
    assert [t.alpha for t in tests] == pytest.approx([lord_alpha(t, [], 0.05, 0.005) for t in range(1, 33)])
    # a restarted session continues the same stream
    follow = _test(Store.open(url), proc, ids[-1], 0.5)
    assert follow.seq == 33
