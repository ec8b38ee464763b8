"""The loop keeps the champion's code and scores between calls, never past a change of champion."""
from __future__ import annotations

import numpy as np
import pytest

from designer.loop import DesignLoop
from designer.proposers.search import SearchProposer

from tests.designer.conftest import FakeExecutor
from tests.designer.test_loop import by_family


def make_loop(store, releaser, families, settings, workspace, executor):
    return DesignLoop(store=store, proposer=SearchProposer(seed=1), executor=executor, releaser=releaser,
                      families=families, agent_name="recommender", settings=settings, workspace=workspace,
                      auto_approve=True)


def test_the_incumbent_is_scored_and_read_once_while_the_champion_stays(store, releaser, families, settings,
                                                                         workspace):
    executor = FakeExecutor(by_family)
    loop = make_loop(store, releaser, families, settings, workspace, executor)
    first = loop.incumbent()
    reads = []
    original = releaser.repo.read_version
    releaser.repo.read_version = lambda *a, **kw: reads.append(a) or original(*a, **kw)
    again = loop.incumbent()
    assert again.experiment.id == first.experiment.id and len(executor.jobs) == 1 and not reads
    with pytest.raises(ValueError):   # shared between calls: nobody may change it in place
        again.rewards[0] = 1.0


def test_the_incumbent_follows_a_promotion_and_a_rollback(store, releaser, families, settings, workspace):
    loop = make_loop(store, releaser, families, settings, workspace, FakeExecutor(by_family))
    v1 = loop.incumbent()
    loop.run(iterations=6)
    promoted = store.champion("recommender")
    assert promoted.number > 1
    now = loop.incumbent()
    assert now.version.id == promoted.id and now.code == releaser.repo.read_version("recommender",
                                                                                    promoted.number).code
    assert now.experiment.id != v1.experiment.id
    assert not np.array_equal(now.rewards, v1.rewards)
    store.set_champion("recommender", v1.version.id)   # e.g. `agenticrs rollback` from another process
    back = loop.incumbent()
    assert back.version.id == v1.version.id and back.experiment.id == v1.experiment.id
    assert back.code == v1.code
