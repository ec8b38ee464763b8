"""How fast are the harness's accuracy metrics on 1,000,000 users, next to ranx?

Random top-K lists (K=20, distinct items per list, a catalogue of 50,021 items) against
random relevant sets (1 + Poisson(5) items per user, about a third of them drawn from the
user's own list so that there are hits). Times each of our per-user metrics (each one
builds its own hit matrix), the five together (``ranking_metrics``: one hit matrix), and
ranx (numba, all threads) on the same data in the same run. ranx needs string ids in
its own structures (built from DataFrames, its fastest path); building them is timed apart
from ``ranx.evaluate``. When ranx runs on fewer users (``--ranx-users``), its times are
also extrapolated linearly to all users and labelled so. Our and ranx's per-user scores are compared on the users ranx saw.

Run: ``python benchmarks/metrics_throughput.py [--users N] [--k K] [--ranx-users M]``.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # plain `python benchmarks/...`

from sandbox.harness import metrics as m  # noqa: E402

N_ITEMS = 50_021  # prime: a_i + j * b_i (mod N_ITEMS) gives K distinct items per list
RANX_METRICS = ("ndcg", "recall", "mrr", "hit_rate", "precision")


def make_case(n_users: int, k: int, seed: int = 0) -> tuple[np.ndarray, sp.csr_matrix]:
    """Random distinct top-k lists and relevant sets overlapping them (see the docstring)."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, N_ITEMS, n_users)[:, None]
    step = rng.integers(1, N_ITEMS, n_users)[:, None]
    recs = (start + np.arange(k)[None, :] * step) % N_ITEMS
    sizes = 1 + rng.poisson(5.0, n_users)
    rows = np.repeat(np.arange(n_users), sizes)
    cols = rng.integers(0, N_ITEMS, len(rows))
    from_list = rng.random(len(rows)) < 0.35
    cols[from_list] = recs[rows[from_list], rng.integers(0, k, int(from_list.sum()))]
    relevant = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, N_ITEMS))
    relevant.sum_duplicates()
    return recs.astype(np.int64), relevant


def timed(fn, *args, repeats: int = 3) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}; {os.cpu_count()} logical cores ({usable} usable); {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}; numpy {np.__version__}")


def bench_ours(recs, relevant, k: int) -> dict[str, np.ndarray]:
    functions = {"ndcg": m.ndcg_at_k, "recall": m.recall_at_k, "mrr": m.mrr_at_k,
                 "hit_rate": m.hit_rate_at_k, "precision": m.precision_at_k}
    n = recs.shape[0]
    print(f"ours ({n:,} users, K={k}):")
    for name, fn in functions.items():
        seconds, _ = timed(fn, recs, relevant, k)
        print(f"  {name:<22s} {seconds:8.3f} s   {n / seconds / 1e6:6.2f} M users/s")
    seconds, _ = timed(m.hit_matrix, recs, relevant, k)
    print(f"  {'(hit matrix alone)':<22s} {seconds:8.3f} s")
    seconds, together = timed(m.ranking_metrics, recs, relevant, k)
    print(f"  {'all five together':<22s} {seconds:8.3f} s   {n / seconds / 1e6:6.2f} M users/s")
    return together


def bench_ranx(recs, relevant, k: int, n_total: int) -> dict[str, np.ndarray] | None:
    try:
        import ranx
    except ImportError:
        print("ranx is not installed: pip install ranx (a test dependency)")
        return None
    n = recs.shape[0]
    _ranx_inputs(ranx, recs[:100], relevant[:100])     # numba JIT compile, not timed
    start = time.perf_counter()
    qrels, run = _ranx_inputs(ranx, recs, relevant)
    build = time.perf_counter() - start
    names = [f"{metric}@{k}" for metric in RANX_METRICS]
    ranx.evaluate(qrels, run, names[:1])              # numba JIT compile, not timed
    seconds, scores = timed(lambda: ranx.evaluate(qrels, run, names, return_mean=False), repeats=2)
    scale = n_total / n
    label = "" if n == n_total else f"  -> extrapolated to {n_total:,} users (x{scale:.0f})"
    print(f"ranx {ranx.__version__ if hasattr(ranx, '__version__') else ''} ({n:,} users, K={k}):")
    print(f"  {'build Qrels/Run':<22s} {build:8.3f} s{label and f'   ~{build * scale:8.1f} s extrapolated'}")
    print(f"  {'evaluate, all five':<22s} {seconds:8.3f} s{label and f'   ~{seconds * scale:8.1f} s extrapolated'}")
    if label:
        print(label)
    return {name.split("@")[0]: np.asarray(value) for name, value in scores.items()}


def _ranx_inputs(ranx, recs, relevant):
    """ranx Qrels/Run (via DataFrames, its fastest path) with zero-padded query ids, so that
    ranx's sorted query order = our row order."""
    import pandas as pd

    n, k = recs.shape
    qid = np.char.add("q", np.char.zfill(np.arange(n).astype(str), 8))
    qrels = pd.DataFrame({
        "q_id": pd.Series(np.repeat(qid, np.diff(relevant.indptr)).tolist(), dtype=object),
        "doc_id": pd.Series(relevant.indices.astype(str).tolist(), dtype=object),
        "score": np.ones(relevant.nnz, dtype=np.int64)})
    run = pd.DataFrame({
        "q_id": pd.Series(np.repeat(qid, k).tolist(), dtype=object),
        "doc_id": pd.Series(recs.ravel().astype(str).tolist(), dtype=object),
        "score": np.tile(np.arange(k, 0, -1, dtype=np.float64), n)})
    return ranx.Qrels.from_df(qrels), ranx.Run.from_df(run)


def compare(ours: dict, theirs: dict, relevant, k: int) -> None:
    n = len(next(iter(theirs.values())))
    sizes = np.diff(relevant.indptr)[:n]
    for name, values in theirs.items():
        mine = ours[name][:n]
        if name == "recall":   # ranx divides by |T|, we by min(K, |T|)
            values = values * sizes / np.minimum(sizes, k)
        print(f"  max |ours - ranx| {name:<10s} {np.max(np.abs(mine - values)):.2e}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--ranx-users", type=int, default=100_000,
                        help="users given to ranx (building its inputs is slow)")
    args = parser.parse_args(argv)
    print(machine())
    recs, relevant = make_case(args.users, args.k)
    print(f"data: {args.users:,} users, K={args.k}, {N_ITEMS:,} items, "
          f"{relevant.nnz:,} relevant pairs, mean |T| = {relevant.nnz / args.users:.2f}")
    ours = bench_ours(recs, relevant, args.k)
    n_ranx = min(args.ranx_users, args.users)
    theirs = bench_ranx(recs[:n_ranx], relevant[:n_ranx], args.k, args.users)
    if theirs is not None:
        compare(ours, theirs, relevant, args.k)


if __name__ == "__main__":
    main()
