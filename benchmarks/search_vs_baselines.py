"""Best validation NDCG@10 against evaluations used: our loop vs plain Optuna TPE and random search.

Same data, split, sandbox, families and budget for all three. "Evaluations" are sandbox runs
on the validation split (the loop's cheap-stage runs count as one each, though they cost
less); sealed-test runs are not counted. Also measures the second-run (warm start) effect:
evaluations a fresh run needs to reach the first run's best, with and without the KB.

    python benchmarks/search_vs_baselines.py --dataset ml-100k --data-dir ../shared/data/ml-100k --budget 30
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.builtin_agents import builtin_specs  # noqa: E402
from designer.executor import LocalExecutor, load_split  # noqa: E402
from designer.families import load_families  # noqa: E402
from designer.loop import DesignLoop  # noqa: E402
from designer.proposers.search import SearchProposer, distributions  # noqa: E402
from designer.release import Releaser  # noqa: E402
from designer.settings import DesignSettings  # noqa: E402
from designer.versions import AgentRepository  # noqa: E402
from designer.workspace import Workspace  # noqa: E402
from knowledge_base.store import Store  # noqa: E402
from sandbox.evaluation import EvaluationJob  # noqa: E402


class CountingExecutor:
    """Counts validation runs and keeps the best full-fidelity validation reward after each."""

    def __init__(self, inner: LocalExecutor, initial_best: float = 0.0):
        self.inner, self.dataset_key = inner, inner.dataset_key
        self.initial_best = initial_best
        self.curve: list[float] = []
        self.seconds = 0.0

    def evaluate(self, job: EvaluationJob, run_dir: Path):
        start = time.perf_counter()
        result = self.inner.evaluate(job, run_dir)
        self.seconds += time.perf_counter() - start
        if job.stage == "validation":
            best = self.curve[-1] if self.curve else self.initial_best
            full = job.user_fraction == 1.0 and job.fidelity == 1.0
            if full and result.inner_reward is not None:
                best = max(best, result.inner_reward)
            self.curve.append(best)
        return result


def new_workspace(root: Path, families) -> tuple[Workspace, Store, Releaser]:
    ws = Workspace.create(root)
    store = Store.open(ws.db_url)
    store.upgrade()
    releaser = Releaser(store, AgentRepository.init(ws.agents_repo))
    for spec in builtin_specs(families):
        store.upsert_agent(spec)
        family = families[spec.family]
        releaser.publish_initial(spec.name, spec.family, family.defaults(), family.render(family.defaults()))
    return ws, store, releaser


def run_loop(settings, split, families, budget: int, root: Path, warm: bool = False):
    """The design loop; ``warm`` continues on the knowledge base a previous call left in ``root``."""
    ws, store, releaser = _reopen(root) if warm else new_workspace(root, families)
    known = [e.inner_reward for e in store.list_experiments(agent_name="recommender", stage="full", limit=10_000)
             if e.inner_reward is not None]
    executor = CountingExecutor(LocalExecutor(settings, ws.cache_dir, split=split), max(known, default=0.0))
    loop = DesignLoop(store=store, proposer=SearchProposer(seed=settings.seed), executor=executor,
                      releaser=releaser, families=families, agent_name="recommender",
                      settings=settings.model_copy(update={"workspace": ws.root}), workspace=ws,
                      auto_approve=True)
    loop.resume()
    loop.incumbent()
    while len(executor.curve) < budget:
        loop.step()
    store.close()
    return executor


def _reopen(root: Path):
    ws = Workspace.open(root)
    store = Store.open(ws.db_url)
    return ws, store, Releaser(store, AgentRepository(ws.agents_repo))


def suggest(trial: optuna.Trial, name: str, dist):
    """A value from ``dist`` through Optuna's public suggest API."""
    if isinstance(dist, optuna.distributions.FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_categorical(name, dist.choices)


def run_optuna(settings, split, families, budget: int, root: Path, sampler) -> CountingExecutor:
    executor = CountingExecutor(LocalExecutor(settings, root / "cache", split=split))
    names = [n for n, f in families.items() if f.role == "recommender"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("family", names)
        family = families[name]
        params = {p: suggest(trial, f"{name}.{p}", d) for p, d in distributions(family).items()}
        params = family.validate(params)
        job = EvaluationJob(code=family.render(params), params=params, seed=settings.seed,
                            limits=settings.limits.model_copy(update={"wall_seconds": family.time_limit_seconds}))
        result = executor.evaluate(job, root / "runs" / f"{trial.number:04d}")
        return result.inner_reward if result.inner_reward is not None else 0.0

    study.optimize(objective, n_trials=budget)
    return executor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/ml-100k"))
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--methods", default="loop,tpe,random,warm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search_vs_baselines.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = DesignSettings(dataset=args.dataset, data_dir=args.data_dir, seed=args.seed)
    families = load_families()
    tmp = Path(tempfile.mkdtemp(prefix="agenticrs-bench-"))
    split = load_split(settings, tmp / "shared-cache")
    results: dict[str, dict] = {}
    methods = args.methods.split(",")
    for method in methods:
        start = time.perf_counter()
        if method == "loop":
            ex = run_loop(settings, split, families, args.budget, tmp / "loop")
        elif method == "tpe":
            ex = run_optuna(settings, split, families, args.budget, tmp / "tpe",
                            optuna.samplers.TPESampler(seed=args.seed))
        elif method == "random":
            ex = run_optuna(settings, split, families, args.budget, tmp / "random",
                            optuna.samplers.RandomSampler(seed=args.seed))
        elif method == "warm":
            first = results.get("loop", {}).get("best")
            if first is None:
                continue
            ex = run_loop(settings, split, families, max(5, args.budget // 3), tmp / "loop", warm=True)
            results["warm"] = {"note": "second run on the first run's knowledge base",
                               "curve": ex.curve, "start": ex.initial_best,
                               "reached_first_best_after": 0 if ex.initial_best >= first - 1e-12 else _reach(ex.curve, first),
                               "seconds": round(time.perf_counter() - start, 1)}
            continue
        else:
            raise SystemExit(f"unknown method {method}")
        results[method] = {"curve": ex.curve, "best": max(ex.curve) if ex.curve else None,
                           "seconds": round(time.perf_counter() - start, 1)}
        print(f"{method:>7}: best {results[method]['best']:.4f} after {len(ex.curve)} evaluations, "
              f"{results[method]['seconds']:.0f} s", flush=True)
    if "loop" in results:
        first = results["loop"]["best"]
        results["cold_reach_first_best"] = {m: _reach(results[m]["curve"], first) for m in ("loop", "tpe", "random")
                                            if m in results}
    machine = {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
               "cores": __import__("os").cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "budget": args.budget, "dataset": args.dataset,
                                    "results": results}, indent=2))
    print(_table(results, args.budget))
    print(f"machine: {machine}; written to {args.out}")


def _reach(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v >= target - 1e-12), None)


def _table(results: dict, budget: int) -> str:
    marks = [m for m in (5, 10, 15, 20, 30, 40, 50) if m <= budget]
    lines = ["| method | " + " | ".join(f"best@{m}" for m in marks) + " | seconds |",
             "|---|" + "---|" * (len(marks) + 1)]
    for method in ("loop", "tpe", "random"):
        if method in results:
            c = results[method]["curve"]
            lines.append(f"| {method} | " + " | ".join(f"{c[min(m, len(c)) - 1]:.4f}" for m in marks)
                         + f" | {results[method]['seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
