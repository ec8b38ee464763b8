"""What people read (issue 15 items 2 and 7, and `history`'s filters): tables that fit an
80-column terminal without splitting a number or a status, numbers formatted by what they
are, help pages with real metavars, show commands that print what they promise. The
experiments are recorded through the store, as `design` records them; the commands under
test run through the real console script."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from designer.families import load_families
from designer.workspace import Workspace
from knowledge_base.models import ExperimentDraft, ExperimentResult, ExperimentStatus, PromotionState
from knowledge_base.store import Store
from tests.integration.clirun import cli

NARROW = {"COLUMNS": "80"}
FLOOR = 1 / 2001  # the permutation test's floor at the default 2000 resamples


def record(ws: Path, *, l2: float = 7.0, ndcg: float = 0.3, stage: str = "full", session: str = "s1",
           status: ExperimentStatus = ExperimentStatus.COMPLETED, promotion: PromotionState = PromotionState.NONE,
           p: float | None = None, wall: float = 5.5, proposer: str = "search", dataset: str = "synthetic/user_temporal/x",
           metrics: dict | None = None, segments: dict | None = None) -> int:
    """One EASE experiment of `recommender`, as `design` records it."""
    family = load_families()["ease"]
    with Store.open(f"sqlite:///{ws / 'knowledge.db'}") as store:
        store.put_code(f"ease-{l2}", family.render(family.validate({"l2": l2})))
        exp = store.start_experiment(ExperimentDraft(
            agent_name="recommender", session_id=session, proposer=proposer, family="ease", params={"l2": l2},
            code_hash=f"ease-{l2}", dataset_key=dataset, stage=stage, parent_version_id=store.champion("recommender").id))
        store.finish_experiment(exp.id, ExperimentResult(
            status=status, inner_reward=ndcg if status is ExperimentStatus.COMPLETED else None,
            wall_seconds=wall, metrics=metrics or {"ndcg@10": ndcg, "wall_seconds": wall}, segments=segments or {}))
        if p is not None or promotion is not PromotionState.NONE:
            store.set_promotion(exp.id, promotion, p, 0.05)
        return exp.id


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_history_fits_80_columns_without_splitting_numbers_or_statuses(ws):
    record(ws, l2=7.0, ndcg=0.1693, promotion=PromotionState.PENDING_REVIEW, p=FLOOR)
    record(ws, l2=30.0, status=ExperimentStatus.TIMED_OUT)
    record(ws, l2=300.0, ndcg=0.2, stage="cheap", promotion=PromotionState.SCREENED_OUT)
    text = cli(ws, "history", "--limit", "3", env=NARROW).stdout
    assert widest(text) <= 80, text
    for whole in ("0.1693", "COMPLETED", "TIMED_OUT", "PENDING_REVIEW", "SCREENED_OUT", "val ndcg@10"):
        assert whole in text, (whole, text)
    assert "left out at 80 columns: params" in text
    wide = cli(ws, "history", "--limit", "3", env={"COLUMNS": "200"}).stdout
    assert "left out" not in wide and "l2=300" in wide and "(floor)" in wide
    assert re.search(r"│ 5\.5 +│", wide) and "5.5000" not in wide   # seconds are not a metric


def test_numbers_are_formatted_by_what_they_are(ws):
    a = record(ws, l2=7.0, metrics={"ndcg@10": 0.3, "wall_seconds": 5.5})
    b = record(ws, l2=30.0, metrics={"ndcg@10": 0.3 - 1e-7, "wall_seconds": 5.5})
    text = cli(ws, "history", "diff", str(a), str(b)).stdout
    assert "ndcg@10" in text and "-0.0000" not in text and "+0.0000" in text
    shown = cli(ws, "history", "show", str(a)).stdout
    assert re.search(r"wall_seconds +│ 5\.5 ", shown) and "5.5000" not in shown

    counted = record(ws, l2=300.0, segments={"cold": {"ndcg@10": 0.2, "n_users": 100.0}})
    data = json.loads(cli(ws, "history", "show", str(counted), "--json").stdout)
    assert data["segments"]["cold"]["n_users"] == 100 and isinstance(data["segments"]["cold"]["n_users"], int)
    assert isinstance(data["segments"]["cold"]["ndcg@10"], float)


def test_a_p_value_at_the_resampling_floor_says_so(ws):
    exp = record(ws, promotion=PromotionState.NOT_BETTER, p=FLOOR)
    shown = cli(ws, "history", "show", str(exp)).stdout
    assert "p<=5.0e-04 (the resampling floor: none of 2000 resamples" in shown
    other = record(ws, l2=30.0, promotion=PromotionState.NOT_BETTER, p=0.02)
    assert "resampling floor" not in cli(ws, "history", "show", str(other)).stdout


COMMANDS = ["", "init", "agents", "agents list", "agents show", "agents versions", "agents rollback",
            "agents check", "history", "history show", "history best", "history diff", "review", "review list",
            "review show", "review approve", "review reject", "design", "evaluate", "report", "llm", "llm logs"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_pages_are_readable_at_80_columns(tmp_path, command):
    text = cli(tmp_path, *command.split(), "--help", env=NARROW).stdout
    assert widest(text) <= 80
    assert "…" not in text, text                       # no option name or help cut short
    assert not re.search(r"<(str|bool|int|float|path)", text), text   # real metavars
    if command == "design":
        assert "--allow-insecure-sandbox" in text and "--agent" in text and "NAME" in text
        assert re.search(r"--wall-limit +SECONDS", text)


def test_history_filters_sort_params_and_best(ws):
    low = record(ws, l2=7.0, ndcg=0.20, session="first")
    high = record(ws, l2=300.0, ndcg=0.35, session="first", proposer="llm")
    cheap = record(ws, l2=500.0, ndcg=0.90, session="second", stage="cheap")   # cheap: never the best
    other = record(ws, l2=50.0, ndcg=0.30, session="second", dataset="ml-100k/user_temporal/y")

    def ids(*args: str) -> list[int]:
        return [r["id"] for r in json.loads(cli(ws, "history", *args, "--json").stdout)]
    assert ids("--session", "first") == [high, low]
    assert ids("--proposer", "llm") == [high]
    assert ids("--dataset", "ml-100k") == [other]
    assert ids("--family", "ease", "--stage", "full") == [other, high, low]
    assert ids("--sort", "reward", "--stage", "full")[:3] == [high, other, low]
    assert json.loads(cli(ws, "history", "--session", "first", "--json").stdout)[0]["params"] == {"l2": 300.0}
    assert "l2=300" in cli(ws, "history", "--session", "first", env={"COLUMNS": "200"}).stdout
    assert cli(ws, "history", "--sort", "bogus", check=False).returncode == 2

    best = json.loads(cli(ws, "history", "best", "--json").stdout)
    assert best["id"] == high and best["params"] == {"l2": 300.0} and best["inner_reward"] == 0.35
    assert json.loads(cli(ws, "history", "best", "--dataset", "ml-100k", "--json").stdout)["id"] == other
    assert json.loads(cli(ws, "history", "--session", "first", "best", "--json").stdout)["id"] == high
    text = cli(ws, "history", "best").stdout
    assert f"best experiment {high}" in text and "validation ndcg@10 0.3500" in text and "l2=300" in text
    none = cli(ws, "history", "best", "--session", "nosuch", check=False)
    assert none.returncode == 2 and "no completed full-stage experiment matches --session nosuch" in none.stderr


def test_history_show_prints_p_value_ci_sealed_test_once_decided_and_the_folder(ws):
    exp = record(ws, promotion=PromotionState.PENDING_REVIEW, p=0.001)
    comparison = {"n_users": 300, "candidate_mean": 0.3, "parent_mean": 0.2, "effect": 0.1, "ci_low": 0.05,
                  "ci_high": 0.15, "p_value": 0.001, "p_method": "permutation", "z": 3.1, "alpha": 0.01,
                  "promote": True, "reason": "gain +0.1000, p=0.0010 <= alpha=0.0100"}
    with Store.open(f"sqlite:///{ws / 'knowledge.db'}") as store:
        store.set_promotion(exp, PromotionState.PENDING_REVIEW, 0.001, 0.1, evidence={
            "parent_version": "recommender/v1", "metric": "ndcg@10", "validation": comparison})
        store.set_test_metrics(exp, {"ndcg@10": 0.2468}, {})
        store.set_test_verdict(exp, {"metric": "ndcg@10", "candidate": 0.2468, "parent": 0.2, "delta": 0.0468,
                                     "p_worse": 0.9, "veto_alpha": 0.05, "vetoed": False, "reason": "not below"})
    pending = cli(ws, "history", "show", str(exp)).stdout
    assert "p=0.0010" in pending and "[95% CI +0.0500, +0.1500]" in pending and "validation ndcg@10" in pending
    assert "0.2468" not in pending          # sealed numbers stay hidden while a person may pick on them
    assert json.loads(cli(ws, "history", "show", str(exp), "--json").stdout)["test_metrics"] == {}
    folder = Workspace.open(ws).experiment_dir(exp).resolve()
    assert f"artefacts: {folder} (missing)" in pending       # design writes it; this one was recorded by hand

    cli(ws, "review", "reject", str(exp), "--reason", "not now")
    decided = cli(ws, "history", "show", str(exp)).stdout
    assert "sealed test" in decided and "0.2468" in decided
    folder.mkdir(parents=True)
    assert f"artefacts: {folder}\n" in cli(ws, "history", "show", str(exp)).stdout
    data = json.loads(cli(ws, "history", "show", str(exp), "--json").stdout)
    assert data["test_metrics"] == {"ndcg@10": 0.2468} and data["folder"] == str(folder)


def test_agents_show_prints_the_champions_space_and_code(ws):
    data = json.loads(cli(ws, "agents", "show", "recommender", "--json").stdout)
    starting = data["family"]
    assert data["champion_code"] and "class Agent" in data["champion_code"]
    assert set(data["parameter_space"]) == set(load_families()[starting].params)
    text = cli(ws, "agents", "show", "recommender", env=NARROW).stdout
    assert f"parameter space of {starting}" in text and "--code" in text
    code = cli(ws, "agents", "show", "recommender", "--code").stdout
    assert "class Agent" in code

    exp = record(ws, l2=300.0, promotion=PromotionState.PENDING_REVIEW, p=1e-6)
    cli(ws, "review", "approve", str(exp))
    data = json.loads(cli(ws, "agents", "show", "recommender", "--json").stdout)
    assert data["champion_family"] == "ease" and set(data["parameter_space"]) == set(load_families()["ease"].params)
    assert data["champion_params"] == {"l2": 300.0} and "300" in data["champion_code"]
    assert "parameter space of ease" in cli(ws, "agents", "show", "recommender").stdout


def test_every_list_table_fits_80_columns_and_keeps_its_ids(ws):
    first = record(ws, l2=7.0, promotion=PromotionState.PENDING_REVIEW, p=1e-6)
    second = record(ws, l2=300.0, ndcg=0.35, promotion=PromotionState.PENDING_REVIEW, p=FLOOR)
    review = cli(ws, "review", "list", env=NARROW).stdout
    assert widest(review) <= 80 and re.search(rf"│ {first} +│", review) and re.search(rf"│ {second} +│", review)
    assert "val ndcg@10" in review and "…" not in review
    cli(ws, "review", "approve", str(second))
    for args in (["agents", "list"], ["agents", "versions", "recommender"]):
        text = cli(ws, *args, env=NARROW).stdout
        assert widest(text) <= 80 and "…" not in text, (args, text)
    versions = cli(ws, "agents", "versions", "recommender", env=NARROW).stdout
    assert "recommender/v1" in versions and "recommender/v2" in versions


def test_versions_and_agents_list_show_validation_and_sealed_test_scores(ws):
    exp = record(ws, l2=300.0, ndcg=0.3456, promotion=PromotionState.PENDING_REVIEW, p=1e-6)
    with Store.open(f"sqlite:///{ws / 'knowledge.db'}") as store:
        store.set_test_metrics(exp, {"ndcg@10": 0.2345}, {})
    cli(ws, "review", "approve", str(exp))
    versions = json.loads(cli(ws, "agents", "versions", "recommender", "--json").stdout)
    assert versions[-1]["val_reward"] == 0.3456 and versions[-1]["test_ndcg@10"] == 0.2345
    assert versions[-1]["val_dataset"] == "synthetic/user_temporal/x" and versions[0]["val_reward"] is None
    text = cli(ws, "agents", "versions", "recommender", env=NARROW).stdout
    assert "val ndcg@10" in text and "0.3456" in text and "0.2345" in text and widest(text) <= 80
    listed = json.loads(cli(ws, "agents", "list", "--json").stdout)
    assert {r["name"]: r["champion_val_reward"] for r in listed}["recommender"] == 0.3456
    assert "ndcg@10 0.3456" in cli(ws, "agents", "list", env=NARROW).stdout
