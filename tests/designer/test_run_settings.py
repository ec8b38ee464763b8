"""The settings of a `design`/`compose`/`evolve` run: one merge, limit flags validated with it."""
from __future__ import annotations

import pytest

from designer.cli.services import Options, Services
from designer.errors import UsageError


@pytest.fixture
def services(tmp_path):
    s = Services(Options(workspace=tmp_path / "ws", db=None), create=True)
    s.workspace.config_file.write_text("slots = 1\n[limits]\nmemory_mb = 1234\nwall_seconds = 300\n")
    return s


def test_limit_flags_override_the_workspace_file_key_by_key(services):
    settings = services.run_settings(None, limits={"wall_seconds": 7.0}, seed=3)
    assert (settings.limits.wall_seconds, settings.limits.memory_mb, settings.seed) == (7.0, 1234, 3)
    assert services.run_settings(None).limits.wall_seconds == 300


def test_a_bad_limit_flag_is_a_usage_error_naming_it(services):
    with pytest.raises(UsageError, match="limits.wall_seconds"):
        services.run_settings(None, limits={"wall_seconds": -1.0})


def test_each_worker_gets_a_sandbox_slot(services):
    assert services.run_settings(None, workers=3).slots == 3
    assert services.run_settings(None, workers=1).slots == 1
