"""Run the real ``agenticrs`` console script the way a user does."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).with_name("agenticrs")
TINY = ["--dataset", "synthetic", "--n-users", "300", "--n-items", "200"]


def cli(ws: Path, *args: str, timeout: float = 600, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``agenticrs --workspace ws ARGS``; raises with its output if it fails and ``check``.

    The environment is the test's (already free of the user's ``AGENTICRS_*``) plus ``env``.
    """
    full = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    full |= {"NO_COLOR": "1", **(env or {})}
    result = subprocess.run([str(BIN), "--workspace", str(ws), *args], capture_output=True, text=True,
                            timeout=timeout, env=full)
    if check and result.returncode != 0:
        raise AssertionError(f"agenticrs {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def evaluated_keys(ws: Path, rows: list[dict], *fields: str) -> list[tuple]:
    """``(*fields, code_hash)`` of each finished experiment among ``rows`` (the JSON of
    ``agenticrs history``), to find a candidate evaluated twice.

    The fields come from the rows, the code hashes from the workspace's SQLite knowledge base
    in one query: one ``history show`` process per experiment costs ~2 s, a minute for a run
    killed and resumed. ``history show`` of the newest finished experiment must agree.
    """
    finished = [r for r in rows if r["status"] not in ("RUNNING", "INTERRUPTED")]
    assert finished, rows
    db = sqlite3.connect(ws / "knowledge.db")
    hashes = dict(db.execute("SELECT id, code_hash FROM experiments").fetchall())
    db.close()
    newest = max(finished, key=lambda r: r["id"])
    shown = json.loads(cli(ws, "history", "show", str(newest["id"]), "--json").stdout)
    assert [shown[f] for f in (*fields, "code_hash")] == [newest[f] for f in fields] + [hashes[newest["id"]]], \
        (shown, newest)
    return [(*(r[f] for f in fields), hashes[r["id"]]) for r in finished]
