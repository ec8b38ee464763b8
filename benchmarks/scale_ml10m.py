"""ML-10M-sized data end to end (issue 13, item 11): time and peak memory per stage.

    nice .venv/bin/python benchmarks/scale_ml10m.py [--n-users 70000] [--n-items 10700]
        [--iterations 5] [--out benchmarks/results/scale_ml10m.json]

In a fresh workspace (a temporary folder, removed at the end unless a step failed):
``agenticrs init``, then

1. **load+split**, in a fresh process each: cold (generate the synthetic data set, split,
   write both caches) and warm (what every later ``design`` / ``evaluate`` pays);
2. **harness scoring** of 10 popular items for every validation user (host side);
3. ``agenticrs design --agent recommender --iterations N --proposer search
   --auto-approve`` on that data, with the design process's own peak RSS (VmHWM, sandbox
   runs excluded) and, per experiment (one evaluation stage: full / cheap / confirm /
   confirm-seed ...), the sandbox's wall time, fit time, latency and peak memory as the
   knowledge base recorded them.

4. **families** (``--stages families``): ``agenticrs evaluate FAMILY --wall-limit 1500``
   for each of ``--families`` on the full validation set, so that each family's sandbox
   peak memory and fit / recommend times are measured even where its family time limit
   (what ``design`` applies) stops it.

Results go to ``--out`` as JSON; ``--stages`` runs a subset and merges it into an
existing file. Takes 15-30 minutes on 2 cores per stage group (longer under load).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [str(Path(sys.executable).parent / "agenticrs")]

LOAD_SPLIT = """
import json, sys, time
t0 = time.perf_counter()
from designer.executor import load_split
from designer.settings import load_settings
from sandbox.harness import require_validation_users
settings = load_settings(None, n_users={n_users}, n_items={n_items})
t1 = time.perf_counter()
split = load_split(settings, __import__("pathlib").Path({cache!r}))
require_validation_users(split)
t2 = time.perf_counter()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({{"rows": len(split.data), "train_rows": len(split.train),
                  "validation_users": int(len(set(split.validation.user.tolist()))),
                  "import_seconds": t1 - t0, "seconds": t2 - t1, "peak_rss_mb": hwm}}))
"""

SCORING = """
import json, time, tracemalloc
import numpy as np
from designer.executor import load_split
from designer.settings import load_settings
from sandbox.harness import eval_users, relevant_matrix, score_recommendations, validate_recommendations
from sandbox.sdk.agent_sdk import topk_unseen_blocks
split = load_split(load_settings(None, n_users={n_users}, n_items={n_items}), __import__("pathlib").Path({cache!r}))
users = eval_users(split, "validation")
seen = split.train.to_train_data().matrix()
pop = np.bincount(split.train.item, minlength=split.train.n_items).astype(float)
t0 = time.perf_counter()
recs = topk_unseen_blocks(lambda b: np.broadcast_to(pop, (len(b), len(pop))), seen, users, 10)
t1 = time.perf_counter()
tracemalloc.start()
recs = validate_recommendations(recs, users, split.train.n_items, seen=seen)
report = score_recommendations(recs, relevant_matrix(split.validation, users), users=users,
                               train=split.train, k=10, checked=True)
t2 = time.perf_counter()
peak = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps({{"users": int(len(users)), "popularity_recommend_seconds": t1 - t0,
                  "scoring_seconds": t2 - t1, "scoring_traced_peak_mb": peak,
                  "ndcg@10": report.summary["ndcg@10"]}}))
