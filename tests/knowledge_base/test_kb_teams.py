"""Contract: several processes (other machines) share one knowledge base for the same agent.

Exactly one champion at every moment, releases atomic against the champion they were judged
with, versions that keep their code, and liveness by heartbeat (every backend).
"""
from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from knowledge_base import ConflictError, ExperimentStatus, NotFoundError, Store
from knowledge_base.models import VersionDraft
from knowledge_base.rows import AgentVersionRow, DesignSessionRow

RELEASES_PER_PROCESS = 25


def _draft(parent: int | None = None, code_hash: str = "c1") -> VersionDraft:
    return VersionDraft(family="popularity", params={"k": 1}, code_hash=code_hash,
                        manifest={"family": "popularity", "test": {"ndcg@10": 0.5}},
                        parent_version_id=parent)


def _champions(store: Store, agent: str) -> int:
    with store._engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(AgentVersionRow).where(
            AgentVersionRow.agent_name == agent, AgentVersionRow.is_champion)) or 0)


def _url(store: Store) -> str:
    return store._engine.url.render_as_string(hide_password=False)


def test_the_index_refuses_a_second_champion(store: Store, agent: str) -> None:
    v1 = store.add_version(agent, 1, "a", "popularity", {})
    store.add_version(agent, 2, "b", "popularity", {}, make_champion=False)
    with pytest.raises(ConflictError):
        with store._write() as session:
            session.execute(update(AgentVersionRow).where(AgentVersionRow.number == 2).values(is_champion=True))
    assert store.champion(agent) == v1 and _champions(store, agent) == 1


def test_release_takes_the_next_number_keeps_the_code_and_becomes_champion(store: Store, agent: str) -> None:
    store.put_code("c1", "class Agent: ...\n")
    v1 = store.first_version(agent, _draft())
    v2 = store.release_version(agent, _draft(parent=v1.id), require_champion=v1.id)
    assert (v1.number, v2.number, v2.tag, v2.code_hash, v2.git_sha) == (1, 2, f"{agent}/v2", "c1", "")
    assert store.champion(agent) == v2 and _champions(store, agent) == 1
    assert store.get_version_manifest(v2.id) == {"family": "popularity", "test": {"ndcg@10": 0.5}}
    assert "manifest" not in v2.model_dump(), "the manifest (sealed test metrics) must not reach proposers"
    assert store.get_code(v2.code_hash) == "class Agent: ...\n"
    assert store.fill_version(v2.id, git_sha="abc").git_sha == "abc"
    assert store.fill_version(v2.id, git_sha="other", code_hash="c9").git_sha == "abc", "the first writer wins"
    assert store.get_version(agent, 2).code_hash == "c1"


def test_a_release_judged_against_a_replaced_champion_is_refused(store: Store, agent: str) -> None:
    v1 = store.first_version(agent, _draft())
    store.release_version(agent, _draft(parent=v1.id), require_champion=v1.id)  # another workspace
    with pytest.raises(ConflictError, match=f"champion of '{agent}' is now {agent}/v2"):
        store.release_version(agent, _draft(parent=v1.id), require_champion=v1.id)
    assert [v.number for v in store.list_versions(agent)] == [1, 2]
    with pytest.raises(ConflictError, match="is now"):
        store.claim_champion(agent, v1.id, replacing=v1.id)
    assert store.claim_champion(agent, v1.id, replacing=store.champion(agent).id) .number == 1
    with pytest.raises(NotFoundError):
        store.claim_champion(agent, 999, replacing=None)


def test_first_version_is_created_once(store: Store, agent: str) -> None:
    first = store.first_version(agent, _draft(code_hash="mine"))
    again = store.first_version(agent, _draft(code_hash="theirs"))
    assert again == first and len(store.list_versions(agent)) == 1


def _releaser(url: str, agent: str, outcome: "multiprocessing.Queue[tuple[int, int, list[str]]]") -> None:
    """A design process: releases against the champion it read, as approvals do."""
    released = refused = 0
    other: list[str] = []
    with Store.open(url) as kb:
        for _ in range(RELEASES_PER_PROCESS):
            champion = kb.champion(agent)
            assert champion is not None
            try:
                kb.release_version(agent, _draft(parent=champion.id), require_champion=champion.id)
                released += 1
            except ConflictError as e:
                refused += 1
                if "is now" not in str(e):
                    other.append(str(e))
    outcome.put((released, refused, other))


