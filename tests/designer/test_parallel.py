"""Several candidates in flight: evaluations overlap, nothing is evaluated twice, and
judging stays serial against the champion at judging time; sandbox slots are claimed
across threads and processes."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from designer.executor import SlotPool
from designer.proposal import Proposal, ProposalKind
from designer.proposers.search import SearchProposer
from knowledge_base.models import PromotionState

from designer.settings import DesignSettings
from designer.workspace import Workspace
from knowledge_base.store import Store
from tests.designer.conftest import FakeExecutor, publish_builtins
from tests.designer.test_loop import by_family, family_of, make_loop


class SlowExecutor(FakeExecutor):
    """A fake executor whose runs take time and that counts how many overlap."""

    def __init__(self, reward_of, seconds=0.15):
        super().__init__(reward_of)
        self.seconds, self.active, self.most = seconds, 0, 0
        self.lock = threading.Lock()

    def evaluate(self, job, run_dir):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(self.seconds)
            return super().evaluate(job, run_dir)
        finally:
            with self.lock:
                self.active -= 1


class Sequence:
    """The same list of proposals, in order, whatever the history."""

    name = "sequence"

    def __init__(self, items):
        self.items, self.i = items, 0

    def propose(self, context):
        family, params = self.items[self.i % len(self.items)]
        self.i += 1
        return Proposal(proposer="sequence", kind=ProposalKind.FAMILY_SWITCH, family=family, params=params)


PLAN = [("itemknn", {}), ("ials", {}), ("bpr", {}), ("ease", {}), ("mmr", {}), ("sasrec", {})]


def _versions(store):
    return [(v.number, v.family) for v in store.list_versions("recommender")]


def test_two_workers_overlap_and_promote_like_a_serial_run(store, releaser, families, settings, workspace):
    executor = SlowExecutor(by_family, 0.5)   # long enough that the next proposal starts before it ends
    loop = make_loop(store, releaser, families, settings, workspace, executor, proposer=Sequence(PLAN))
    summary = loop.run(iterations=len(PLAN), workers=2)
    assert executor.most == 2                               # two runs at once
    keys = [(e.stage, e.code_hash) for e in store.list_experiments(agent_name="recommender", limit=500)]
    assert len(keys) == len(set(keys))                      # nothing evaluated twice
    champions = [v for v in store.list_versions("recommender") if v.is_champion]
    assert len(champions) == 1 and champions[0].family == "ease"
    for exp in store.list_experiments(agent_name="recommender", stage="full", limit=100):
        if exp.evidence:                                    # judged against the champion of that moment
            parent = store.get_version_by_id(exp.parent_version_id)
            assert exp.evidence["parent_version"] == parent.tag
    assert summary.iterations == len(PLAN)


def _serial_and_parallel(tmp_path, families, plan, executor):
    """The versions a serial and a 2-worker run of ``plan`` release, each in a fresh workspace."""
    outcomes = []
    for workers in (1, 2):
        ws = Workspace.create(tmp_path / f"ws{workers}")
        store = Store.open(ws.db_url)
        store.upgrade()
        releaser = publish_builtins(store, ws, families)
        loop = make_loop(store, releaser, families, DesignSettings(workspace=ws.root), ws,
                         executor(), proposer=Sequence(plan))
        loop.run(iterations=len(plan), workers=workers)
        outcomes.append(_versions(store))
        store.close()
    return outcomes


def test_serial_and_parallel_runs_promote_the_same_versions(tmp_path, families):
    plan = [("itemknn", {}), ("ials", {}), ("recency_ease", {}), ("bpr", {})]
    outcomes = _serial_and_parallel(tmp_path, families, plan, lambda: SlowExecutor(by_family, 0.05))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == (1, "popularity") and outcomes[0][-1][1] == "recency_ease"


def test_search_does_not_propose_what_is_in_flight(store, releaser, families, settings, workspace):
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(by_family))
    loop.run(iterations=10)
    incumbent = loop.incumbent()
    proposer = SearchProposer(seed=3)
    first = proposer.propose(loop._context(incumbent))
    pending = [first]
    for _ in range(3):
        nxt = proposer.propose(loop._context(incumbent).model_copy(update={"pending": pending}))
        assert all((nxt.family, nxt.params) != (p.family, p.params) for p in pending)
        pending.append(nxt)


def test_slots_are_claimed_across_threads_and_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTICRS_SLOT_DIR", str(tmp_path))
    monkeypatch.setenv("AGENTICRS_SANDBOX_STATE", str(tmp_path / "runs"))   # no other run's locks
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open('{tmp_path}/slot-0.claim', os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(30)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        messages = []
        pool = SlotPool(2, on_wait=messages.append, poll=0.05)
        with pool.claim() as slot:
            assert slot == 1                                 # slot 0 is another process's
            got = []
            waiter = threading.Thread(target=lambda: got.append(pool.claim().__enter__()))
            waiter.start()
            time.sleep(0.3)
            assert not got and messages == ["waiting for a sandbox slot: 2 runs in progress"]
        waiter.join(5)
        assert got == [1] and len(messages) == 1             # told once, then it ran
    finally:
        holder.kill()
        holder.wait()


class FirstIsSlowest(SlowExecutor):
    """The earliest proposal's runs take longest: results complete in reverse order."""

    def evaluate(self, job, run_dir):
        self.seconds = 0.4 if "itemknn" in job.code else 0.01
        return super().evaluate(job, run_dir)


def test_results_that_finish_out_of_order_are_judged_in_proposal_order(tmp_path, families):
    outcomes = _serial_and_parallel(tmp_path, families, [("itemknn", {}), ("ials", {})],
                                    lambda: FirstIsSlowest(by_family))
    assert outcomes[0] == outcomes[1] == [(1, "popularity"), (2, "itemknn"), (3, "ials")]
