"""Fixtures for the runner suites: a tiny workspace, tier parametrisation, survivor checks.

Tests that need root, cgroups or bubblewrap skip with the reason when the tier is not
available, except under CI=true, where a missing tier A/B is a failure.
"""
from __future__ import annotations

import functools
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sandbox.limits import Limits
from sandbox.runner import IsolationTier, RunRequest, make_runner, probe_tier
from sandbox.sdk.agent_sdk import TrainData

CANDIDATES = Path(__file__).parent / "candidates"
N_USERS, N_ITEMS, K = 40, 30, 5
SMALL = Limits(wall_seconds=20, cpu_seconds=30, memory_mb=512, output_mb=64, tmp_mb=32,
               max_processes=64, open_files=256, log_bytes=16 * 1024)
ORDER = [IsolationTier.A, IsolationTier.B, IsolationTier.C]
TEST_SLOT = 7  # a slot of its own: other sessions' runs on slot 0 must not disturb the uid checks


@functools.lru_cache(maxsize=1)
def best_tier() -> tuple[IsolationTier, tuple[str, ...]]:
    tier, reasons = probe_tier()
    return tier, tuple(reasons)


def require_tier(tier: IsolationTier) -> None:
    """Skip (fail under CI=true) when ``tier`` is not available on this machine."""
    best, reasons = best_tier()
    if ORDER.index(tier) < ORDER.index(best):
        msg = f"tier {tier.value} unavailable (best {best.value}): {'; '.join(reasons)}"
        if os.environ.get("CI") == "true" and tier is not IsolationTier.B:
            pytest.fail(msg + " -- CI must run as root with bubblewrap and cgroups")
        pytest.skip(msg)


@functools.lru_cache(maxsize=None)
def runner_for(tier: IsolationTier, slot: int = TEST_SLOT):
    require_tier(tier)
    return make_runner(force_tier=tier, allow_insecure=True, slot=slot)


@dataclass
class Workspace:
    root: Path
    inputs: Path
    labels: Path
    dotenv: Path

    def new_output(self) -> Path:
        out = self.root / f"out-{uuid.uuid4().hex[:8]}"
        out.mkdir()
        return out


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("sbxws")
    inputs = root / "inputs"
    rng = np.random.default_rng(0)
    n = 400
    TrainData(rng.integers(0, N_USERS, n), rng.integers(0, N_ITEMS, n), np.arange(n),
              np.ones(n), N_USERS, N_ITEMS).save(inputs)
    np.save(inputs / "users.npy", np.arange(N_USERS, dtype=np.int64))
    labels = root / "labels.npy"
    np.save(labels, np.arange(10))
    (root / "SECRET_LABELS.txt").write_text("SEALED-TEST-LABELS")
    dotenv = root.parent / ".env"
    dotenv.write_text("OPENAI_API_KEY=sk-dotenv-secret\n")
    for p in [root, inputs, *inputs.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return Workspace(root, inputs, root / "SECRET_LABELS.txt", dotenv)


def out_param(tier: IsolationTier, output: Path) -> str:
    """The output folder as the candidate sees it."""
    return str(output) if tier is IsolationTier.C else "/output"


def run(tier, workspace, candidate="behave.py", limits=SMALL, **params):
    """Run a candidate; returns (result, output folder, run_id)."""
    runner = runner_for(tier)
    output = workspace.new_output()
    run_id = f"t-{uuid.uuid4().hex[:10]}"
    params = {"out": out_param(tier, output), **params}
    request = RunRequest(candidate=CANDIDATES / candidate, inputs=workspace.inputs, output=output,
                         config={"k": K, "params": params, "fidelity": 0.5, "seed": 1,
                                 "run_id": run_id}, limits=limits)
    result = runner.run(request)
    return result, output, run_id


def observed(result) -> dict:
    """What a ``behave.py`` attack recorded (its last ``OBSERVED {json}`` line on stdout)."""
    lines = [ln for ln in result.stdout_tail.splitlines() if ln.startswith("OBSERVED ")]
    assert lines, f"the candidate recorded nothing: {result.message} {result.stderr_tail[-500:]}"
    return json.loads(lines[-1].removeprefix("OBSERVED "))


def survivors(run_id: str) -> list[int]:
    """Pids of processes still carrying the run's environment marker."""
    marker = f"AGENTICRS_RUN_ID={run_id}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    found.append(int(pid))
            except OSError:
                pass
    return found


def assert_clean(run_id: str, tier: IsolationTier, slot: int = TEST_SLOT) -> None:
    """No process of the run survives, and (tier A) its cgroup is gone."""
    assert survivors(run_id) == []
    if tier is IsolationTier.A:
        uid = 61000 + slot
        owned = [p for p in os.listdir("/proc") if p.isdigit() and _uid(p) == uid]
        assert owned == [], f"processes of sandbox uid {uid} survive: {owned}"
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrl, own = line.split(":", 2)
            if ctrl in ("memory", "pids", "cpu", "cpuacct", "freezer"):
                leftover = Path("/sys/fs/cgroup", ctrl, own.lstrip("/"), "agenticrs", run_id)
                assert not leftover.exists(), f"cgroup left behind: {leftover}"
        assert run_id not in Path("/proc/self/mountinfo").read_text(), "output/input mount left behind"


def _uid(pid: str) -> int | None:
    """Owner of a live (non-zombie) process."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
        return os.stat(f"/proc/{pid}").st_uid
    except (OSError, IndexError):
        return None


def wait_then_assert_clean(run_id: str, tier: IsolationTier, seconds: float) -> None:
    time.sleep(seconds)
    assert_clean(run_id, tier)
