"""Fixtures of the CLI tests: a workspace made by the real ``agenticrs init``."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.clirun import cli


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    cli(workspace, "init")
    return workspace


# The real PostgreSQL server and a fresh schema per test, as the knowledge-base suite uses them.
from tests.knowledge_base.conftest import pg_reachable, pg_schema_url  # noqa: E402,F401
