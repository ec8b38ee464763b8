"""Calibration of promotion: false promotions in null sessions, held-out agreement of real
sessions, and power, before (the first wave's gate: one paired test per candidate at
alpha=0.05, no confirmation, no veto) and after (LORD++ over the subject's stream,
confirmation on the earlier window and another seed, sealed test as a veto).

Everything runs through the real loop, knowledge base, git repository and sandbox.

    python benchmarks/promotion_calibration.py null --comparisons 200
    python benchmarks/promotion_calibration.py agreement --iterations 30
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_vs_baselines import new_workspace  # noqa: E402

from designer.events import EventKind  # noqa: E402
from designer.executor import LocalExecutor, load_split  # noqa: E402
from designer.families import FamilyError, load_families  # noqa: E402
from designer.loop import DesignLoop  # noqa: E402
from designer.proposal import Proposal, ProposalKind  # noqa: E402
from designer.proposers.search import SearchProposer  # noqa: E402
from designer.settings import DesignSettings  # noqa: E402
from knowledge_base.models import AgentSpec, PromotionState  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "promotion_calibration.json"
ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"

# A stochastic champion: popularity with item-level noise drawn from `seed`. Another seed is
# the same agent: every comparison of two seeds is a true null. The noise is shared by all
# users of a run, so per-user differences are correlated: exactly what a per-user paired test
# ignores and a second seed exposes.
NOISY_POPULARITY = '''"""Popularity with item-level noise from `seed` (a null-benchmark agent)."""
import numpy as np

import agent_sdk


class Agent:
    def __init__(self, seed=0, noise=0.2):
        self.seed, self.noise = int(seed), float(noise)

    def fit(self, train):
        counts = np.bincount(train.item, minlength=train.n_items).astype(np.float64)
        rng = np.random.default_rng(self.seed)
        self.scores = np.log1p(counts) + rng.normal(0.0, self.noise, train.n_items)
        self.seen = train.matrix()

    def recommend(self, users, k):
        users = np.asarray(users, dtype=np.int64)
        return agent_sdk.topk_unseen_blocks(
            lambda block: np.broadcast_to(self.scores, (len(block), len(self.scores))), self.seen, users, k)
'''

BEFORE = {"error_control": "per-test", "confirm": False, "veto": False}
AFTER = {"error_control": "lord++", "confirm": True, "veto": True}


class NullProposer:
    """The champion's code with another seed (3 in 4), or a behaviourally identical edit."""

    name = "null"

    def __init__(self):
        self.n = 0

    def propose(self, context):
        self.n += 1
        if self.n % 4:
            return Proposal(proposer="null", kind=ProposalKind.CODE, family="custom", code=NOISY_POPULARITY,
                            params={"seed": 1000 + self.n}, rationale="another seed")
        edit = NOISY_POPULARITY + f"\n# identical behaviour, edit {self.n}\n"
        return Proposal(proposer="null", kind=ProposalKind.CODE, family="custom", code=edit,
                        params=dict(context.parent.params), rationale="comment-only edit")


class TweakProposer:
    """A scripted "LLM" that keeps rewriting the champion's module with small changes: the
    champion family rendered with jittered parameters, as code (family `custom`)."""

    name = "scripted-llm"

    def __init__(self, families, seed: int = 0):
        self.families, self.rng = families, np.random.default_rng(seed)

    def propose(self, context):
        family = self.families["recency_ease"]
        defaults = family.defaults()
        start = context.parent.params if set(context.parent.params) == set(defaults) else defaults
        params = dict(start)
        for _ in range(20):        # a jitter inside the family's declared space
            tweaked = {key: float(value * np.exp(self.rng.normal(0, 0.25)))
                       if isinstance(value, float) and value > 0 else value for key, value in params.items()}
            try:
                params = family.validate(tweaked)
                break
            except FamilyError:
                continue
        code = family.render(params) + f"\n# tweak {self.rng.integers(1 << 30)}\n"
        return Proposal(proposer="scripted-llm", kind=ProposalKind.CODE, family=family.name, code=code,
                        params=params, rationale="small rewrite of the champion")


def settings_for(dataset: str, promotion: dict, root: Path) -> DesignSettings:
    base = DesignSettings(workspace=root, dataset=dataset,
                          data_dir=ML100K if dataset == "ml-100k" else None)
    return base.model_copy(update={"promotion": base.promotion.model_copy(update=promotion)})


