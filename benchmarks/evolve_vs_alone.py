"""`evolve` vs `design` alone vs `compose` alone, same budget, fresh workspaces (issue 11).

    .venv/bin/python benchmarks/evolve_vs_alone.py [--budget 2400] [--dataset ml-100k] [--pool NAME,...]

Each arm runs the real CLI in its own fresh workspace with ``--auto-approve`` and the search
proposer: ``design --agent recommender --time-budget B``; ``compose --pipeline default
--time-budget B``; ``evolve --pipeline default --budget-seconds B`` (``--pool``: the recall
pool of the last two, e.g. ``recommender,ease,sasrec,ials``; ``--workspaces DIR`` keeps the
workspaces and reuses an arm that finished there). Reported per arm: the
final champion (the recommender's for `design`, the pipeline's otherwise), its val ndcg@10,
its sealed test ndcg@10 (scored once when it was promoted; the starting version has none),
the number of experiments, the wall time; and the paired validation test of evolve's
champion against each other arm's (same validation users). Results:
benchmarks/results/evolve_vs_alone.json with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from designer.promotion import align, compare  # noqa: E402
from designer.settings import PromotionConfig  # noqa: E402
from knowledge_base.store import Store  # noqa: E402

BIN = Path(sys.executable).with_name("agenticrs")


def run(ws: Path, *args: str) -> dict:
    out = subprocess.run([str(BIN), "--workspace", str(ws), *args, "--json"], capture_output=True, text=True,
                         env={**os.environ, "NO_COLOR": "1"})
    if out.returncode != 0:
        raise SystemExit(f"agenticrs {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def champion_numbers(ws: Path, name: str) -> dict:
    store = Store.open(f"sqlite:///{ws / 'knowledge.db'}")
    champion = store.champion(name)
    exp = store.get_experiment(champion.experiment_id) if champion.experiment_id else None
    if exp is None:   # never promoted: its baseline run
        runs = [e for e in store.list_experiments(agent_name=name, stage="full", limit=10_000)
                if e.proposer == "baseline" and e.parent_version_id == champion.id]
        exp = max(runs, key=lambda e: e.id)
    test = (store.get_test_metrics(exp.id) or {}).get("metrics", {}) if champion.experiment_id else {}
    users, rewards = store.get_user_scores(exp.id)
    n = store.count_experiments()
    store.close()
    return {"champion": champion.tag, "val_ndcg@10": exp.inner_reward, "test_ndcg@10": test.get("ndcg@10"),
            "experiments": n, "users": users, "rewards": rewards}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=2400)
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--pool", default=None, help="recall pool of the compose and evolve arms")
    ap.add_argument("--workspaces", type=Path, default=None,
                    help="keep each arm's workspace in DIR/ARM; an arm whose DIR/ARM/arm.json exists "
                         "(it finished there) is read, not run again (default: a temporary folder)")
    args = ap.parse_args()
    pool = ["--pool", args.pool] if args.pool else []
    data = ["--dataset", args.dataset] + (["--data-dir", args.data_dir] if args.dataset == "ml-100k" else [])
    b = str(int(args.budget))
    arms = {"design": (["design", "--agent", "recommender", "--time-budget", b], "recommender"),
            "compose": (["compose", "--pipeline", "default", "--time-budget", b, *pool], "default"),
            "evolve": (["evolve", "--pipeline", "default", "--budget-seconds", b, *pool], "default")}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workspaces or Path(tmp)
        for arm, (cmd, subject) in arms.items():
            ws = root / arm
            done = ws / "arm.json"
            if done.is_file():      # it finished in an earlier run of this benchmark
                seconds, summary = (lambda d: (d["seconds"], d["summary"]))(json.loads(done.read_text()))
                print(f"{arm}: reusing the finished run in {ws}", flush=True)
            else:
                run(ws, "init")
                start = time.perf_counter()
                summary = run(ws, *cmd, "--auto-approve", *data)
                seconds = time.perf_counter() - start
                done.write_text(json.dumps({"seconds": seconds, "summary": summary, "command": cmd}, default=str))
            numbers = champion_numbers(ws, subject)
            numbers["seconds"] = round(seconds, 1)
            if arm == "evolve":
                numbers["phases"] = [{k: p[k] for k in ("kind", "target", "iterations", "promotions", "ended_because")}
                                     for p in summary["phases"]]
            results[arm] = numbers
            print(f"{arm}: {numbers['champion']} val ndcg@10 {numbers['val_ndcg@10']:.4f} test "
                  f"{numbers['test_ndcg@10']} in {seconds:.0f} s", flush=True)
    config = PromotionConfig()
    e = results["evolve"]
    for arm in ("design", "compose"):
        mine, theirs = align(e["users"], e["rewards"], results[arm]["users"], results[arm]["rewards"])
        c = compare(mine, theirs, config, alpha=0.05)
        results[f"evolve_vs_{arm}"] = {"gain": c.effect, "p_value": c.p_value, "n_users": len(mine)}
    for arm in arms:
        results[arm].pop("users"), results[arm].pop("rewards")
    out = {"budget_seconds": args.budget, "dataset": args.dataset, "pool": args.pool, "results": results,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "load_average_1min": round(os.getloadavg()[0], 2)}}
    print(json.dumps(out, indent=2, default=str))
    (ROOT / "benchmarks" / "results" / "evolve_vs_alone.json").write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
