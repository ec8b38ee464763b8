"""Errors a user can hit are one line saying what to do next (issue 13 items 6 and 10).

These drive the real console script but never the sandbox, so they run in seconds.
"""
from __future__ import annotations

import os
import time

from tests.integration.clirun import cli


def one_line_error(result, *needles: str) -> None:
    """Exit 1, a single stderr line holding every needle, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_agents_check_removes_and_reports_a_stale_index_lock(ws):
    lock = ws / "agents" / ".git" / "index.lock"
    lock.write_text("")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    check = cli(ws, "agents", "check")
    assert "removed stale lock .git/index.lock" in check.stderr
    assert not lock.exists()
    assert "stale lock" not in cli(ws, "agents", "check").stderr
