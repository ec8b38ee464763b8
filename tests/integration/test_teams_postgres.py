"""Teams on one knowledge base: several workspaces (each its own agents repository, other
machines in real life) design the same agent on one PostgreSQL database.

The knowledge base is the source of truth for versions; each repository is a replica that
converges (``reconcile``), never the reason to delete a row. The replica tests run on SQLite
too (same contract); the two-process test needs the real server and the sandbox.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from designer.builtin_agents import builtin_specs
from designer.errors import UsageError, VersionError
from designer.families import load_families
from designer.liveness import Heartbeat
from designer.loop import DesignLoop
from designer.proposers.search import SearchProposer
from designer.settings import DesignSettings
from designer.release import Releaser
from designer.versions import AgentRepository
from designer.workspace import Workspace
from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.models import ExperimentDraft, ExperimentResult, ExperimentStatus, PromotionState
from knowledge_base.store import Store
from tests.designer.conftest import FakeExecutor
from tests.integration.clirun import BIN, cli

AGENT = "recommender"
KEY = "fake/user_temporal/000000000000"


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)])
def kb_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kb.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture()
def store(kb_url: str):
    kb = Store.open(kb_url)
    kb.upgrade()
    yield kb
    kb.close()


def workspace(store: Store, folder: Path) -> Releaser:
    """A workspace's releaser initialised the way `agenticrs init` does it."""
    families = load_families()
    releaser = Releaser(store, AgentRepository.init(folder / "agents"))
    for spec in builtin_specs(families):
        store.upsert_agent(spec)
        releaser.reconcile(spec.name)
        if not store.list_versions(spec.name):
            family = families[spec.family]
            releaser.publish_initial(spec.name, spec.family, family.defaults(), family.render(family.defaults()))
    return releaser


def pending(store: Store, h: str, code: str | None = None) -> int:
    """A candidate judged better than the champion, waiting for approval."""
    parent = store.champion(AGENT)
    store.put_code(h, code or f"class Agent:  # {h}\n    pass\n")
    exp = store.start_experiment(ExperimentDraft(agent_name=AGENT, session_id="s", proposer="search", family="ease",
                                                 params={"l2": len(h)}, code_hash=h, dataset_key=KEY,
                                                 parent_version_id=parent.id))
    store.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.COMPLETED, inner_reward=0.3))
    return store.set_promotion(exp.id, PromotionState.PENDING_REVIEW, 0.001, 0.05).id


def code_at(releaser: Releaser, number: int) -> str:
    return releaser.repo.read_version(AGENT, number).code


def ids(store: Store) -> dict[int, int]:
    return {v.number: v.id for v in store.list_versions(AGENT)}


# ---- replicas ----------------------------------------------------------------------------

def test_a_second_workspace_replicates_the_versions_and_both_converge(store, tmp_path):
    a = workspace(store, tmp_path / "a")
    a.approve(pending(store, "h2"))
    rows = ids(store)
    b = workspace(store, tmp_path / "b")  # `init` on a knowledge base the first one populated
    assert ids(store) == rows, "the rows (and the experiments' parent ids) are never recreated"
    assert b.repo.version_shas(AGENT).keys() == {1, 2} and b.repo.champion_number(AGENT) == 2
    assert [code_at(b, n) for n in (1, 2)] == [code_at(a, n) for n in (1, 2)]

    b.approve(pending(store, "h3"))  # promoted in b: a rebuilds it
    report = a.reconcile(AGENT, repair=True)
    assert report.rebuilt == [f"{AGENT}/v3"] and report.champion_fixed == f"{AGENT}/v3"
    assert code_at(a, 3) == code_at(b, 3) and a.repo.champion_number(AGENT) == 3
    for releaser in (a, b):
        assert releaser.reconcile(AGENT, repair=True).describe() == "consistent"
    assert store.champion(AGENT).number == 3 and ids(store) == {**rows, 3: ids(store)[3]}


