"""Scripted LLM scenarios replayed through the real loop and sandbox (answers fixed: comparable runs).

A scripted OpenAI-compatible server answers the real prompts with a fixed list of realistic
answers (an EASE module that declares a SPACE, a renamed near-duplicate of it, an item-KNN
with a shape bug, the SEARCH/REPLACE fix of that bug, a syntax error, a forbidden import, a
recency-weighted EASE). ``design`` runs on ml-100k with ``--proposer llm`` and ``mixed``,
priced at $3 / $15 per million tokens. Reports promotions per LLM call, cost per promotion,
failures by class, near-duplicates caught, SPACE trials by search and time per iteration.

    python benchmarks/llm_scenarios.py --data-dir ../shared/data/ml-100k --iterations 6
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "designer" / "llm"))

from fake_llm_server import ScriptedLLMServer  # noqa: E402
from llm_fixtures import ListRecorder  # noqa: E402

from designer.executor import LocalExecutor, load_split  # noqa: E402
from designer.families import load_families  # noqa: E402
from designer.llm import LLMBudget, LLMProposer  # noqa: E402
from designer.llm.context_view import AskPolicy  # noqa: E402
from designer.llm.data_card import attach_data_card  # noqa: E402
from designer.llm.openai_client import OpenAIClient  # noqa: E402
from designer.loop import DesignLoop  # noqa: E402
from designer.proposers.mixed import MixedProposer  # noqa: E402
from designer.proposers.search import SearchProposer  # noqa: E402
from designer.settings import DesignSettings  # noqa: E402
from designer.static_check import check_module  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_vs_baselines import new_workspace  # noqa: E402

EASE = '''import numpy as np

import agent_sdk

SPACE = {
    "l2": {"type": "float", "low": 10.0, "high": 5000.0, "log": True, "default": 300.0},
    "pop_blend": {"type": "float", "low": 0.0, "high": 0.5, "default": 0.0},
}


class Agent:
    def __init__(self, l2=300.0, pop_blend=0.0):
        self.l2, self.pop_blend = float(l2), float(pop_blend)

    def fit(self, train):
        self.seen = train.matrix()
        X = self.seen.astype(np.float32)
        self.B = agent_sdk.ease_weights(X, self.l2, dtype=np.float32)
        pop = np.asarray(X.sum(axis=0)).ravel()
        self.pop = (pop / max(pop.max(), 1.0)).astype(np.float32)

    def recommend(self, users, k):
        scores = np.asarray(self.seen[users] @ self.B) + self.pop_blend * self.pop
        return agent_sdk.topk_unseen(scores, self.seen, users, k)
'''
RENAMED = (EASE.replace("self.B", "self.weights").replace("scores", "s").replace("pop", "popularity")
           .replace("import numpy as np\n\nimport agent_sdk", "import agent_sdk\nimport numpy as np"))
KNN = '''import numpy as np

import agent_sdk


class Agent:
    def __init__(self, **params):
        self.params = params

    def fit(self, train):
        self.seen = train.matrix()
        X = self.seen.astype(np.float64)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel()) + 1e-9
        S = (X.T @ X).toarray() / norms[:, None] / norms[None, :]
        np.fill_diagonal(S, 0.0)
        self.S = S

    def recommend(self, users, k):
        scores = self.seen[users] @ self.S[:100]
        return agent_sdk.topk_unseen(np.asarray(scores), self.seen, users, k)
'''
KNN_FIX = ("The item-item matrix was sliced to 100 rows; use all of it.\n<<<<<<< SEARCH\n"
           "        scores = self.seen[users] @ self.S[:100]\n=======\n"
           "        scores = self.seen[users] @ self.S\n>>>>>>> REPLACE\n")
DECAY = EASE.replace("        X = self.seen.astype(np.float32)\n",
                     "        age = (train.timestamp.max() - train.timestamp) / 86400.0\n"
                     "        import scipy.sparse as sp\n"
                     "        X = sp.csr_matrix((np.exp(-age / 60.0).astype(np.float32), (train.user, train.item)),\n"
                     "                          shape=(train.n_users, train.n_items))\n")
ANSWERS = [
    ("EASE with a popularity blend; both constants declared in SPACE.", EASE),
    ("EASE again, tidied.", RENAMED),
    ("Item-KNN with cosine similarity.", KNN),
    (None, KNN_FIX),
    ("A sequence model.", EASE.replace("def fit(self, train):", "def fit(self, train)")),
    ("Read a cached matrix.", "import os\n" + EASE.replace("0.5, \"default\"", "0.6, \"default\"")),
    ("EASE on recency-weighted interactions (60-day decay).", DECAY),
]


def script() -> list[str]:
    return [code if why is None else f"{why}\n\n```python\n{code}```\n" for why, code in ANSWERS]


def run(kind: str, settings, split, families, iterations: int, root: Path) -> dict:
    ws, store, releaser = new_workspace(root, families)
    executor = LocalExecutor(settings, ws.cache_dir, split=split)
    recorder = ListRecorder()
    with ScriptedLLMServer() as server:
        server.push(*script())
        llm = LLMProposer(OpenAIClient(api_base=server.url, prices=(3.0, 15.0)), model="scripted", recorder=recorder,
                          budget=LLMBudget(), ask_policy=AskPolicy(seed=0), timeout=30.0,
                          code_for=lambda e: store.get_code(e.code_hash))
        proposer = llm if kind == "llm" else MixedProposer(llm, SearchProposer(seed=0))
        attach_data_card(proposer, split, settings.k)
        loop = DesignLoop(store=store, proposer=proposer, executor=executor, releaser=releaser, families=families,
                          agent_name="recommender", settings=settings.model_copy(update={"workspace": ws.root}),
                          workspace=ws, auto_approve=True, static_check=check_module)
        start = time.perf_counter()
        summary = loop.run(iterations=iterations)
        seconds = time.perf_counter() - start
    experiments = store.list_experiments(agent_name="recommender", limit=10_000)
    rows = store.list_failures(agent_name="recommender", limit=1000)
    exhausted = sum(1 for f in rows if "script has no reply" in f.message)  # the replay ran out
    failures = collections.Counter(f.kind.value for f in rows if "script has no reply" not in f.message)
    cost = sum(d.cost_usd or 0.0 for d in recorder.drafts)
    promotions = len(summary.approved)
    store.close()
    answered = [d for d in recorder.drafts if "script has no reply" not in (d.error or "")]
    return {"iterations": iterations, "llm_calls": len(answered), "promotions": promotions,
            "promotions_per_call": round(promotions / max(1, len(answered)), 3), "cost_usd": round(cost, 4),
            "cost_per_promotion_usd": round(cost / promotions, 4) if promotions else None,
            "rejected_answers": sum(1 for d in recorder.drafts if (d.error or "").startswith("answer rejected")),
            "near_duplicates_caught": sum(1 for d in recorder.drafts if d.error and "too similar" in d.error),
            "failures_by_class": dict(failures),
            "failures_after_the_script_ran_out": exhausted,
            "space_trials_by_search": sum(1 for e in experiments if str(e.proposal.get("base_family", "")).startswith("llm-")
                                          and e.proposer == "search" and e.stage in ("cheap", "full")),
            "baseline_ndcg10": summary.baseline_reward, "best_ndcg10": summary.best_reward,
            "seconds_per_iteration": round(seconds / iterations, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/ml-100k"))
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--kinds", default="llm,mixed")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/llm_scenarios.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = DesignSettings(dataset=args.dataset, data_dir=args.data_dir)
    families = load_families()
    tmp = Path(tempfile.mkdtemp(prefix="agenticrs-llm-bench-"))
    split = load_split(settings, tmp / "shared-cache")
    results = {kind: run(kind, settings, split, families, args.iterations, tmp / kind)
               for kind in args.kinds.split(",")}
    report = {"dataset": args.dataset, "machine": platform.platform(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
