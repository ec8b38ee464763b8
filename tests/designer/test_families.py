"""Built-in agent families: specs load, templates render to contract-abiding agents."""
from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from designer.families import BUILTIN_TEMPLATE_DIR, Family, FamilyError, ParamSpec, load_families
from sandbox.sdk import agent_sdk

FAMILIES = load_families()
EXPECTED = {"popularity", "itemknn", "ease", "ials", "bpr", "sasrec", "recency_ease", "mmr"}
ALLOWED_IMPORTS = {"numpy", "scipy", "torch", "agent_sdk"} | set(sys.stdlib_module_names)
# Small settings so that every family fits the tiny data set in about a second.
FAST = {
    "ials": {"iterations": 2, "factors": 8},
    "bpr": {"epochs": 1, "factors": 8},
    "sasrec": {"epochs": 1, "hidden": 32, "max_len": 10, "batch_size": 32},
}


@pytest.fixture(autouse=True)
def _sdk_importable(monkeypatch):
    """Rendered modules say ``import agent_sdk``, as inside the sandbox."""
    monkeypatch.setitem(sys.modules, "agent_sdk", agent_sdk)


@pytest.fixture(scope="module")
def tiny() -> agent_sdk.TrainData:
    rng = np.random.default_rng(0)
    n_users, n_items, n = 30, 40, 500
    user = rng.integers(0, n_users, n)
    item = np.minimum(rng.zipf(1.5, n) - 1, n_items - 1)  # long-tail popularity
    features = (rng.random((n_items, 5)) < 0.3).astype(np.float32)
    return agent_sdk.TrainData(user, item, rng.integers(0, 10_000, n), rng.integers(1, 6, n),
                               n_users, n_items, item_features=features)


def load_module(source: str, name: str = "candidate") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def test_every_builtin_family_loads_with_a_description_and_limit():
    assert EXPECTED <= set(FAMILIES)
    for family in FAMILIES.values():
        assert len(family.description) > 80, family.name
        assert family.time_limit_seconds > 0
        assert family.params
    assert FAMILIES["mmr"].role == "reranker"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rendered_module_imports_only_allowed_modules(name):
    tree = ast.parse(FAMILIES[name].render())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - {"__future__"} <= ALLOWED_IMPORTS, imported


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_agent_fits_and_recommends_unseen_items(name, tiny):
    family = FAMILIES[name]
    module = load_module(family.render(FAST.get(name, {})), name)
    agent = module.Agent()
    agent.fit(tiny)
    users = np.array([0, 3, 7, 29], dtype=np.int64)
    recs = agent.recommend(users, 5)
    assert recs.dtype == np.int64 and recs.shape == (4, 5)
    seen = tiny.matrix()
    for row, user in zip(recs, users):
        assert len(set(row.tolist())) == 5
        assert not set(row.tolist()) & set(seen[user].indices.tolist())


@pytest.fixture(scope="module")
def crowded() -> agent_sdk.TrainData:
    """12 items; user 0 has seen 10 of them, so fewer than k = 5 are left for them."""
    rng = np.random.default_rng(1)
    user = np.concatenate([np.zeros(10, dtype=np.int64), rng.integers(1, 20, 80)])
    item = np.concatenate([np.arange(10), rng.integers(0, 12, 80)])
    pairs = np.unique(user * 12 + item)
    user, item = pairs // 12, pairs % 12
    return agent_sdk.TrainData(user, item, rng.permutation(len(user)), np.ones(len(user)), 20, 12,
                               item_features=rng.random((12, 3)).astype(np.float32))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fewer_unseen_items_than_k_pads_with_minus_one(name, crowded):
    """The contract for a heavy user of a small catalogue: -1 pads, seen items never do."""
    agent = load_module(FAMILIES[name].render(FAST.get(name, {})), name).Agent()
    agent.fit(crowded)
    users = np.arange(crowded.n_users, dtype=np.int64)
    recs = agent.recommend(users, 5)
    assert recs.dtype == np.int64 and recs.shape == (crowded.n_users, 5)
    assert sorted(recs[0, :2].tolist()) == [10, 11] and recs[0, 2:].tolist() == [-1, -1, -1]
    seen = crowded.matrix()
    for row, user in zip(recs, users):
        real = row[row >= 0].tolist()
        assert (row[len(real):] == -1).all(), row          # padding only on the right
        assert len(set(real)) == len(real)
        assert not set(real) & set(seen[user].indices.tolist())


def test_rendered_defaults_are_baked_in_and_overridable():
    family = FAMILIES["ease"]
    module = load_module(family.render({"l2": 42.0}))
    assert module.DEFAULTS == {**family.defaults(), "l2": 42.0}
    assert module.Agent().params["l2"] == 42.0
    assert module.Agent(l2=7.0).params["l2"] == 7.0
    with pytest.raises(TypeError, match="unknown"):
        module.Agent(lambda_=1.0)


