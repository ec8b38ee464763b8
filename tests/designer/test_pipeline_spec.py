"""Pipeline specs: malformed or impossible graphs are refused with a message saying what to fix."""
from __future__ import annotations

import pytest

from designer.families import load_families
from designer.pipelines.resolve import resolve
from designer.pipelines.spec import PipelineSpec, PipelineSpecError
from knowledge_base.errors import NotFoundError

FAMILIES = load_families()
GOOD = """
name: p
branches:
  - sources:
      - {family: popularity, quota: 50}
      - {family: itemknn, params: {neighbours: 50}, quota: 100}
    ranker: {family: fusion, params: {method: rrf}}
"""


class NoAgents:
    """A knowledge base without agents (resolve asks only for named agents)."""

    def get_agent(self, name):
        raise NotFoundError(f"no agent {name}")

    def list_agents(self):
        return []


def test_a_good_spec_round_trips_to_the_same_canonical_text():
    spec = PipelineSpec.from_yaml(GOOD)
    again = PipelineSpec.from_yaml(spec.to_yaml())
    assert again == spec and again.to_yaml() == spec.to_yaml()
    plan = resolve(spec, store=NoAgents(), repo=None, families=FAMILIES)
    assert [s.ref for s in plan.sources] == ["popularity", "itemknn"]
    assert plan.branches[0].quotas == [50, 100]


def test_identical_sources_in_two_branches_are_fitted_once():
    text = GOOD.replace("branches:", "router: {family: activity_router, params: {threshold: 10}}\nbranches:")
    text += """  - sources:
      - {family: itemknn, params: {neighbours: 50}, quota: 20}
    ranker: {family: logistic_ranker}
"""
    plan = resolve(PipelineSpec.from_yaml(text), store=NoAgents(), repo=None, families=FAMILIES)
    assert len(plan.sources) == 2 and plan.branches[1].sources == [plan.branches[0].sources[1]]


@pytest.mark.parametrize(("text", "says"), [
    ("name: p\nbranches: [\n", "not valid YAML at line"),
    ("- just a list\n", "must be a YAML mapping"),
    (GOOD.replace("quota: 50", "quota: 0").replace("quota: 100", "quota: 0"), "every source has quota 0"),
    (GOOD.replace("{family: popularity, quota: 50}", "{agent: p, version: 1, quota: 50}"), "cannot be its own source (a cycle)"),
    (GOOD.replace("quota: 100", "quota: 5000"), "quota 5000 > depth 200"),
    (GOOD.replace("{family: popularity, quota: 50}", "{agent: recommender, quota: 50}"), "needs a pinned `version: N`"),
    (GOOD + "  - sources: [{family: ease, quota: 10}]\n    ranker: {family: fusion}\n", "need a `router`"),
    (GOOD.replace("name: p", "name: p\nrouter: {family: activity_router}"), "needs at least two branches"),
    (GOOD.replace("name: p", "name: p\nouter_reward: {constraints: [{metric: coverage@10}]}"), "exactly one of `max` or `min`"),
])
def test_malformed_specs_name_the_problem(text, says):
    with pytest.raises(PipelineSpecError, match=None) as info:
        PipelineSpec.from_yaml(text)
    assert says in str(info.value), str(info.value)


@pytest.mark.parametrize(("old", "new", "says"), [
    ("{family: popularity, quota: 50}", "{agent: nosuch, version: 1, quota: 50}", "unknown agent 'nosuch'"),
    ("{family: popularity, quota: 50}", "{family: nosuch, quota: 50}", "unknown recall family 'nosuch'"),
    ("{family: fusion, params: {method: rrf}}", "{family: ease}", "unknown ranker family 'ease'"),
    ("params: {neighbours: 50}", "params: {neighbours: -3}", "parameter 'neighbours'"),
])
def test_specs_naming_what_does_not_exist_fail_to_resolve(old, new, says):
    spec = PipelineSpec.from_yaml(GOOD.replace(old, new))
    with pytest.raises(PipelineSpecError) as info:
        resolve(spec, store=NoAgents(), repo=None, families=FAMILIES)
    assert says in str(info.value), str(info.value)
