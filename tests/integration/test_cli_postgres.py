"""``design`` with the knowledge base on the real PostgreSQL server (team mode)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from tests.integration.clirun import TINY, cli

pytestmark = [pytest.mark.postgres, pytest.mark.sandbox, pytest.mark.slow, pytest.mark.integration]


@pytest.mark.timeout(900)
def test_design_on_postgresql_records_promotes_and_versions(tmp_path, pg_schema_url):
    ws = tmp_path / "ws"
    init = json.loads(cli(ws, "--db", pg_schema_url, "init", "--json").stdout)
    assert init["db"].startswith("postgresql") and "recommender" in init["agents"]
    summary = json.loads(cli(ws, "design", "--agent", "recommender", "--iterations", "3", "--auto-approve",
                             "--json", *TINY).stdout)  # the URL comes from the workspace marker
    assert summary["approved_versions"], summary
    assert not (ws / "knowledge.db").exists()

    engine = create_engine(pg_schema_url)
    with engine.connect() as connection:
        statuses = dict(connection.execute(text(
            "SELECT status, count(*) FROM experiments WHERE agent_name = 'recommender' GROUP BY status")).all())
        champion = connection.execute(text(
            "SELECT number FROM agent_versions WHERE agent_name = 'recommender' AND is_champion")).scalars().all()
    engine.dispose()
    assert statuses.get("COMPLETED", 0) >= 3 and "RUNNING" not in statuses
    assert champion == [int(summary["approved_versions"][-1].rsplit("v", 1)[1])]
    history = json.loads(cli(ws, "history", "--agent", "recommender", "--json").stdout)
    assert len(history) == sum(statuses.values())
    lines = cli(ws, "agents", "check").stderr.strip().splitlines()
    assert lines and all(line.endswith(": consistent") for line in lines), lines
