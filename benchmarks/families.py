"""Benchmark: every built-in family at its default parameters (or given overrides).

For each data set and family: fit on train, score validation users (NDCG@10); fit on
train + validation, score test users (the sealed protocol); report fit times. Candidates
run **in-process** (no sandbox isolation or limits), with the torch/BLAS thread count
given by --threads (the sandbox uses 2), so fit times are indicative.

    python benchmarks/families.py --dataset ml-100k --data-dir ../shared/data/ml-100k
    python benchmarks/families.py --dataset synthetic --families ease,recency_ease
    python benchmarks/families.py --params '{"sasrec": {"epochs": 50}}' --json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from designer.families import load_families  # noqa: E402
from sandbox.harness.datasets import load_dataset  # noqa: E402
from sandbox.harness.report import eval_users, relevant_matrix, score_recommendations  # noqa: E402
from sandbox.harness.splits import split_interactions  # noqa: E402
from sandbox.sdk import agent_sdk  # noqa: E402

K = 10


def load_agent_class(source: str, name: str):
    """Execute a rendered module in-process and return its ``Agent`` class."""
    sys.modules["agent_sdk"] = agent_sdk
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module.Agent


def fit_and_score(agent_cls, fit_on, target, users) -> tuple[float, float, float]:
    """(NDCG@K, fit seconds, recommend seconds) of a fresh agent."""
    agent = agent_cls()
    start = time.perf_counter()
    agent.fit(fit_on.to_train_data())
    fitted = time.perf_counter()
    recs = agent.recommend(users, K)
    done = time.perf_counter()
    report = score_recommendations(recs, relevant_matrix(target, users), users=users, train=fit_on, k=K)
    return report.summary[f"ndcg@{K}"], fitted - start, done - fitted


def benchmark(dataset: str, data_dir: str | None, names: list[str], overrides: dict) -> list[dict]:
    families = load_families()
    split = split_interactions(load_dataset(dataset, data_dir=data_dir))
    rows = []
    for name in names:
        family = families[name]
        agent_cls = load_agent_class(family.render(overrides.get(name, {})), name)
        val, val_fit, _ = fit_and_score(agent_cls, split.train, split.validation,
                                        eval_users(split, "validation"))
        test, test_fit, rec_s = fit_and_score(agent_cls, split.train_plus_validation(), split.test,
                                              eval_users(split, "test"))
        rows.append({"dataset": dataset, "family": name, "val_ndcg@10": round(val, 4),
                     "test_ndcg@10": round(test, 4), "fit_s": round(val_fit, 1),
                     "test_fit_s": round(test_fit, 1), "recommend_s": round(rec_s, 2),
                     "time_limit_s": family.time_limit_seconds})
        print(_line(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _line(row: dict) -> str:
    return (f"| {row['dataset']} | {row['family']} | {row['val_ndcg@10']:.4f} | {row['test_ndcg@10']:.4f} "
            f"| {row['fit_s']:.1f} | {row['test_fit_s']:.1f} | {row['time_limit_s']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", help="synthetic and/or ml-100k (repeatable)")
    parser.add_argument("--data-dir", help="folder of ml-100k")
    parser.add_argument("--families", help="comma-separated names (default: all recommenders and rerankers)")
    parser.add_argument("--params", default="{}", help='JSON {"family": {param: value}} overrides')
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    names = args.families.split(",") if args.families else list(load_families())
    datasets = args.dataset or ["synthetic", "ml-100k"]
    header = ("| data set | family | val NDCG@10 | test NDCG@10 | fit s (train) | fit s (train+val) "
              "| time limit s |\n|---|---|---|---|---|---|---|")
    rows = []
    for dataset in datasets:
        rows += benchmark(dataset, args.data_dir if dataset == "ml-100k" else None, names,
                          json.loads(args.params))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"threads={args.threads}, in-process\n{header}")
        print("\n".join(_line(r) for r in rows))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
