"""Per-run overhead of each isolation tier (issue 4).

    .venv/bin/python benchmarks/sandbox_overhead.py [--runs 20] [--torch-runs 5]

For a trivial popularity candidate (and one that imports torch) it reports the median
wall time of: a bare ``python -c pass``; the same entry script run directly without any
isolation ("direct": the candidate's own work incl. numpy/scipy imports and data load);
and ``runner.run`` at each available tier. Overhead of a tier = tier - direct.
Tier A needs root (run ``bash scripts/setup-sandbox-python.sh`` first).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sandbox.limits import Limits  # noqa: E402
from sandbox.runner import IsolationTier, RunRequest, make_runner, probe_tier  # noqa: E402
from sandbox.runner.launch import ENTRY, SDK_FILE  # noqa: E402
from sandbox.sdk.agent_sdk import TrainData  # noqa: E402

CANDIDATE = """
import numpy as np
{extra}
class Agent:
    def __init__(self, **params): pass
    def fit(self, train): self.pop = np.bincount(train.item, minlength=train.n_items)
    def recommend(self, users, k):
        return np.tile(np.argsort(-self.pop)[:k], (len(users), 1))
"""


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    mem = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    bwrap = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("bwrap") else "absent"
    tier, reasons = probe_tier()
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gb": round(int(mem) / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(), "bwrap": bwrap,
            "best_tier": tier.value, "degraded_because": reasons, "euid": os.geteuid()}


def interleaved_medians(variants: dict, runs: int) -> dict[str, float]:
    """Median wall time of each variant, run round-robin so that load drifts hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm-up: page cache, probe
    for _ in range(runs):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def make_inputs(root: Path) -> Path:
    inputs = root / "inputs"
    rng = np.random.default_rng(0)
    n = 2000
    TrainData(rng.integers(0, 200, n), rng.integers(0, 100, n), np.arange(n), np.ones(n),
              200, 100).save(inputs)
    np.save(inputs / "users.npy", np.arange(200))
    for p in [root, inputs, *inputs.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return inputs


def bench_candidate(root: Path, inputs: Path, candidate: Path, runs: int, python: str) -> dict:
    config = {"k": 10, "params": {}, "seed": 0}

    def direct():
        output = Path(tempfile.mkdtemp(dir=root))
        spec = {"candidate": str(candidate), "inputs": str(inputs), "output": str(output),
                "sdk": str(SDK_FILE.parent), "config": config, "report_fd": None, "threads": 2}
        subprocess.run([python, "-I", "-B", str(ENTRY), json.dumps(spec)], check=True,
                       env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})

    def sandboxed(runner):
        def one():
            output = Path(tempfile.mkdtemp(dir=root))
            result = runner.run(RunRequest(candidate=candidate, inputs=inputs, output=output,
                                           config=config, limits=Limits(wall_seconds=120)))
            assert result.outcome.ok, result.message + result.stderr_tail
        return one

    variants = {"direct": direct}
    for tier in IsolationTier:
        try:
            variants[f"tier{tier.value}"] = sandboxed(make_runner(force_tier=tier, allow_insecure=True))
        except Exception as exc:  # noqa: BLE001 - a tier missing here is reported, not fatal
            print(f"tier {tier.value} unavailable: {exc}", file=sys.stderr)
    return interleaved_medians(variants, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--torch-runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # tier B/C warnings are expected here
    info = machine_info()
    print(json.dumps(info, indent=1))
    runner_python = make_runner(allow_insecure=True).python
    root = Path(tempfile.mkdtemp(prefix="sbx-bench-"))
    root.chmod(0o755)
    try:
        inputs = make_inputs(root)
        bare = interleaved_medians({"bare": lambda: subprocess.run([runner_python, "-c", "pass"], check=True)},
                                   args.runs)["bare"]
        print(f"\nbare `{runner_python} -c pass`: median {bare * 1000:.0f} ms ({args.runs} runs)")
        for name, extra, runs in [("numpy candidate", "", args.runs),
                                  ("torch candidate", "import torch", args.torch_runs)]:
            cand = root / f"{name.split()[0]}.py"
            cand.write_text(CANDIDATE.format(extra=extra))
            cand.chmod(0o644)
            res = bench_candidate(root, inputs, cand, runs, runner_python)
            print(f"\n{name} (median of {runs}):  direct {res['direct'] * 1000:.0f} ms")
            for key, value in res.items():
                if key != "direct":
                    print(f"  {key}: {value * 1000:.0f} ms   overhead vs direct "
                          f"{(value - res['direct']) * 1000:+.0f} ms   vs bare python "
                          f"{(value - bare) * 1000:+.0f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
