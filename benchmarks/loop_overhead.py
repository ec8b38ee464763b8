"""The design loop's own time per experiment on cheap candidates (issue 12, item 5).

A real serial design session: search proposer, the real sandbox (``LocalExecutor``), the
knowledge base on SQLite and the agents repository in git, in a temporary workspace, on
ml-100k restricted to cheap families (popularity, itemknn, ease). Reports the session's
wall time, the candidates' own fit + recommend seconds, the sandbox runs' wall time, the
loop's own time per experiment (wall - sandbox runs, over the experiments; and this
process's CPU time, which the machine's load does not inflate as much) and the efficiency
(fit + recommend over wall). ``sandbox_startup_seconds_per_run`` is the part of a sandbox
run before the candidate's ``fit``: isolation, interpreter, imports, loading the inputs.

    .venv/bin/python benchmarks/loop_overhead.py [--iterations 30] [--profile out.prof]
"""
from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.executor import LocalExecutor, load_split  # noqa: E402
from designer.families import load_families  # noqa: E402
from designer.loop import DesignLoop  # noqa: E402
from designer.proposers.search import SearchProposer  # noqa: E402
from designer.settings import DesignSettings  # noqa: E402
from sandbox.evaluation import EvaluationJob, EvaluationResult  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_vs_baselines import new_workspace  # noqa: E402

CHEAP = ("popularity", "itemknn", "ease")
ML100K = Path(os.environ.get("AGENTICRS_TEST_ML100K")
              or Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k")


class TimingExecutor:
    """Passes jobs to ``inner`` and adds up, per run: the evaluation's wall time as the loop
    sees it, the sandbox run's wall time, and the candidate's fit and recommend seconds."""

    def __init__(self, inner: LocalExecutor):
        self.inner, self.dataset_key = inner, inner.dataset_key
        self.runs: list[dict] = []

    def evaluate(self, job: EvaluationJob, run_dir: Path) -> EvaluationResult:
        start = time.perf_counter()
        result = self.inner.evaluate(job, run_dir)
        self.runs.append({"stage": job.stage, "outcome": result.outcome.value,
                          "evaluate_seconds": time.perf_counter() - start,
                          "sandbox_seconds": result.wall_seconds,
                          "fit_seconds": result.fit_seconds or 0.0,
                          "recommend_seconds": result.recommend_seconds or 0.0})
        return result


def _driver_cpu() -> float:
    """CPU seconds of this process (all its threads, not the sandboxed children): the loop's
    own work, whatever else loads the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.machine())
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def run_session(iterations: int, seed: int, profile: Path | None) -> dict:
    settings = DesignSettings(dataset="ml-100k", data_dir=ML100K, seed=seed)
    families = {name: f for name, f in load_families().items() if name in CHEAP}
    root = Path(tempfile.mkdtemp(prefix="agenticrs-loop-overhead-"))
    ws, store, releaser = new_workspace(root, families)
    settings = settings.model_copy(update={"workspace": ws.root})
    split = load_split(settings, ws.cache_dir)
    executor = TimingExecutor(LocalExecutor(settings, ws.cache_dir, split=split))
    loop = DesignLoop(store=store, proposer=SearchProposer(seed=seed), executor=executor,
                      releaser=releaser, families=families, agent_name="recommender",
                      settings=settings, workspace=ws, auto_approve=True)
    profiler = cProfile.Profile() if profile else None
    load_before = os.getloadavg()
    cpu_before, start = _driver_cpu(), time.perf_counter()
    if profiler:
        profiler.enable()
    summary = loop.run(iterations=iterations)
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    wall, cpu = time.perf_counter() - start, _driver_cpu() - cpu_before
    experiments = store.list_experiments(agent_name="recommender", session_id=loop.session_id, limit=10_000)
    store.close()
    runs = executor.runs
    sandbox = sum(r["sandbox_seconds"] for r in runs)
    evaluate = sum(r["evaluate_seconds"] for r in runs)
    own = sum(r["fit_seconds"] + r["recommend_seconds"] for r in runs)
    n = len(experiments)
    return {
        "iterations": iterations, "experiments": n, "sandbox_runs": len(runs),
        "sealed_test_runs": sum(r["stage"] == "test" for r in runs),
        "promoted": len(summary.promoted), "approved": summary.approved,
        "best_reward": summary.best_reward,
        "proposals": [(e.family, e.stage, e.params) for e in sorted(experiments, key=lambda e: e.id)],
        "session_wall_seconds": round(wall, 2),
        "fit_recommend_seconds": round(own, 2),
        "sandbox_run_seconds": round(sandbox, 2),
        "evaluate_seconds": round(evaluate, 2),
        "loop_seconds_per_experiment": round((wall - sandbox) / max(1, n), 3),
        "loop_seconds_per_sandbox_run": round((wall - sandbox) / max(1, len(runs)), 3),
        "driver_cpu_seconds_per_experiment": round(cpu / max(1, n), 3),
        "sandbox_startup_seconds_per_run": round((sandbox - own) / max(1, len(runs)), 3),
        "outside_sandbox_in_evaluator_per_run": round((evaluate - sandbox) / max(1, len(runs)), 3),
        "efficiency": round(own / wall, 3) if wall else None,
        "efficiency_of_sandbox_time": round(own / sandbox, 3) if sandbox else None,
        "load_average_before": [round(x, 2) for x in load_before],
        "workspace": str(root),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the session here")
    parser.add_argument("--label", default="after", help="key of this run in the results file")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "loop_overhead.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not (ML100K / "u.data").is_file():
        raise SystemExit(f"no ml-100k at {ML100K}: set AGENTICRS_TEST_ML100K to a folder holding u.data")
    session = run_session(args.iterations, args.seed, args.profile)
    info = machine()
    info["load_average_before"] = session.pop("load_average_before")
    info["load_average_after"] = info.pop("load_average")
    result = {"machine": info, **session}
    shown = {k: v for k, v in result.items() if k not in ("proposals", "approved")}
    print(json.dumps(shown, indent=1))
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    previous[args.label] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(previous, indent=2, default=str) + "\n")
    print(f"written to {args.out} as {args.label!r}")


if __name__ == "__main__":
    main()
