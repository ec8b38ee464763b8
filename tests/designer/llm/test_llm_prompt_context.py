"""What the propose prompt tells the model: data card, SDK reference, past experiments,
the parent's weak spots; validation labels, confirm stages and sealed numbers stay out."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from llm_fixtures import PARENT_CODE, experiment, insight, make_context

from designer.llm.budget import LLMBudget
from designer.llm.calls import NullRecorder
from designer.llm.context_view import insight_bullets, plan_ask
from designer.llm.data_card import attach_data_card, render_data_card
from designer.llm.history_view import history_lines, weak_spots
from designer.llm.prompts import PromptBudget
from designer.llm.proposer import LLMProposer
from designer.llm.sdk_reference import sdk_reference
from designer.proposers.mixed import MixedProposer
from knowledge_base.models import ExperimentStatus, PromotionState
from sandbox.harness.datacard import data_card
from sandbox.harness.datasets import load_dataset
from sandbox.harness.splits import split_interactions
from tests.conftest import ml100k_path

ML100K = ml100k_path()


def render(context, proposer=None) -> str:
    proposer = proposer or LLMProposer(client=None, model="m", recorder=NullRecorder(), budget=LLMBudget())
    return proposer.initial_messages(context, plan_ask("improve", context, proposer.prompt_budget))[1]["content"]


@pytest.fixture(scope="module")
def synthetic_split():
    return split_interactions(load_dataset("synthetic", seed=3, n_users=120, n_items=60))


# ---- 1. data card ----------------------------------------------------------------------

def test_data_card_does_not_depend_on_validation_or_test_items(synthetic_split):
    s = synthetic_split
    rng = np.random.default_rng(0)

    def scrambled(part):
        return dataclasses.replace(part, item=rng.integers(0, part.n_items, len(part)),
                                   timestamp=part.timestamp + 12345)
    other = dataclasses.replace(s, fingerprint="x" * 64, validation=scrambled(s.validation),
                                test=scrambled(s.test))
    assert data_card(other, 10) == data_card(s, 10)
    assert data_card(s, 10).validation_users == len(np.unique(s.validation.user))


def test_data_card_is_computed_once_per_split(synthetic_split, monkeypatch):
    import sandbox.harness.datacard as module
    first = data_card(synthetic_split, 7)
    monkeypatch.setattr(module, "_compute", lambda *a: pytest.fail("recomputed"))
    assert data_card(synthetic_split, 7) is first


@pytest.mark.usefixtures("ml100k_dir")   # skips without the copy; fails under CI
def test_fresh_ml100k_prompt_shows_data_card_sdk_and_keeps_parent_and_ask():
    split = split_interactions(load_dataset("ml-100k", data_dir=ML100K))
    llm = LLMProposer(client=None, model="m", recorder=NullRecorder(), budget=LLMBudget())
    attach_data_card(MixedProposer(llm, object()), split, 10)
    parent = experiment(1, reward=0.05, proposer="baseline").model_copy(update={
        "segments": {"cold": {"ndcg@10": 0.03, "n_users": 321}, "heavy": {"ndcg@10": 0.08, "n_users": 312},
                     "tail": {"exposure@10": 0.01, "ndcg@10": 0.0}}, "fit_seconds": 3.0, "wall_seconds": 12.0})
    text = render(make_context(history=[parent]), llm)
    for needle in ["# Data card", "ml-100k; 943 users, 1,682 items, 79,926 train interactions",
                   "19 binary genre flags", "one-hot occupation", "by train activity: cold (<= 34) 321",
                   "a validation user's targets are their NEXT interactions", "K = 10",
                   "## SDK helpers", "- topk_unseen(scores: np.ndarray, seen: sp.csr_matrix",
                   "- train.sequences() -> list[np.ndarray]: Each user's items in time order",
                   "- fidelity() -> float:", "# Where the parent is weak",
                   "cold (321 users) ndcg@10: parent 0.0300", "tail exposure@10: parent 0.0100",
                   "whole run 12.0 s of the 60 s limit (80% headroom)",
                   PARENT_CODE.strip(), "IMPROVE"]:
        assert needle in text, needle
    assert len(text) < 9000  # the fixed part leaves the budget to the parent and the history


# ---- 2. the SDK reference ----------------------------------------------------------------

def test_sdk_reference_is_read_from_the_sdk_docstrings(tmp_path):
    sdk = tmp_path / "agent_sdk.py"
    sdk.write_text('__all__ = ["LIMIT", "shiny"]\nLIMIT = 3\nHIDDEN = 4\n\n'
                   'class TrainData:\n    """Train rows."""\n    def save(self, folder): ...\n'
                   '    def matrix(self, binary: bool = True) -> "csr":\n        """Users x items.\n\n        Long."""\n\n'
                   'def shiny(x: int, *, k: int = 2) -> list:\n    """Shiny helper:\n    two lines.\n\n    Details."""\n\n'
                   'def _private():\n    """no"""\n')
    lines = sdk_reference(sdk).splitlines()
    assert lines == ["- LIMIT = 3", "- class TrainData: Train rows.",
                     "- train.matrix(binary: bool=True) -> 'csr': Users x items.",
                     "- shiny(x: int, *, k: int=2) -> list: Shiny helper: two lines."]
    assert sdk_reference(tmp_path / "missing.py") == ""


def test_real_sdk_helpers_are_in_the_prompt():
    text = render(make_context())
    for helper in ("topk(", "topk_unseen(", "topk_unseen_blocks(", "fidelity(", "train.matrix("):
        assert f"- {helper}" in text, helper


# ---- 3. past experiments ------------------------------------------------------------------

def _history():
    cheap = experiment(10, reward=0.2065, rationale="SASRec fused with the parent. It is long.").model_copy(
        update={"stage": "cheap", "parent_experiment_id": 1})
    full = experiment(11, reward=0.2225, rationale="SASRec fused with the parent. It is long.").model_copy(update={
        "parent_experiment_id": 10, "promotion": PromotionState.NOT_BETTER, "p_value": 0.21,
        "proposal": {"kind": "code", "rationale": "SASRec fused with the parent. It is long.", "ask": "improve",
                     "incumbent_experiment": 1, "base_family": "popularity"}, "family": "custom"})
    confirm = full.model_copy(update={"id": 12, "stage": "confirm", "inner_reward": 0.9999,
                                      "parent_experiment_id": 11})
    screened = experiment(13, reward=0.1234, rationale="Tiny tweak.").model_copy(
        update={"stage": "cheap", "promotion": PromotionState.SCREENED_OUT})
    same = experiment(14, reward=0.2, rationale="Rename variables.").model_copy(
        update={"proposal": {"kind": "code", "rationale": "Rename variables.", "incumbent_experiment": 1}})
    broken = experiment(15, status=ExperimentStatus.FAILED, reward=None, rationale="Two towers.")
    parent = experiment(1, reward=0.2, proposer="baseline")
    return [parent, cheap, full, confirm, screened, same, broken]


def test_each_candidate_is_one_line_with_split_named_metric_idea_and_outcome():
    lines = history_lines(make_context(history=_history()))
    assert len(lines) == 4  # cheap + full of #11 merged; confirm and the champion's own run left out
    assert lines[0].startswith("#15 [llm/improve]") and lines[0].endswith("outcome: failed")
    assert "scored exactly the parent" in lines[1]
    assert lines[2].startswith("#13") and "cheap-screen ndcg@10 0.1234" in lines[2] \
        and "screened out by the cheap stage" in lines[2]
    sasrec = lines[3]
    assert sasrec.startswith("#11 [llm/improve] custom (from popularity) -- val ndcg@10 0.2225 (+0.0225 vs its parent)")
    assert "idea: SASRec fused with the parent." in sasrec and "It is long" not in sasrec
    assert "not significantly better than its parent (p=0.21)" in sasrec and "0.2065" not in sasrec
    assert not any("0.9999" in line or "#12" in line for line in lines)


def test_a_500_line_parent_leaves_room_for_the_history():
    body = "".join(f"        x{i} = np.log1p(self.pop * {i}) + x{i}\n" for i in range(480))
    code = PARENT_CODE.replace("        self.pop = np.asarray(self.seen.sum(axis=0)).ravel()\n",
                               "        self.pop = np.asarray(self.seen.sum(axis=0)).ravel()\n" + body)
    rationale = "A SASRec-style transformer fused with the parent's scores. " * 6
    history = [experiment(i, reward=0.2 + i / 1000, rationale=rationale) for i in range(2, 42)]
    text = render(make_context(parent_code=code, history=history, best=history[-5:]))
    assert code.count("\n") >= 495 and code.strip() in text
    assert len(re.findall(r"^- #\d+ \[llm", text, re.M)) >= 30
    assert len(text) <= PromptBudget().max_chars


def test_insight_bullets_are_not_doubled():
    bullets = insight_bullets([insight(2, "plain"), insight(1, "- a\n- - b\n* c\n1. d")], PromptBudget())
    assert bullets == ["plain", "a", "b", "c", "d"]
    text = render(make_context(insights=[insight(1, "- a\n- - b")]))
    assert "- a\n- b\n" in text and "- -" not in text


# ---- 4. where the parent is weak ----------------------------------------------------------

def test_weak_spots_put_parent_segments_next_to_the_best_run():
    parent = experiment(1, reward=0.2, proposer="baseline").model_copy(update={
        "segments": {"cold": {"ndcg@10": 0.1, "n_users": 30}, "head": {"exposure@10": 0.9, "ndcg@10": 0.3}},
        "fit_seconds": 50.0, "wall_seconds": 54.0, "peak_memory_mb": 900.0})
    best = experiment(2, reward=0.25, code_hash="other").model_copy(update={
        "segments": {"cold": {"ndcg@10": 0.15}, "head": {"exposure@10": 0.7}}})
    weak = weak_spots(make_context(history=[parent, best], best=[best, parent]))
    assert weak["rows"] == ["cold (30 users) ndcg@10: parent 0.1000, best 0.1500",
                            "head exposure@10: parent 0.9000, best 0.7000",
                            "head ndcg@10 (its items only): parent 0.3000"]
    assert weak["costs"] == ("fit 50.0 s, whole run 54.0 s of the 60 s limit (10% headroom), "
                             "peak memory 900 of 2048 MB")
    assert weak["best_label"] == "#2 (popularity)"
    assert weak_spots(make_context()) == {"costs": "", "rows": [], "best_label": ""}


def test_a_failed_confirmation_run_does_not_become_a_debug_ask():
    from designer.llm.context_view import failed_latest
    full = experiment(3)
    confirm = experiment(4, status=ExperimentStatus.TIMED_OUT).model_copy(update={"stage": "confirm"})
    assert failed_latest(make_context(history=[full, confirm])) is None
    assert failed_latest(make_context(history=[confirm, experiment(5, status=ExperimentStatus.FAILED)])).id == 5


def test_the_insight_prompt_reads_the_same_compact_lines(server, recorder):
    from designer.llm.insights import summarise
    from designer.llm.openai_client import OpenAIClient
    server.push("- keep it")
    summarise(OpenAIClient(api_base=server.url), "m", make_context(history=_history()), recorder, LLMBudget())
    prompt = server.requests[0].messages[-1]["content"]
    assert "- #11 [llm/improve] custom (from popularity) -- val ndcg@10 0.2225" in prompt
    assert "0.9999" not in prompt and "#12" not in prompt


def test_a_search_point_of_an_llm_module_shows_its_params():
    tuned = experiment(20, proposer="search", rationale="tpe over the SPACE of LLM family llm-0123456789").model_copy(
        update={"family": "custom", "params": {"half_life": 12.5, "blend": "max"},
                "proposal": {"kind": "code", "rationale": "tpe over the SPACE of LLM family llm-0123456789",
                             "base_family": "llm-0123456789"}})
    [line] = history_lines(make_context(history=[tuned]))
    assert line.startswith("#20 [search] custom (from llm-0123456789)")
    assert "params {half_life=12.5, blend='max'}" in line


def test_best_lines_show_quality_metrics_not_costs():
    from designer.llm.context_view import best_line
    e = experiment(4, metrics={"ndcg@10": 0.2, "fit_seconds": 3.0, "peak_memory_mb": 9.0, "diversity@10": 0.7,
                               "recall@10": 0.3, "coverage@10": 0.1, "tail_share@10": 0.05, "mrr@10": 0.4})
    assert best_line(e, "ndcg@10").startswith(
        "#4 [llm] popularity: val ndcg@10 0.2000, coverage@10 0.1000, recall@10 0.3000, tail_share@10 0.0500")
