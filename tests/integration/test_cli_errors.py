"""Errors a user can hit are one line saying what to do next (issue 13 items 6 and 10).

These drive the real console script but never the sandbox, so they run in seconds.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.clirun import BIN, TINY, cli


def one_line_error(result, *needles: str, after_progress: bool = False) -> None:
    """Exit 1, no traceback, one ``error:`` line holding every needle; it is the whole of
    stderr unless ``after_progress`` (commands like ``design`` print progress first)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("error:"), result.stderr
    assert len(lines) == 1 or (after_progress and sum(x.startswith("error:") for x in lines) == 1), result.stderr
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])


def test_agents_check_removes_and_reports_a_stale_index_lock(ws):
    lock = ws / "agents" / ".git" / "index.lock"
    lock.write_text("")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    check = cli(ws, "agents", "check")
    assert "removed stale lock .git/index.lock" in check.stderr
    assert not lock.exists()
    assert "stale lock" not in cli(ws, "agents", "check").stderr


needs_mounts = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                  reason="needs root and unshare for a private tmpfs / read-only mount")


def in_private_mounts(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``script`` (sh) in its own mount namespace, ``$A`` being the agenticrs script."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("AGENTICRS_DB")}
    full |= {"NO_COLOR": "1", "A": str(BIN), "T": str(tmp_path), **env}
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          timeout=300, env=full)


FULL_DISKS = {
    # the knowledge base cannot grow (SQLite says "disk I/O error" or "disk is full")
    "workspace": ('mkdir -p "$T/ws" && mount -t tmpfs -o size=16m tmpfs "$T/ws" '
                  '&& "$A" --workspace "$T/ws" init >/dev/null 2>&1 && FILL="$T/ws"', "disk is full"),
    # the knowledge base has room, the experiment folders do not (the ENOSPC of issue 13)
    "experiments": ('"$A" --workspace "$T/ws" init >/dev/null 2>&1 '
                    '&& mount -t tmpfs -o size=256k tmpfs "$T/ws/experiments" && FILL="$T/ws/experiments"',
                    "no space left"),
}


@needs_mounts
@pytest.mark.parametrize("full", sorted(FULL_DISKS))
def test_a_full_disk_during_design_is_one_line_saying_to_free_space(tmp_path, full):
    setup, needle = FULL_DISKS[full]
    result = in_private_mounts(
        setup + ' && (dd if=/dev/zero of="$FILL/filler" bs=4k >/dev/null 2>&1; true) '
        '&& exec "$A" --workspace "$T/ws" design --agent recommender --iterations 1 ' + " ".join(TINY),
        tmp_path)
    one_line_error(result, needle, "run the same command again", after_progress=True)
    if full == "experiments":  # the knowledge base had room: no experiment may be left RUNNING
        db = sqlite3.connect(tmp_path / "ws" / "knowledge.db")
        statuses = [s for (s,) in db.execute("SELECT status FROM experiments")]
        db.close()
        assert statuses and "RUNNING" not in statuses, statuses


@needs_mounts
def test_init_on_a_read_only_workspace_is_one_line(tmp_path):
    (tmp_path / "ws").mkdir()
    result = in_private_mounts(
        'mount --bind "$T/ws" "$T/ws" && mount -o remount,ro,bind "$T/ws" '
        '&& exec "$A" --workspace "$T/ws" init', tmp_path)
    one_line_error(result, "cannot write the workspace", "--workspace")


def test_init_on_a_schema_from_a_newer_release_is_one_line(ws):
    db = sqlite3.connect(ws / "knowledge.db")
    db.execute("UPDATE alembic_version SET version_num = '9999'")
    db.commit()
    db.close()
    one_line_error(cli(ws, "init", check=False), "newer agenticrs", "upgrade agenticrs")


def test_a_truncated_knowledge_base_says_it_is_damaged_not_check_the_server(ws):
    db = ws / "knowledge.db"
    for extra in ("knowledge.db-wal", "knowledge.db-shm"):
        (ws / extra).unlink(missing_ok=True)
    with open(db, "r+b") as f:
        f.truncate(5000)
    for command in (["history"], ["init"]):
        result = cli(ws, *command, check=False)
        one_line_error(result, "damaged", "agenticrs init")
        assert "server" not in result.stderr


def test_non_utf8_ids_in_an_interactions_file_are_one_line(ws, tmp_path):
    data = tmp_path / "bad.csv"
    data.write_bytes(b"user,item,timestamp\n" + b"".join(
        b"u\xff%d,i%d,%d\n" % (i % 7, i % 11, i) for i in range(60)))
    one_line_error(cli(ws, "evaluate", "popularity", "--dataset", str(data), check=False), "UTF-8")


def test_a_rebuilt_knowledge_base_never_reuses_old_experiment_folders(ws):
    old = ws / "experiments" / "000001"
    old.mkdir(parents=True)
    (old / "comparison.json").write_text('{"stale": true}')
    (ws / "knowledge.db").unlink()
    for extra in ("knowledge.db-wal", "knowledge.db-shm"):
        (ws / extra).unlink(missing_ok=True)
    summary = json.loads(cli(ws, "init", "--json").stdout)
    assert not (ws / "experiments" / "000001").exists()
    archived = Path(summary["archived_experiments"])
    assert (archived / "000001" / "comparison.json").read_text() == '{"stale": true}'
    again = json.loads(cli(ws, "init", "--json").stdout)
    assert again["archived_experiments"] is None


def test_a_restored_knowledge_base_never_reuses_newer_experiment_folders(ws):
    """A backup restored without `init`: any command that opens the KB moves the folders of
    experiments it has no row for out of the way before a new experiment could take the id."""
    ahead = ws / "experiments" / "000042"
    ahead.mkdir(parents=True)
    (ahead / "output-test").mkdir()
    result = cli(ws, "history", "--json")
    assert json.loads(result.stdout) == [] and "moved 1 experiment folder" in result.stderr
    assert not ahead.exists()
    assert [p.name for p in (ws / "experiments-archive").glob("*/*")] == ["000042"]