"""


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem / 2**20, 1),
            "python": platform.python_version(), "load_average_at_start": os.getloadavg()}


def python_json(code: str, env: dict) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"stage failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - start
    return out


def watch_hwm(proc: subprocess.Popen, box: dict) -> None:
    """Poll the design process's VmHWM (its own peak RSS, children excluded) and the machine's
    1-minute load average (other users of the 2 cores slow every stage) until it exits."""
    loads = box.setdefault("load_average_1min", [])
    while proc.poll() is None:
        loads.append(os.getloadavg()[0])
        try:
            for line in open(f"/proc/{proc.pid}/status"):
                if line.startswith("VmHWM"):
                    box["peak_rss_mb"] = max(box.get("peak_rss_mb", 0.0), int(line.split()[1]) / 1024)
        except OSError:
            pass
        time.sleep(0.5)


def run_design(ws: Path, args, env: dict) -> dict:
    cmd = CLI + ["--workspace", str(ws), "design", "--agent", "recommender", "--iterations",
                 str(args.iterations), "--proposer", "search", "--auto-approve",
                 "--n-users", str(args.n_users), "--n-items", str(args.n_items), "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    box: dict = {}
    watcher = threading.Thread(target=watch_hwm, args=(proc, box), daemon=True)
    watcher.start()
    lines = []
    for line in proc.stderr:
        lines.append([round(time.perf_counter() - start, 1), line.rstrip()])
        print(f"  [{lines[-1][0]:7.1f}s] {line.rstrip()}", flush=True)
    stdout = proc.stdout.read()
    proc.wait()
    watcher.join()
    ready = next((t for t, text in lines if text.startswith("sandbox tier")), None)
    loads = box.get("load_average_1min") or [0.0]
    return {"command": " ".join(cmd[1:]), "exit_code": proc.returncode,
            "load_average_1min": {"mean": sum(loads) / len(loads), "max": max(loads)},
            "wall_seconds": time.perf_counter() - start, "seconds_until_first_evaluation": ready,
            "host_peak_rss_mb": box.get("peak_rss_mb"), "log": lines,
            "summary": json.loads(stdout) if proc.returncode == 0 and stdout.strip() else stdout[-2000:]}


def cli_json(ws: Path, env: dict, *args: str):
    """``agenticrs ARGS --json``; a schema upgraded meanwhile (shared tree) is migrated once."""
    cmd = CLI + ["--workspace", str(ws), *args, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode and "agenticrs init" in done.stderr:
        subprocess.run(CLI + ["--workspace", str(ws), "init"], capture_output=True, env=env, cwd=ROOT)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def experiments(ws: Path, env: dict) -> list[dict]:
    """One row per experiment (= one evaluation stage of one candidate), from the KB."""
    rows = []
    for e in sorted(cli_json(ws, env, "history", "--limit", "200"), key=lambda e: e["id"]):
        full = cli_json(ws, env, "history", "show", str(e["id"]))
        m = full.get("metrics") or {}
        failures = full.get("failures") or []
        rows.append({"id": e["id"], "stage": e["stage"], "family": e["family"], "status": e["status"],
                     "params": full.get("params"), "inner_reward": e["inner_reward"],
                     "wall_seconds": e["wall_seconds"], "fit_seconds": m.get("fit_seconds"),
                     "latency_ms_per_user": m.get("latency_ms_per_user"),
                     "peak_memory_mb": m.get("peak_memory_mb"),
                     "failure": {k: str(v)[:300] for k, v in failures[0].items()
                                 if k not in ("traceback_tail", "stderr_tail")} if failures else None})
    return rows


ALL_STAGES = {"load", "scoring", "design", "families"}


def evaluate_family(ws: Path, env: dict, family: str, args) -> dict:
    """One family at its defaults on the full validation set, with a wall limit high enough
    to finish: its sandbox peak memory against the default memory limit."""
    start = time.perf_counter()
    cmd = CLI + ["--workspace", str(ws), "evaluate", family, "--n-users", str(args.n_users),
                 "--n-items", str(args.n_items), "--wall-limit", "1500", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"exit_code": done.returncode, "error": done.stderr.strip()[-1000:]}
    return {"outcome": data["outcome"], "error": data["error"], "wall_seconds": data["wall_seconds"],
            "fit_seconds": data["fit_seconds"], "recommend_seconds": data["recommend_seconds"],
            "peak_memory_mb": data["peak_memory_mb"], "ndcg@10": data["metrics"].get("ndcg@10"),
            "process_seconds": time.perf_counter() - start, "load_average_1min_after": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-users", type=int, default=70000)
    parser.add_argument("--n-items", type=int, default=10700)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale_ml10m.json")
    parser.add_argument("--stages", default="load,scoring,design,families",
                        help="comma-separated subset of load,scoring,design,families")
    parser.add_argument("--families", default="popularity,ease,itemknn,recency_ease,ials,mmr")
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTICRS_") or k.startswith("AGENTICRS_SANDBOX_")}
    result = json.loads(args.out.read_text()) if stages != ALL_STAGES and args.out.is_file() else {}
    result.update({"machine": machine(), "data": f"synthetic --n-users {args.n_users} --n-items {args.n_items}"})
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every stage: a late failure keeps the numbers measured so far
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    ws = Path(tempfile.mkdtemp(prefix="agenticrs-scale-")) / "ws"
    subprocess.run(CLI + ["--workspace", str(ws), "init"], check=True, env=env, cwd=ROOT, capture_output=True)
    cache = str(ws / "cache")
    for name in ("cold", "warm"):  # always: the warm cache is what later stages use
        code = LOAD_SPLIT.format(n_users=args.n_users, n_items=args.n_items, cache=cache)
        result[f"load_split_{name}"] = python_json(code, env)
        print(f"load+split {name}: {result[f'load_split_{name}']}", flush=True)
    if "scoring" in stages:
        result["harness_scoring"] = python_json(
            SCORING.format(n_users=args.n_users, n_items=args.n_items, cache=cache), env)
        print(f"harness scoring: {result['harness_scoring']}", flush=True)
    save()
    if "design" in stages:
        result["design"] = run_design(ws, args, env)
        save()
        result["experiments"] = experiments(ws, env)
        save()
    if "families" in stages:
        result["families"] = {}
        for family in args.families.split(","):
            result["families"][family] = evaluate_family(ws, env, family, args)
            print(f"family {family}: {result['families'][family]}", flush=True)
            save()
    shutil.rmtree(ws.parent, ignore_errors=True)  # kept for inspection when a step above failed
    print(f"wrote {args.out}")
    for e in result.get("experiments", []) if "design" in stages else []:
        print(f"{e['id']:>3} {e['stage']:<13} {e['family'] or '-':<13} {e['status']:<14} "
              f"wall {e['wall_seconds'] or 0:6.1f}s  fit {e['fit_seconds'] or 0:6.1f}s  "
              f"peak {e['peak_memory_mb'] or 0:6.0f} MB")


if __name__ == "__main__":
    main()
