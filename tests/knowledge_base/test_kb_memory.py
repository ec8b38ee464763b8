"""The in-memory store: the whole contract suite runs on it (``memory`` backend); here what
only it promises: private to its ``Store``, gone at close, threads take turns."""
from __future__ import annotations

import threading

from knowledge_base import AgentSpec, ExperimentDraft, Store

WRITES_PER_THREAD = 60


def _draft(session: str, i: int) -> ExperimentDraft:
    return ExperimentDraft(agent_name="pop", session_id=session, proposer="search",
                           code_hash=f"{session}-{i}", dataset_key="d")


def test_each_in_memory_store_is_its_own_database() -> None:
    with Store.in_memory() as first, Store.in_memory() as second:
        first.upsert_agent(AgentSpec(name="pop", family="popularity"))
        first.start_experiment(_draft("s", 0))
        assert [e.code_hash for e in first.list_experiments(limit=10)] == ["s-0"]
        assert second.list_experiments(limit=10) == []
        assert second.list_agents() == []
    with Store.open("sqlite://") as opened:
        assert opened.revision() is None, "sqlite:// is a new, empty database"


def test_threads_writing_at_once_lose_nothing() -> None:
    """The designer's parallel slots write from threads; one connection serves them all."""
    with Store.in_memory() as kb:
        kb.upsert_agent(AgentSpec(name="pop", family="popularity"))
        errors: list[BaseException] = []

        def write(session: str) -> None:
            try:
                for i in range(WRITES_PER_THREAD):
                    kb.start_experiment(_draft(session, i))
                    kb.list_experiments(agent_name="pop", limit=5)
            except BaseException as e:  # noqa: BLE001 - reported by the assertion below
                errors.append(e)

        threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        hashes = {e.code_hash for e in kb.list_experiments(limit=1000)}
        assert hashes == {f"t{n}-{i}" for n in range(4) for i in range(WRITES_PER_THREAD)}
