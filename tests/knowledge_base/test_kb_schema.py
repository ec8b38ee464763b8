"""Schema management: migrations (with data), schema checks, connection errors."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, text

from knowledge_base import (
    AgentSpec,
    DatabaseUnavailableError,
    ExperimentResult,
    ExperimentStatus,
    KnowledgeBaseError,
    NotFoundError,
    SchemaOutOfDateError,
    Store,
    default_url,
)
from knowledge_base.models import VersionDraft
from knowledge_base.rows import Base
from knowledge_base.schema import head_revision
from tests.knowledge_base.conftest import make_draft


def _insert_with_old_schema(url: str) -> None:
    """Write rows the way code at revision 0001 would (reflected tables, no ORM)."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        connection.execute(tables.tables["agents"].insert(), [{
            "name": "old", "role": "recommender", "family": "itemknn", "description": "",
            "interface": "", "inner_reward": "ndcg@10", "parameter_space": {"k": [10, 50]},
            "created_at": now}])
        connection.execute(tables.tables["experiments"].insert(), [{
            "agent_name": "old", "session_id": "s", "proposer": "search", "proposal": {},
            "family": "itemknn", "params": {"k": 10}, "code_hash": "h", "dataset_key": "d",
            "stage": "full", "status": "COMPLETED", "promotion": "APPROVED",
            "metrics": {"ndcg@10": 0.31}, "segments": {}, "inner_reward": 0.31,
            "created_at": now, "finished_at": now}])
    engine.dispose()


def test_upgrade_keeps_data_of_an_old_schema(store_url: str) -> None:
    with Store.open(store_url) as kb:
        kb.upgrade("0001")
        assert kb.revision() == "0001"
        with pytest.raises(SchemaOutOfDateError, match="agenticrs init"):
            kb.check_schema()
        _insert_with_old_schema(store_url)

        kb.upgrade()
        kb.check_schema()
        old = kb.list_experiments(agent_name="old")[0]
        assert (old.params, old.metrics, old.outer_reward) == ({"k": 10}, {"ndcg@10": 0.31}, None)
        assert kb.get_agent("old").parameter_space == {"k": [10, 50]}
        kb.finish_experiment(old.id, ExperimentResult(
            status=ExperimentStatus.COMPLETED, outer_reward=1.5, sandbox_tier="bwrap"))
        again = kb.get_experiment(old.id)
        assert (again.outer_reward, again.sandbox_tier) == (1.5, "bwrap")


def _tables(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        inspector = inspect(connection)
        found = {t: sorted(c["name"] for c in inspector.get_columns(t)) for t in inspector.get_table_names()}
    engine.dispose()
    return found


@pytest.mark.parametrize("start", [None, "0001"])
def test_upgrade_twice_is_a_no_op(store_url: str, start: str | None) -> None:
    """From an empty database (what `init` sees first) or an old revision, a second
    upgrade changes nothing: same revision, same tables and columns, rows kept."""
    with Store.open(store_url) as kb:
        assert kb.revision() is None
        if start:
            kb.upgrade(start)
            _insert_with_old_schema(store_url)
        kb.upgrade()
        assert kb.revision() == head_revision()
        kb.upsert_agent(AgentSpec(name="pop", family="popularity"))
        exp = kb.start_experiment(make_draft(code_hash="twice"))
        tables, experiments = _tables(store_url), kb.list_experiments(limit=100)

        kb.upgrade()
        assert kb.revision() == head_revision()
        assert _tables(store_url) == tables
        assert kb.list_experiments(limit=100) == experiments and kb.get_experiment(exp.id) == exp
        assert len(experiments) == (2 if start else 1)


def test_rows_match_the_migrated_schema(store: Store) -> None:
    """rows.py and the migrations describe the same schema (no forgotten revision)."""
    with store._engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_empty_database_says_run_init(store_url: str) -> None:
    with Store.open(store_url) as kb:
        assert kb.revision() is None
        with pytest.raises(SchemaOutOfDateError, match="no schema: run `agenticrs init`"):
            kb.check_schema()
        with pytest.raises(SchemaOutOfDateError, match="agenticrs init"):
            kb.get_agent("pop")


def test_schema_from_a_newer_release_is_reported(store_url: str) -> None:
    with Store.open(store_url) as kb:
        kb.upgrade()
        with kb._engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(SchemaOutOfDateError, match="newer agenticrs"):
            kb.check_schema()


def test_unreachable_server_names_url_without_password() -> None:
    url = "postgresql+psycopg://kb:s3cret@127.0.0.1:1/kb"
    with pytest.raises(DatabaseUnavailableError) as info:
        Store.open(url)
    message = str(info.value)
    assert "127.0.0.1:1" in message and "s3cret" not in message and "--db" in message


def test_sqlite_path_that_cannot_exist(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DatabaseUnavailableError, match="file"):
        Store.open(f"sqlite:///{tmp_path / 'file' / 'kb.db'}")


def test_malformed_url_is_a_knowledge_base_error() -> None:
    with pytest.raises(KnowledgeBaseError, match="not a database URL"):
        Store.open("nonsense")


def test_default_url_is_the_workspace_file(tmp_path: Path) -> None:
    url = default_url(tmp_path / "runs")
    assert url == f"sqlite:///{(tmp_path / 'runs' / 'knowledge.db').resolve()}"
    with Store.open(url) as kb:
        kb.upgrade()
        with pytest.raises(NotFoundError):
            kb.get_agent("pop")
    assert (tmp_path / "runs" / "knowledge.db").exists()


def test_upgrade_from_0003_keeps_versions_and_leaves_one_champion(store_url: str) -> None:
    """Revision 0004 on a database written by 0003 code, where two workspaces racing on one
    database left two champions: the newest stays champion, every row and id is kept, and
    the old rows (no code stored yet) accept their code and new releases."""
    with Store.open(store_url) as kb:
        kb.upgrade("0003")
        _insert_with_old_schema(store_url)
        engine = create_engine(store_url)
        now = datetime.now(UTC)
        with engine.begin() as connection:
            tables = MetaData()
            tables.reflect(connection)
            connection.execute(tables.tables["agent_versions"].insert(), [
                {"agent_name": "old", "number": n, "tag": f"old/v{n}", "git_sha": f"{n}" * 40,
                 "family": "itemknn", "params": {"k": n}, "is_champion": n > 1, "created_at": now}
                for n in (1, 2, 3)])
            ids = dict(connection.execute(text("SELECT number, id FROM agent_versions")).all())
        engine.dispose()

        kb.upgrade()
        kb.check_schema()
        versions = kb.list_versions("old")
        assert [(v.number, v.id, v.is_champion, v.code_hash) for v in versions] == [
            (1, ids[1], False, None), (2, ids[2], False, None), (3, ids[3], True, None)]
        assert kb.get_version_manifest(ids[3]) is None and kb.list_experiments(agent_name="old")
        kb.put_code("c", "class Agent: ...\n")
        assert kb.fill_version(ids[1], code_hash="c", manifest={"family": "itemknn"}).code_hash == "c"
        v4 = kb.release_version("old", VersionDraft(family="ease", code_hash="c", parent_version_id=ids[3]),
                                require_champion=ids[3])
        assert (v4.number, kb.champion("old")) == (4, v4)
