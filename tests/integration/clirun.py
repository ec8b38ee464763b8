"""Run the real ``agenticrs`` console script the way a user does."""
from __future__ import annotations

import os
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
