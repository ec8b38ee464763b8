"""Several processes share one knowledge base; a write is all or nothing."""
from __future__ import annotations

import multiprocessing

import pytest

from knowledge_base import (
    AgentSpec,
    ExperimentDraft,
    ExperimentResult,
    ExperimentStatus,
    FailureDraft,
    FailureKind,
    Store,
)

EXPERIMENTS_PER_PROCESS = 200  # + a finish and a failure every third one: ~330 writes


def _writer(url: str, session_id: str) -> None:
    """A design process: starts experiments, finishes them, records failures, reads."""
    with Store.open(url) as kb:
        for i in range(EXPERIMENTS_PER_PROCESS):
            exp = kb.start_experiment(ExperimentDraft(
                agent_name="pop", session_id=session_id, proposer="search",
                code_hash=f"{session_id}-{i}", dataset_key="d"))
            if i % 3 == 0:
                kb.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.FAILED))
                kb.record_failure(FailureDraft(agent_name="pop", experiment_id=exp.id,
                                               kind=FailureKind.RUNTIME, message=str(i)))
            if i % 10 == 0:
                kb.list_experiments(agent_name="pop", limit=20)


@pytest.mark.processes
def test_two_processes_write_concurrently_without_losing_rows(store: Store) -> None:
    store.upsert_agent(AgentSpec(name="pop", family="popularity"))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(_raw_url(store), f"p{n}"))
               for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0, "a writer process failed (see its stderr)"

    assert store.count_experiments(agent_name="pop") == 2 * EXPERIMENTS_PER_PROCESS
    failed = 2 * len(range(0, EXPERIMENTS_PER_PROCESS, 3))
    assert store.count_experiments(status=ExperimentStatus.FAILED) == failed
    assert len(store.list_failures(limit=1000)) == failed
    hashes = {e.code_hash for e in store.list_experiments(limit=1000)}
    assert len(hashes) == 2 * EXPERIMENTS_PER_PROCESS


def _raw_url(store: Store) -> str:
    """The store's URL with its password (the tests' servers have none)."""
    return store._engine.url.render_as_string(hide_password=False)
