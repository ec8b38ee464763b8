"""Does routing cold users down their own branch help them? (issue 10, synthetic)

    .venv/bin/python benchmarks/pipeline_routing.py

On the default synthetic data set (3000 users, 1500 items; 30% cold-start users with
3 + Poisson(3) interactions), the same heavy-user branch (recency-weighted EASE + EASE,
reciprocal-rank fusion) is evaluated on validation through the real sandbox alone and
behind an ``activity_router`` that sends users with fewer than ``threshold`` train
interactions to a cold branch (recency-weighted EASE alone, or fused with item-kNN or
popularity).
Reported: val ndcg@10 overall and per activity segment (cold/medium/heavy) for each.
Results: benchmarks/results/pipeline_routing.json with the machine.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
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

HEAVY = """  - sources:
      - {family: recency_ease, quota: 100}
      - {family: ease, quota: 100}
    ranker: {family: fusion, params: {method: rrf, w1: 0.3}}
"""
COLD = {
    "recency_ease alone": """  - sources:
      - {family: recency_ease, quota: 100}
    ranker: {family: fusion}
""",
    "recency_ease + item-kNN": """  - sources:
      - {family: recency_ease, quota: 100}
      - {family: itemknn, quota: 100}
    ranker: {family: fusion, params: {method: rrf, w1: 0.3}}
""",
    "recency_ease + popularity": """  - sources:
      - {family: recency_ease, quota: 100}
      - {family: popularity, quota: 100}
    ranker: {family: fusion, params: {method: rrf, w1: 0.2}}
""",
}


def main() -> None:
    families = load_families()
    variants = {"no router": "name: r\nbranches:\n" + HEAVY}
    for threshold in (6, 10):
        for label, cold in COLD.items():
            variants[f"router <{threshold}, cold branch {label}"] = (
                f"name: r\nrouter: {{family: activity_router, params: {{threshold: {threshold}}}}}\nbranches:\n"
                + cold + HEAVY)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        split = split_interactions(load_dataset("synthetic", cache_dir=Path(tmp) / "ds"), method="user_temporal")
        evaluator = Evaluator(make_runner(), split, Path(tmp) / "cache")
        for name, text in variants.items():
            spec = PipelineSpec.from_yaml(text)
            job = EvaluationJob(code=spec.to_yaml(), stage="validation", k=10, limits=Limits(threads=2),
                                pipeline=resolve(spec, store=None, repo=None, families=families))
            result = evaluator.evaluate(job, Path(tmp) / name.replace(" ", "_").replace("<", "lt"))
            assert result.outcome.value == "COMPLETED", result.message
            seg = {s: round(result.segments[s]["ndcg@10"], 4) for s in ("cold", "medium", "heavy") if s in result.segments}
            rows[name] = {"val_ndcg@10": round(result.inner_reward, 4), "segments_val_ndcg@10": seg,
                          "cold_users": int(result.segments.get("cold", {}).get("n_users", 0))}
            print(f"{name}: val ndcg@10 {result.inner_reward:.4f}, by segment {seg}", flush=True)
    out = {"dataset": "synthetic (3000 x 1500)", "variants": rows,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "load_average_1min": round(os.getloadavg()[0], 2)}}
    (ROOT / "benchmarks" / "results" / "pipeline_routing.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
