"""A parent killed mid-run (SIGKILL, OOM) leaves mounts and a cgroup: any later run sweeps them."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import TEST_SLOT, assert_clean, require_tier, run, survivors
from sandbox.limits import Limits
from sandbox.outcome import Outcome
from sandbox.runner import IsolationTier
from sandbox.runner.cgroup import RunCgroup
from sandbox.runner.staging import STATE_DIR, output_tmpfs

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


CRASHING_PARENT = """
import sys
from pathlib import Path
from sandbox.runner import IsolationTier, RunRequest, make_runner
from sandbox.limits import Limits
slot, run_id, candidate, inputs, output = sys.argv[1:]
runner = make_runner(force_tier=IsolationTier.A, slot=int(slot))
runner.run(RunRequest(candidate=Path(candidate), inputs=Path(inputs), output=Path(output),
                      config={"k": 5, "params": {"mode": "sleep", "out": "/output"}, "run_id": run_id},
                      limits=Limits(wall_seconds=60)))
"""


def _memory_root() -> Path:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] == "cgroup" and "memory" in right.split()[2].split(","):
            return Path(left.split()[4]) / left.split()[3].lstrip("/")
    pytest.skip("no cgroup v1 memory hierarchy here")


@pytest.mark.parametrize("crashed_slot", [TEST_SLOT, TEST_SLOT + 1], ids=["same-slot", "other-slot"])
def test_a_parent_killed_in_another_memory_cgroup_is_swept_by_any_later_run(workspace, crashed_slot):
    """SIGKILL a runner process that lives in another memory cgroup, mid-run; the next run
    (on the same or another slot) removes its cgroups (all controllers) and mounts."""
    require_tier(IsolationTier.A)
    foreign = _memory_root() / f"agenticrs-itest-{uuid.uuid4().hex[:8]}"
    foreign.mkdir()
    crashed = f"crashed-{uuid.uuid4().hex[:8]}"
    output = workspace.new_output()
    output.chmod(0o777)
    join = lambda: (foreign / "cgroup.procs").write_text("0")  # noqa: E731
    parent = subprocess.Popen(
        [sys.executable, "-c", CRASHING_PARENT, str(crashed_slot), crashed,
         str(Path(__file__).parent / "candidates" / "behave.py"), str(workspace.inputs), str(output)],
        preexec_fn=join, cwd=Path(__file__).resolve().parents[3])
    group_dir = foreign / "agenticrs" / crashed
    try:
        deadline = time.monotonic() + 30
        while not (group_dir.exists() and (group_dir / "cgroup.procs").read_text().split()):
            assert parent.poll() is None and time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        parent.kill()
        parent.wait()
        assert crashed in Path("/proc/self/mountinfo").read_text()  # what the kill left
        result, _, run_id = run(IsolationTier.A, workspace, "popularity.py")
        assert result.outcome is Outcome.COMPLETED, result.message
        assert not group_dir.exists(), "the crashed run's memory cgroup leaked"
        assert crashed not in Path("/proc/self/mountinfo").read_text()
        assert not [p for p in STATE_DIR.iterdir() if crashed in p.name]
        assert survivors(crashed) == []
        assert_clean(run_id, IsolationTier.A)
    finally:
        parent.kill()
        parent.wait()
        _rmdir_tree(foreign)


def _rmdir_tree(group: Path) -> None:
    """Remove a cgroup directory and its children (cgroup dirs only hold control files)."""
    for child in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        child.rmdir()
    group.rmdir()