def test_a_version_promoted_elsewhere_mid_session_is_rebuilt_on_first_read(store, tmp_path):
    a, b = workspace(store, tmp_path / "a"), workspace(store, tmp_path / "b")
    a.approve(pending(store, "h2"))
    champion = store.champion(AGENT)
    # what the loop's incumbent() does in b when the champion changed: read it from the replica
    assert b.repo.read_version(AGENT, champion.number).code == code_at(a, 2)
    assert b.repo.champion_number(AGENT) == 1, "rebuilding does not move the alias; reconcile does"
    assert b.reconcile(AGENT).champion_fixed == f"{AGENT}/v2"


def test_a_stale_local_champion_tag_never_resets_the_shared_champion(store, tmp_path):
    a, b = workspace(store, tmp_path / "a"), workspace(store, tmp_path / "b")
    b.approve(pending(store, "h2"))
    assert a.repo.champion_number(AGENT) == 1  # a's alias is stale
    a.reconcile(AGENT, repair=True)
    assert store.champion(AGENT).number == 2 and a.repo.champion_number(AGENT) == 2


def test_approval_against_a_champion_replaced_by_the_other_workspace_is_refused(store, tmp_path):
    a, b = workspace(store, tmp_path / "a"), workspace(store, tmp_path / "b")
    mine, theirs = pending(store, "mine"), pending(store, "theirs")  # both judged against v1
    b.approve(theirs)
    with pytest.raises(UsageError, match=f"champion is now {AGENT}/v2"):
        a.approve(mine)
    assert [v.number for v in store.list_versions(AGENT)] == [1, 2] and store.champion(AGENT).number == 2
    assert store.get_experiment(mine).promotion is PromotionState.PENDING_REVIEW


def test_repair_sets_a_diverged_tag_aside_and_never_deletes_a_row(store, tmp_path):
    a = workspace(store, tmp_path / "a")
    a.approve(pending(store, "h2"))
    b = Releaser(store, AgentRepository.init(tmp_path / "b" / "agents"))
    b.repo.commit_version(AGENT, 2, "class Agent:  # written by an older, racing agenticrs\n    pass\n",
                          {"family": "ease"}, "old race")
    rows = ids(store)
    assert b.reconcile(AGENT).diverged == [f"{AGENT}/v2"] and code_at(b, 2) != code_at(a, 2)
    report = b.reconcile(AGENT, repair=True)
    assert report.diverged == [f"{AGENT}/v2"] and code_at(b, 2) == code_at(a, 2)
    assert any(t.name.startswith(f"{AGENT}/v2-diverged-") for t in b.repo.repo.tags), "the old commit is kept"
    assert ids(store) == rows and b.reconcile(AGENT, repair=True).describe() == "consistent"


def test_rows_from_before_0004_get_their_code_from_the_repository_that_has_it(store, tmp_path):
    a = workspace(store, tmp_path / "a")
    a.approve(pending(store, "h2"))
    with store._engine.begin() as connection:  # rows as 0003 code left them: no code in the KB
        connection.execute(text("UPDATE agent_versions SET code_hash = NULL, manifest = NULL"))
    b = Releaser(store, AgentRepository.init(tmp_path / "b" / "agents"))
    assert b.reconcile(AGENT, repair=True).missing == [f"{AGENT}/v1", f"{AGENT}/v2"]
    assert len(store.list_versions(AGENT)) == 2, "reported, never deleted"
    with pytest.raises(VersionError, match="knowledge base has no code for it: run `agenticrs agents check`"):
        b.repo.read_version(AGENT, 2)
    assert a.reconcile(AGENT).stored == [f"{AGENT}/v1", f"{AGENT}/v2"]
    assert b.reconcile(AGENT).rebuilt == [f"{AGENT}/v1", f"{AGENT}/v2"]
    assert code_at(b, 2) == code_at(a, 2) and b.repo.champion_number(AGENT) == 2


# ---- liveness ----------------------------------------------------------------------------

def _age_all(store: Store, seconds: int) -> None:
    interval = f"{seconds} seconds"
    with store._engine.begin() as connection:
        if store._engine.dialect.name == "postgresql":
            connection.execute(text(f"UPDATE design_sessions SET heartbeat_at = heartbeat_at - interval '{interval}'"))
        else:
            connection.execute(text(f"UPDATE design_sessions SET heartbeat_at = "
                                    f"strftime('%Y-%m-%d %H:%M:%f', heartbeat_at, '-{interval}')"))


