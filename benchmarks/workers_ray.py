"""Candidates per hour of a design session on ml-100k, cheap families: 1 and 2 local workers
and the Ray executor on a local cluster of 2 worker processes, each ratio to 1 worker taken
in the same run (configurations interleaved, so load drifts hit all alike).

    .venv/bin/python benchmarks/workers_ray.py --data-dir ../shared/data/ml-100k [--iterations 16]
    .venv/bin/python benchmarks/workers_ray.py --address 127.0.0.1:6379   # an existing cluster

A candidate is one proposal the loop evaluated (its cheap stage, and the full stage and
confirmation runs it earned); the session's wall time excludes data loading and, for Ray,
starting or joining the cluster (reported apart). Without --address, Ray starts a private
local cluster with 2 CPUs: 2 worker processes, each running the same sandbox as local runs.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_vs_baselines import new_workspace  # noqa: E402

from designer.executor import LocalExecutor, load_split  # noqa: E402
from designer.families import load_families  # noqa: E402
from designer.loop import DesignLoop  # noqa: E402
from designer.proposers.search import SearchProposer  # noqa: E402
from designer.settings import DesignSettings  # noqa: E402

CHEAP = ("popularity", "itemknn", "ease", "recency_ease", "mmr")   # mmr: the reranker agent's family


def session(settings, split, families, executor, workers: int, iterations: int, root: Path) -> dict:
    """One design session of ``iterations`` candidates in a fresh workspace."""
    ws, store, releaser = new_workspace(root, families)
    loop = DesignLoop(store=store, proposer=SearchProposer(seed=settings.seed), executor=executor,
                      releaser=releaser, families=families, agent_name="recommender",
                      settings=settings.model_copy(update={"workspace": ws.root}), workspace=ws, auto_approve=True)
    summary = loop.run(iterations=iterations, workers=workers)
    rows = store.list_experiments(agent_name="recommender", limit=10_000)
    store.close()
    inside = sum(e.fit_seconds or 0.0 for e in rows)
    twice = sum(n - 1 for n in Counter((e.stage, e.code_hash) for e in rows).values())
    return {"candidates": summary.iterations, "sandbox_runs": len(rows), "failed": summary.failed,
            "seconds": round(summary.elapsed_seconds, 2),
            "candidates_per_hour": round(3600 * summary.iterations / summary.elapsed_seconds, 1),
            "fit_seconds_sum": round(inside, 2), "recorded_twice": twice, "best_reward": summary.best_reward,
            "promoted": len(summary.promoted)}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.machine())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gb": round(mem / 2**20, 1),
            "python": platform.python_version(), "load_avg_at_start": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/ml-100k"))
    parser.add_argument("--iterations", type=int, default=16, help="candidates per session")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the interleaved configurations")
    parser.add_argument("--configs", default="local-1,local-2,ray-2")
    parser.add_argument("--address", default=None, help="Ray cluster to join (default: a private local one)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per run for every configuration (default: the loop's cores/workers)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/workers_ray.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # slots 0-3 are what other sessions of the machine use by default: more slots, fewer waits on them
    settings = DesignSettings(dataset="ml-100k", data_dir=args.data_dir, slots=8)
    if args.threads is not None:
        settings = settings.model_copy(update={"limits": settings.limits.model_copy(update={"threads": args.threads})})
    families = {name: f for name, f in load_families().items() if name in CHEAP}
    tmp = Path(tempfile.mkdtemp(prefix="agenticrs-bench-workers-"))
    split = load_split(settings, tmp / "shared-cache")
    info = machine()
    local = LocalExecutor(settings, tmp / "local-cache", split=split)
    ray_executor, ray_startup = None, None
    if "ray-2" in args.configs:
        from designer.ray_executor import RayExecutor
        start = time.perf_counter()
        ray_executor = RayExecutor(settings, tmp / "ray-cache", address=args.address, split=split)
        ray_startup = round(time.perf_counter() - start, 1)
    runs: dict[str, list[dict]] = {c: [] for c in args.configs.split(",")}
    try:
        for repeat in range(args.repeats):
            for config in runs:
                executor, workers = (ray_executor, 2) if config == "ray-2" else (local, int(config.split("-")[1]))
                result = session(settings, split, families, executor, workers, args.iterations,
                                 tmp / f"{config}-{repeat}")
                runs[config].append(result)
                print(f"{config}: {result['candidates']} candidates in {result['seconds']:.1f} s = "
                      f"{result['candidates_per_hour']:.0f}/h ({result['sandbox_runs']} runs)", flush=True)
    finally:
        if ray_executor is not None:
            ray_executor.close()
    rates = {c: sum(r["candidates"] for r in rs) * 3600 / sum(r["seconds"] for r in rs) for c, rs in runs.items()}
    base = rates.get("local-1")
    summary = {c: {"candidates_per_hour": round(rate, 1),
                   "ratio_to_1_worker": round(rate / base, 2) if base else None} for c, rate in rates.items()}
    variant = "default threads (cores / workers)" if args.threads is None else f"threads={args.threads}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sections = json.loads(args.out.read_text()) if args.out.is_file() else {}
    sections = sections if "summary" not in sections else {}   # the one-section format before --threads
    sections[variant] = {
        "machine": info | {"load_avg_at_end": os.getloadavg()}, "dataset": "ml-100k",
        "families": [f for f in CHEAP if f != "mmr"], "iterations": args.iterations, "repeats": args.repeats,
        "ray": {"address": args.address or "private local cluster, 2 CPUs", "startup_seconds": ray_startup},
        "summary": summary, "runs": runs}
    args.out.write_text(json.dumps(sections, indent=2))   # sections merged: one per --threads variant
    for config, row in summary.items():
        print(f"| {config} | {row['candidates_per_hour']:.0f} | {row['ratio_to_1_worker']} |")
    print(f"machine: {info}; written to {args.out}")


if __name__ == "__main__":
    main()
