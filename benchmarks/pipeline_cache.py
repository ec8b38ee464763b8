"""A compositional candidate that reuses cached sources vs one that refits them (issue 10).

    .venv/bin/python benchmarks/pipeline_cache.py [--dataset ml-100k] [--repeats 3]

On ml-100k (../shared/data/ml-100k) a three-source pipeline (recency-weighted EASE, EASE,
iALS; fused by reciprocal rank) is evaluated on validation through the real sandbox: once
with an empty cache (every source fitted twice: on train and on the ranker window's
prefix), then ``--repeats`` times with only the fusion weights changed (the sources' lists
come from the cache). Reports both wall times, their ratio and checks that the cached runs
refitted nothing. Results: benchmarks/results/pipeline_cache.json (with the machine).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from designer.families import load_families  # noqa: E402
from designer.pipelines.resolve import resolve  # noqa: E402
from designer.pipelines.spec import PipelineSpec  # noqa: E402
from sandbox.evaluation import EvaluationJob, Evaluator  # noqa: E402
from sandbox.harness import split_interactions  # noqa: E402
from sandbox.harness.datasets import load_dataset  # noqa: E402
from sandbox.limits import Limits  # noqa: E402
from sandbox.runner import make_runner  # noqa: E402

SPEC = """
name: bench
branches:
  - sources:
      - {family: recency_ease, quota: 100}
      - {family: ease, params: {l2: 200.0}, quota: 100}
      - {family: ials, quota: 100}
    ranker: {family: fusion, params: {method: rrf, w1: %(w)s, w2: %(w)s}}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    families = load_families()
    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset(args.dataset, data_dir=args.data_dir, cache_dir=Path(tmp) / "ds")
        split = split_interactions(data, method="user_temporal")
        evaluator = Evaluator(make_runner(), split, Path(tmp) / "cache")
        runs = []
        for i in range(1 + args.repeats):
            spec = PipelineSpec.from_yaml(SPEC % {"w": 1.0 - 0.1 * i})
            job = EvaluationJob(code=spec.to_yaml(), stage="validation", k=10, limits=Limits(threads=2),
                                pipeline=resolve(spec, store=None, repo=None, families=families))
            start = time.perf_counter()
            result = evaluator.evaluate(job, Path(tmp) / f"run{i}")
            seconds = time.perf_counter() - start
            assert result.outcome.value == "COMPLETED", result.message
            runs.append({"seconds": round(seconds, 2), "val_ndcg@10": round(result.inner_reward, 4),
                         "sources_cached": int(result.metrics["sources_cached"])})
            print(f"run {i}: {seconds:.1f} s, val ndcg@10 {result.inner_reward:.4f}, "
                  f"sources cached {int(result.metrics['sources_cached'])}/3", flush=True)
    cold, warm = runs[0]["seconds"], statistics.median(r["seconds"] for r in runs[1:])
    assert runs[0]["sources_cached"] == 0 and all(r["sources_cached"] == 3 for r in runs[1:])
    out = {"dataset": args.dataset, "cold_seconds": cold, "cached_seconds_median": warm,
           "speedup": round(cold / warm, 1), "runs": runs,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                       "load_average_1min": round(os.getloadavg()[0], 2)}}
    print(json.dumps(out, indent=2))
    path = ROOT / "benchmarks" / "results" / "pipeline_cache.json"
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