@pytest.mark.processes
def test_concurrent_releases_keep_one_champion_and_a_chain_of_parents(store: Store, agent: str) -> None:
    """Two processes release as fast as they can while a third reader counts champions:
    exactly one at every observation, distinct numbers, and no two versions judged
    against the same champion (each version's parent is the one before it)."""
    store.first_version(agent, _draft())
    context = multiprocessing.get_context("spawn")
    outcome = context.Queue()
    workers = [context.Process(target=_releaser, args=(_url(store), agent, outcome)) for _ in range(2)]
    for worker in workers:
        worker.start()
    observed = set()
    while any(worker.is_alive() for worker in workers):
        observed.add(_champions(store, agent))
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0, "a releasing process failed (see its stderr)"
    results = [outcome.get(timeout=10) for _ in workers]
    observed.add(_champions(store, agent))

    assert observed == {1}, f"champions seen at some moment: {sorted(observed)}"
    assert not [e for _, _, others in results for e in others], "refusals must name the new champion"
    versions = store.list_versions(agent)
    assert len(versions) == 1 + sum(released for released, _, _ in results)
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    assert [v.parent_version_id for v in versions[1:]] == [v.id for v in versions[:-1]]
    assert store.champion(agent) == versions[-1]


# ---- liveness ----------------------------------------------------------------------------

def _running(store: Store, draft, session_id: str) -> int:
    return store.start_experiment(draft(session_id=session_id, code_hash=session_id)).id


def _age(store: Store, session_id: str, seconds: float) -> None:
    with store._write() as session:
        row = session.get(DesignSessionRow, session_id)
        row.heartbeat_at = row.heartbeat_at - timedelta(seconds=seconds)


def test_only_runs_of_silent_sessions_are_interrupted(store: Store, agent: str, draft) -> None:
    store.heartbeat("alive", agent)
    store.heartbeat("silent", agent)
    _age(store, "silent", 121)
    alive, silent, never = (_running(store, draft, s) for s in ("alive", "silent", "never-beat"))
    mine = _running(store, draft, "me")

    assert store.interrupt_running(agent, exclude_session="me") == sorted([silent, never])
    status = {i: store.get_experiment(i).status for i in (alive, silent, never, mine)}
    assert status == {alive: ExperimentStatus.RUNNING, silent: ExperimentStatus.INTERRUPTED,
                      never: ExperimentStatus.INTERRUPTED, mine: ExperimentStatus.RUNNING}
    assert {s.session_id for s in store.live_sessions(agent)} == {"alive", "me"}, \
        "the sweeping session is alive by definition"

    _age(store, "alive", 119)
    assert store.interrupt_running(agent, exclude_session="me") == []
    _age(store, "alive", 2)
    assert store.interrupt_running(agent, exclude_session="other") == [alive]
    assert store.get_experiment(mine).status is ExperimentStatus.RUNNING, "`me` beat a moment ago"


def test_a_heartbeat_keeps_one_row_per_session_on_the_database_clock(store: Store, agent: str) -> None:
    first = store.heartbeat("s1", agent)
    second = store.heartbeat("s1", agent)
    assert (second.started_at, second.host, second.pid) == (first.started_at, first.host, first.pid)
    assert second.heartbeat_at >= first.heartbeat_at and second.heartbeat_at.tzinfo == UTC
    with store._engine.connect() as connection:
        server_now = connection.scalar(text("SELECT CURRENT_TIMESTAMP"))
    if isinstance(server_now, datetime):  # PostgreSQL: the server's clock, not this machine's
        assert abs(server_now.astimezone(UTC) - second.heartbeat_at) < timedelta(seconds=5)
    assert len(store.live_sessions(agent)) == 1


def test_a_session_killed_on_this_host_is_dead_at_once(store, agent, draft):
    """Its heartbeat is fresh, but its process is gone: its runs are interrupted now."""
    import subprocess
    import sys
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(child.stdout)
    store.heartbeat("killed", agent)
    store.heartbeat("alive", agent)                           # this process: alive
    killed, alive = _running(store, draft, "killed"), _running(store, draft, "alive")
    with store._write() as session:                          # the killed process's beat, with its pid
        session.execute(update(DesignSessionRow).where(DesignSessionRow.session_id == "killed")
                        .values(pid=gone))
    assert store.interrupt_running(agent, exclude_session="me") == [killed]
    assert store.get_experiment(alive).status is ExperimentStatus.RUNNING