def test_the_heartbeat_thread_keeps_a_long_run_alive_and_stops_with_the_session(store, tmp_path):
    workspace(store, tmp_path / "a")
    run = store.start_experiment(ExperimentDraft(agent_name=AGENT, session_id="long", proposer="search",
                                                 code_hash="x", dataset_key=KEY))
    with Heartbeat(store, "long", AGENT, every=0.05) as beating:
        _age_all(store, 600)  # as if the run had lasted 10 minutes since the last beat
        deadline = time.time() + 10
        while beating.beats < 3 and time.time() < deadline:
            time.sleep(0.02)
        assert store.interrupt_running(AGENT, exclude_session="other") == []
    assert beating.beats >= 3
    _age_all(store, 121)
    assert store.interrupt_running(AGENT, exclude_session="other") == [run.id]


@pytest.mark.parametrize("wired", [True, False], ids=["heartbeat", "no-heartbeat"])
def test_a_session_beating_through_a_long_run_is_not_interrupted_by_another(store, tmp_path, monkeypatch, wired):
    """The loop wrapped in ``Heartbeat`` (the wiring ``DesignLoop.run`` needs): its run,
    longer than the stale window, survives another session's start; unwrapped it does not."""
    monkeypatch.setattr("knowledge_base._experiments.STALE_AFTER_SECONDS", 0.6)
    ws = Workspace.create(tmp_path / "a")
    releaser = workspace(store, ws.root)
    in_run, calls = threading.Event(), []

    def slow_first(job):
        calls.append(job)
        if len(calls) == 1:  # the champion's baseline: longer than the stale window
            in_run.set()
            time.sleep(2.0)
        return 0.1
    loop = DesignLoop(store=store, proposer=SearchProposer(seed=1), executor=FakeExecutor(slow_first),
                      releaser=releaser, families=load_families(), agent_name=AGENT,
                      settings=DesignSettings(workspace=ws.root), workspace=ws)

    def session():
        with Heartbeat(store, loop.session_id, AGENT, every=0.1) if wired else contextlib.nullcontext():
            loop.run(iterations=1)
    thread = threading.Thread(target=session)
    thread.start()
    assert in_run.wait(timeout=60)
    time.sleep(1.0)
    interrupted = store.interrupt_running(AGENT, exclude_session="another")  # another session's resume
    thread.join(timeout=120)
    assert (interrupted == []) is wired, interrupted


def test_a_failed_beat_is_logged_and_the_session_goes_on(caplog):
    class Down:
        def heartbeat(self, *_a):
            raise KnowledgeBaseError("database unreachable")
    with caplog.at_level(logging.WARNING, logger="designer.liveness"):
        assert Heartbeat(Down(), "s", AGENT).beat() is False
    assert "heartbeat of session s failed" in caplog.text