def test_reranker_reorders_given_candidates(tiny):
    module = load_module(FAMILIES["mmr"].render({"relevance_weight": 0.5}))
    agent = module.Agent()
    agent.fit(tiny)
    candidates = np.array([[1, 2, 3, 4, 5, 6]] * 2, dtype=np.int64)
    scores = np.array([[6, 5, 4, 3, 2, 1]] * 2, dtype=float)
    out = agent.rerank(np.array([0, 1]), candidates, scores, 3)
    assert out.shape == (2, 3) and out[0, 0] == 1
    assert set(out[0].tolist()) <= set(candidates[0].tolist())
    pure = load_module(FAMILIES["mmr"].render({"relevance_weight": 1.0})).Agent()
    pure.fit(tiny)
    assert pure.rerank(np.array([0]), candidates[:1], scores[:1], 3).tolist() == [[1, 2, 3]]


def test_validate_fills_defaults_and_coerces():
    family = FAMILIES["itemknn"]
    params = family.validate({"neighbours": 50.0})
    assert params["neighbours"] == 50 and isinstance(params["neighbours"], int)
    assert params["similarity"] == family.defaults()["similarity"]


@pytest.mark.parametrize("params, message", [
    ({"bogus": 1}, "unknown parameter 'bogus'"),
    ({"l2": -1.0}, "outside"),
    ({"l2": "big"}, "expected a number"),
])
def test_validate_rejects_bad_params_with_a_clear_error(params, message):
    with pytest.raises(FamilyError, match=message):
        FAMILIES["ease"].validate(params)


def test_validate_rejects_bad_categorical_int_and_bool():
    with pytest.raises(FamilyError, match="not one of"):
        FAMILIES["itemknn"].validate({"similarity": "pearson"})
    with pytest.raises(FamilyError, match="integer"):
        FAMILIES["itemknn"].validate({"neighbours": 10.5})
    with pytest.raises(FamilyError, match="true/false"):
        FAMILIES["ease"].validate({"use_ratings": 1})


def test_param_spec_rejects_inconsistent_declarations():
    with pytest.raises(ValueError):
        ParamSpec(type="float", low=0.0, high=1.0, log=True, default=0.5)
    with pytest.raises(ValueError):
        ParamSpec(type="int", low=1, high=3, default=5)
    with pytest.raises(ValueError):
        ParamSpec(type="categorical", choices=("a",), default="b")


def test_workspace_template_dir_overrides_a_family(tmp_path: Path):
    (tmp_path / "ease.yaml").write_text(
        "name: ease\nrole: recommender\ndescription: my EASE\ntime_limit_seconds: 10\n"
        "params:\n  l2: {type: float, low: 1, high: 10, default: 5}\n")
    (tmp_path / "ease.py.j2").write_text("DEFAULTS = {{ params | pyrepr }}\n")
    families = load_families(tmp_path)
    assert families["ease"].description == "my EASE"
    assert families["ease"].render() == "DEFAULTS = {\n    'l2': 5.0,\n}\n"
    assert families["ease"].template_path.parent == tmp_path
    assert set(families) == set(FAMILIES)
    assert FAMILIES["ease"].template_path.parent == BUILTIN_TEMPLATE_DIR


def test_broken_workspace_families_raise_family_error(tmp_path: Path):
    with pytest.raises(FamilyError, match="does not exist"):
        load_families(tmp_path / "missing")
    (tmp_path / "x.yaml").write_text("name: x\nrole: recommender\ndescription: d\n"
                                     "time_limit_seconds: 1\nparams: {}\n")
    with pytest.raises(FamilyError, match="no template"):
        load_families(tmp_path)
    (tmp_path / "x.py.j2").write_text("{{ undefined_name }}")
    family: Family = load_families(tmp_path)["x"]
    with pytest.raises(FamilyError, match="cannot render"):
        family.render()


def test_param_spec_suggests_through_an_optuna_trial():
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    family = FAMILIES["sasrec"]
    params = {name: spec.suggest(trial, name) for name, spec in family.params.items()}
    assert family.validate(params) == params


@pytest.mark.parametrize("name, params", [
    ("sasrec", {"loss": "bce", "negatives": 4}),
    ("recency_ease", {"decay_by": "time", "train_tau": 5.0, "transition_weight": 0.0}),
    ("itemknn", {"similarity": "asymmetric", "normalize_scores": True, "neighbours": 5}),
    ("popularity", {"window_days": 0.05, "half_life_days": 0.01, "use_ratings": True}),
    ("mmr", {"similarity": "cooccurrence", "candidates": 10}),
])
def test_non_default_branches_keep_the_contract(name, params, tiny):
    agent = load_module(FAMILIES[name].render({**FAST.get(name, {}), **params}), name).Agent()
    agent.fit(tiny)
    recs = agent.recommend(np.arange(tiny.n_users, dtype=np.int64), 7)
    assert recs.dtype == np.int64 and recs.shape == (tiny.n_users, 7)
    seen = tiny.matrix().toarray()
    assert not np.take_along_axis(seen, recs, axis=1).any()


def test_ease_item_cap_models_only_the_most_popular_items(tiny):
    module = load_module(FAMILIES["ease"].render(), "ease")
    module.MAX_ITEMS = 6
    agent = module.Agent()
    agent.fit(tiny)
    popular = set(np.argsort(-np.bincount(tiny.item, minlength=tiny.n_items), kind="stable")[:6].tolist())
    assert agent.B.shape == (6, 6) and set(agent.items.tolist()) == popular
    recs = agent.recommend(np.arange(tiny.n_users, dtype=np.int64), 4)
    assert set(recs[recs >= 0].tolist()) <= popular
