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


def test_the_best_source_alone_is_skipped_when_the_champion_already_scores_as_much():
    pool = [PoolOption(POOL[0].label, POOL[0].component, "champion", 0.2170), *POOL[1:]]
    proposer = CompositionSearchProposer(pool)

    def first(champion_reward):
        return families(proposer._spec(FixedTrial(proposer._warm_points(champion_reward)[0]), BASE).branches[0])
    assert first(0.2170) == NAMES[:MAX_SOURCES]       # no chance of a significant gain: not tried
    assert first(0.2100) == ["recency_ease"]         # a pipeline below its best source: tried first
    assert first(None) == ["recency_ease"]


def test_every_further_source_is_tried_as_the_third_of_the_two_best():
    thirds = [families(b) for b in warm_specs()[2:] if len(b.sources) == 3 and b.ranker.family == "mlp_ranker"]
    assert thirds == [NAMES[:2] + [n] for n in NAMES[2:]]


def test_a_pool_of_one_still_gives_complete_pipelines():
    specs = warm_specs(POOL[:1])
    assert specs and all(families(b) == ["recency_ease"] for b in specs)


def test_a_routed_point_sends_the_cold_third_to_the_best_source_and_the_rest_to_the_widest():
    proposer = CompositionSearchProposer(POOL)
    routed = [proposer._spec(FixedTrial(p), BASE) for p in proposer._warm_points() if p["router"] != "none"]
    assert len(routed) == 1
    spec = routed[0]
    assert spec.router.family == "activity_router" and spec.router.params == {"quantile": 1 / 3}
    cold, rest = spec.branches
    assert families(cold) == ["recency_ease"] and cold.ranker.family == "fusion"
    assert families(rest) == NAMES[:MAX_SOURCES] and rest.ranker.family == "mlp_ranker"


def test_the_activity_router_by_quantile_sends_the_lightest_third_down_branch_0():
    import types

    import numpy as np

    from designer.families import load_families
    from sandbox.sdk.agent_sdk import TrainData

    code = load_families()["activity_router"].render({"quantile": 1 / 3})
    module = types.ModuleType("router")
    exec(compile(code, "router", "exec"), module.__dict__)
    counts = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9])     # user u has counts[u] interactions
    users = np.repeat(np.arange(9), counts)
    train = TrainData(users, np.zeros(len(users)), np.arange(len(users)), np.ones(len(users)), 10, 1)
    router = module.Agent(quantile=1 / 3)
    router.fit(train)
    assert router.route(np.arange(9)).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    by_threshold = module.Agent(threshold=4)
    by_threshold.fit(train)
    assert by_threshold.route(np.arange(9)).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