# ---- two processes at once ----------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.parametrize("attempt", [1, 2])
def test_two_inits_at_once_on_an_empty_database_both_succeed(tmp_path, pg_schema_url, attempt):
    """Unserialised, the two schema upgrades (or the two built-in agents) collide most times."""
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    runs = [subprocess.Popen([str(BIN), "--workspace", str(tmp_path / f"ws{n}"), "--db", pg_schema_url, "init",
                              "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for n in (1, 2)]
    outputs = [p.communicate(timeout=300) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [err for _, err in outputs]
    inits = [json.loads(out) for out, _ in outputs]
    # one init creates the two built-in agents and the default pipeline, the other none
    assert sorted(len(i["created_agents"]) for i in inits) == [0, 3]
    with Store.open(pg_schema_url) as kb:
        assert [v.number for v in kb.list_versions(AGENT)] == [1] and kb.champion(AGENT).number == 1



SMALL = ["--dataset", "synthetic", "--n-users", "150", "--n-items", "80"]


def _observe(engine, seen: dict) -> None:
    """One look at the shared database while both sessions run."""
    with engine.connect() as connection:
        seen["champions"].add(connection.scalar(text(
            f"SELECT count(*) FROM agent_versions WHERE agent_name = '{AGENT}' AND is_champion")))
        seen["interrupted"] |= set(connection.execute(text(
            "SELECT id FROM experiments WHERE status = 'INTERRUPTED'")).scalars())
        seen["running"] |= set(connection.execute(text(
            "SELECT session_id FROM experiments WHERE status = 'RUNNING'")).scalars())


def _design(ws: Path, url: str, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    return subprocess.Popen([str(BIN), "--workspace", str(ws), "--db", url, "design", "--agent", AGENT,
                             "--iterations", "4", "--auto-approve", "--json", *SMALL],
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env | {"NO_COLOR": "1"})


@pytest.mark.postgres
@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_workspaces_design_the_same_agent_at_once_on_one_postgresql(tmp_path, pg_schema_url):
    """Two `design --auto-approve` processes, each with its own workspace and agents
    repository, on one database for one agent, at the same time: one champion at every
    observation, no duplicate version, no live run interrupted by the other, every
    experiment's parent an existing version, and both repositories hold every version."""
    ws = [tmp_path / "ws1", tmp_path / "ws2"]
    inits = [json.loads(cli(folder, "--db", pg_schema_url, "init", "--json").stdout) for folder in ws]
    assert inits[0]["created_agents"] and not inits[1]["created_agents"], "the second init reuses the KB's"
    assert f"{AGENT}/v1" in inits[1]["replicated_versions"]
    engine = create_engine(pg_schema_url)
    seen: dict = {"champions": set(), "interrupted": set(), "running": set()}
    logs = [tmp_path / "design1.log", tmp_path / "design2.log"]
    first = _design(ws[0], pg_schema_url, logs[0])
    deadline = time.time() + 300
    while not seen["running"]:  # the second starts while the first has a run in flight
        assert first.poll() is None and time.time() < deadline, logs[0].read_text()
        _observe(engine, seen)
        time.sleep(0.1)
    second = _design(ws[1], pg_schema_url, logs[1])
    while first.poll() is None or second.poll() is None:
        _observe(engine, seen)
        time.sleep(0.2)
    _observe(engine, seen)
    outputs = [p.communicate()[0] for p in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), "\n".join(log.read_text() for log in logs)
    summaries = [json.loads(out) for out in outputs]

    assert seen["champions"] == {1}, f"champion counts seen: {seen['champions']}"
    assert not seen["interrupted"], f"live runs marked INTERRUPTED: {seen['interrupted']}"
    assert not any("marked INTERRUPTED" in log.read_text() for log in logs)
    with engine.connect() as connection:
        numbers = connection.execute(text(
            f"SELECT number FROM agent_versions WHERE agent_name = '{AGENT}' ORDER BY number")).scalars().all()
        orphans = connection.execute(text(
            "SELECT e.id FROM experiments e LEFT JOIN agent_versions v ON v.id = e.parent_version_id "
            "WHERE e.parent_version_id IS NOT NULL AND v.id IS NULL")).scalars().all()
        statuses = set(connection.execute(text("SELECT DISTINCT status FROM experiments")).scalars())
    engine.dispose()
    assert numbers == list(range(1, len(numbers) + 1)), f"duplicate or missing versions: {numbers}"
    assert len(numbers) > 1 and sum(len(s["approved_versions"]) for s in summaries) == len(numbers) - 1
    assert not orphans and not statuses & {"RUNNING", "INTERRUPTED"}
    expected = {f"{AGENT}/v{n}" for n in numbers}
    for folder in ws:
        cli(folder, "agents", "check", "--repair")
        tags = set(subprocess.run(["git", "tag"], cwd=folder / "agents", capture_output=True, text=True,
                                  check=True).stdout.split())
        assert expected <= tags, f"{folder.name} lacks {expected - tags}"
        lines = cli(folder, "agents", "check").stderr.strip().splitlines()
        assert lines and all(line.endswith(": consistent") for line in lines), lines
    codes = [[subprocess.run(["git", "show", f"{tag}:{AGENT}/agent.py"], cwd=folder / "agents", capture_output=True,
                             text=True, check=True).stdout for tag in sorted(expected)] for folder in ws]
    assert codes[0] == codes[1], "both replicas hold the same code for every version"
    print(f"versions {numbers}, approved per session {[s['approved_versions'] for s in summaries]}, "
          f"iterations {[s['iterations'] for s in summaries]}, seconds {[s['elapsed_seconds'] for s in summaries]}, "
          f"champion counts seen {seen['champions']}, sessions seen running {len(seen['running'])}")
