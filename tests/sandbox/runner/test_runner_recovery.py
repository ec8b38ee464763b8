"""A parent killed mid-run (SIGKILL, OOM) leaves mounts and a cgroup: the next run sweeps them."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import TEST_SLOT, assert_clean, require_tier, run
from sandbox.limits import Limits
from sandbox.outcome import Outcome
from sandbox.runner import IsolationTier
from sandbox.runner.cgroup import RunCgroup
from sandbox.runner.staging import output_tmpfs

pytestmark = pytest.mark.sandbox


def test_leftovers_of_a_crashed_run_are_swept_by_the_next_run(workspace):
    require_tier(IsolationTier.A)
    crashed = f"crashed-{uuid.uuid4().hex[:8]}"
    group = RunCgroup.create(crashed, Limits())
    fds = group.open_procs_fds()
    orphan = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: [os.write(fd, b"0") for fd in fds])
    for fd in fds:
        os.close(fd)
    # Entered, never exited: as after a SIGKILL (keep a reference, or GC would clean it up).
    leftover = output_tmpfs(TEST_SLOT, crashed, 1, 61000 + TEST_SLOT)
    staging = leftover.__enter__()
    try:
        result, _, run_id = run(IsolationTier.A, workspace, "popularity.py")
        assert result.outcome is Outcome.COMPLETED
        assert orphan.wait(timeout=5) == -9
        assert not Path(staging).exists() and crashed not in Path("/proc/self/mountinfo").read_text()
        assert not any(d.exists() for d in group.unique_dirs())
        assert_clean(run_id, IsolationTier.A)
    finally:
        orphan.kill()
        orphan.wait()
