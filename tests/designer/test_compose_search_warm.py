"""The composition search's first proposals: the most promising pipelines first, because
LORD++ grants its highest test levels right after a promotion."""
from __future__ import annotations

from optuna.trial import FixedTrial

from designer.pipelines.pool import PoolOption
from designer.pipelines.spec import MAX_SOURCES, PipelineSpec
from designer.proposers.compose_search import CompositionSearchProposer

NAMES = ["recency_ease", "ease", "sasrec", "ials", "itemknn", "popularity"]
POOL = [PoolOption(f"family:{n}", {"family": n, "params": {}}, n, None) for n in NAMES]
BASE = PipelineSpec.from_yaml("name: p\nbranches:\n  - sources:\n      - {family: popularity, quota: 10}\n"
                              "    ranker: {family: fusion}\n")


def warm_specs(pool=POOL):
    proposer = CompositionSearchProposer(pool)
    return [proposer._spec(FixedTrial(point), BASE).branches[0] for point in proposer._warm_points()]


def families(branch) -> list[str]:
    return [s.family for s in branch.sources]


def test_the_best_source_alone_then_the_widest_learned_pipeline_come_first():
    first, second, *rest = warm_specs()
    assert families(first) == ["recency_ease"] and first.ranker.family == "fusion"
    assert families(second) == NAMES[:MAX_SOURCES] and second.ranker.family == "mlp_ranker"


def test_every_further_source_is_tried_as_the_third_of_the_two_best():
    thirds = [families(b) for b in warm_specs()[2:] if len(b.sources) == 3 and b.ranker.family == "mlp_ranker"]
    assert thirds == [NAMES[:2] + [n] for n in NAMES[2:]]


def test_a_pool_of_one_still_gives_complete_pipelines():
    specs = warm_specs(POOL[:1])
    assert specs and all(families(b) == ["recency_ease"] for b in specs)