def run_session(root: Path, settings: DesignSettings, proposer, agent: str, iterations: int,
                split=None, families=None, comparisons: int | None = None):
    """A session of ``iterations`` steps, or until ``comparisons`` full-stage tests were made."""
    families = families or load_families()
    ws, store, releaser = new_workspace(root, families)
    if agent == "null-subject":
        store.upsert_agent(AgentSpec(name=agent, family="custom", description="null benchmark"))
        releaser.publish_initial(agent, "custom", {"seed": 0}, NOISY_POPULARITY)
    executor = LocalExecutor(settings.model_copy(update={"workspace": ws.root}), ws.cache_dir, split=split)
    events = []
    loop = DesignLoop(store=store, proposer=proposer, executor=executor, releaser=releaser, families=families,
                      agent_name=agent, settings=settings.model_copy(update={"workspace": ws.root}),
                      workspace=ws, auto_approve=True, on_event=events.append)
    start = time.perf_counter()
    if comparisons is None:
        loop.run(iterations=iterations)
    else:
        loop.resume()
        while store.count_error_control_tests(agent) < comparisons and loop.iteration < iterations:
            loop.step()
    return store, loop, events, time.perf_counter() - start


def promotions(store, agent: str, events) -> list[dict]:
    """Each approved version: validation and sealed-test deltas against its parent."""
    iteration = {e.experiment_id: e.iteration for e in events if e.kind is EventKind.APPROVED}
    rows = []
    for v in store.list_versions(agent):
        if v.experiment_id is None or v.number == 1:
            continue
        exp = store.get_experiment(v.experiment_id)
        verdict = (store.get_test_metrics(exp.id) or {}).get("verdict") or {}
        rows.append({"version": v.tag, "family": v.family, "iteration": iteration.get(exp.id),
                     "val_delta": exp.effect_size, "p_value": exp.p_value,
                     "alpha": (exp.evidence or {}).get("validation", {}).get("alpha"),
                     "test_delta": verdict.get("delta"), "test_beats_parent": (verdict.get("delta") or 0) > 0})
    return rows


def null_benchmark(comparisons: int, dataset: str) -> dict:
    out = {}
    for label, promotion in (("before", BEFORE), ("after", AFTER)):
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(dataset, promotion, Path(tmp))
            store, loop, events, seconds = run_session(Path(tmp) / "ws", settings, NullProposer(),
                                                       "null-subject", 5 * comparisons, comparisons=comparisons)
            tests = store.list_error_control_tests("null-subject")
            rows = promotions(store, "null-subject", events)
            out[label] = {"promotion_settings": promotion, "iterations": loop.iteration,
                          "comparisons": len(tests), "false_promotions": len(rows),
                          "passed_validation": sum(t.passed for t in tests),
                          "not_confirmed": sum(1 for t in tests if t.passed and t.discovery is False),
                          "seconds": round(seconds, 1), "promotions": rows}
            print(label, {k: v for k, v in out[label].items() if k != "promotions"}, flush=True)
            store.close()
    return out


def agreement_benchmark(iterations: int, datasets: list[str], scenarios: list[str]) -> dict:
    families = load_families()
    out = {}
    for dataset in datasets:
        for scenario in scenarios:
            for label, promotion in (("before", BEFORE), ("after", AFTER)):
                with tempfile.TemporaryDirectory() as tmp:
                    settings = settings_for(dataset, promotion, Path(tmp))
                    split = load_split(settings, Path(tmp) / "split-cache")
                    search = SearchProposer(seed=settings.seed)
                    proposer = search if scenario == "search" else _Chain(search, TweakProposer(families), 8)
                    store, loop, events, seconds = run_session(Path(tmp) / "ws", settings, proposer, "recommender",
                                                               iterations, split=split, families=families)
                    rows = promotions(store, "recommender", events)
                    key = f"{dataset}/{scenario}/{label}"
                    out[key] = {"promotions": rows, "n_promotions": len(rows),
                                "beat_parent_on_test": sum(r["test_beats_parent"] for r in rows),
                                "seconds": round(seconds, 1)}
                    print(key, {k: v for k, v in out[key].items() if k != "promotions"},
                          [(r["version"], r["family"], r["iteration"], r["test_delta"]) for r in rows], flush=True)
                    save({f"agreement/{key}": out[key]})
                    store.close()
    return out


class _Chain:
    """``first`` for ``n`` iterations (to reach the search champion), then ``then``."""

    def __init__(self, first, then, n: int):
        self.first, self.then, self.n, self.i = first, then, n, 0
        self.name = "chain"

    def propose(self, context):
        self.i += 1
        return (self.first if self.i <= self.n else self.then).propose(context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["null", "agreement"])
    parser.add_argument("--comparisons", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--datasets", default="ml-100k,synthetic")
    parser.add_argument("--scenarios", default="search,scripted-llm")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.which == "null":
        save({"null": null_benchmark(args.comparisons, args.dataset)})
    else:
        agreement_benchmark(args.iterations, args.datasets.split(","), args.scenarios.split(","))
    print(f"written {RESULTS}")


def save(section: dict) -> None:
    """Merge ``section`` into the results file (read late: runs may overlap)."""
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results.update(section)
    results["machine"] = f"{platform.machine()} {platform.processor() or ''} {platform.python_version()}".strip()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
