"""Prompt rendering: sections, workspace overrides, and the size budget."""
from __future__ import annotations

from llm_fixtures import PARENT_CODE, experiment, failure, insight, make_context, rejected

from designer.llm.context_view import plan_ask, sections
from designer.llm.prompts import PromptBudget, fit_prompt, load_prompt_templates
from designer.llm.proposer import LLMProposer
from designer.llm.budget import LLMBudget
from designer.llm.calls import NullRecorder


def render(context, budget=PromptBudget(), ask="improve", templates=None) -> str:
    proposer = LLMProposer(client=None, model="m", recorder=NullRecorder(), budget=LLMBudget(),
                           prompt_budget=budget, prompt_templates=templates)
    plan = plan_ask(ask, context, budget)
    return proposer.initial_messages(context, plan)[1]["content"]


def rich_context(n: int = 6, tb_chars: int = 600):
    return make_context(
        best=[experiment(100 + i, reward=0.3 - i / 100, rationale=f"best idea {i}") for i in range(n)],
        failures=[failure(i, 200 + i, message=f"failure number {i}", tb="x" * tb_chars + f"TAIL{i}")
                  for i in range(n)],
        rejected=[rejected(300 + i, f"reason {i}") for i in range(n)],
        insights=[insight(i, f"insight {i}") for i in reversed(range(n))])   # newest first, as the store lists them


def test_every_section_is_shown_when_it_fits():
    text = render(rich_context(n=2))
    for needle in ["# Agent card", "ndcg@10", "60 s and 2048 MB", "class Agent: fit, recommend",
                   PARENT_CODE.strip(), "rec/v1", "best idea 0", "TAIL1", "failure number 0",
                   "reason 1", "insight 1", "IMPROVE", "numpy, scipy"]:
        assert needle in text, needle
    assert "cut to fit" not in text


def test_budget_keeps_contract_ask_parent_and_newest_entries():
    budget = PromptBudget(max_chars=6000)
    text = render(rich_context(), budget)
    assert len(text) <= 6000
    for needle in ["# Agent card", "class Agent: fit, recommend", PARENT_CODE.strip(), "IMPROVE",
                   "failure number 0", "best idea 0"]:
        assert needle in text, needle
    assert "failure number 5" not in text and "older failures cut to fit the prompt" in text


def test_budget_drops_least_useful_first():
    sections_in = {"failures": ["f0", "f1"], "best": ["b0", "b1"], "rejected": ["r0"], "insights": ["i0", "i1"]}
    from designer.llm.prompts import _drop_order
    assert _drop_order(sections_in, ("failures", "best", "rejected", "insights")) == [
        "insights", "best", "failures", "insights", "rejected", "best", "failures"]


def test_huge_parent_code_is_shortened_in_the_middle():
    code = PARENT_CODE + "".join(f"# filler line {i}\n" for i in range(2000))
    text = render(make_context(parent_code=code), PromptBudget(max_chars=5000))
    assert len(text) <= 5200 and "lines cut to fit the prompt" in text
    assert "class Agent" in text and "IMPROVE" in text


def test_traceback_tails_are_bounded():
    text = render(rich_context(n=1, tb_chars=10_000), PromptBudget(traceback_chars=200))
    assert "TAIL0" in text and "x" * 300 not in text


def test_debug_ask_shows_the_failed_candidate_and_its_traceback():
    ctx = make_context(history=[experiment(7, status="FAILED")],
                       failures=[failure(1, 7, message="shape mismatch", tb="ValueError: shapes (3,) (4,)")])
    plan = plan_ask("debug", ctx, PromptBudget(), code_for=lambda e: "class Agent:\n    BUGGY = 1\n")
    assert plan.name == "debug" and "BUGGY" in plan.base_code
    text = render(ctx, ask="debug")
    assert "DEBUG" in text and "shape mismatch" in text and "ValueError: shapes" in text


def test_workspace_override_replaces_only_that_template(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "propose.j2").write_text("CUSTOM for {{ agent.name }}: {{ ask.name }}")
    templates = load_prompt_templates(tmp_path)
    assert render(make_context(), templates=templates) == "CUSTOM for rec: improve"
    assert "senior machine-learning engineer" in templates.render(
        "system.j2", allowed_imports="numpy", answer_format="markdown")
    assert load_prompt_templates(tmp_path / "missing").dirs == load_prompt_templates(None).dirs


def test_sections_are_most_useful_first():
    ctx = rich_context(n=3)
    s = sections(ctx, PromptBudget())
    assert [f["message"] for f in s["failures"]][0] == "failure number 0"  # context: newest first
    assert s["insights"][0] == "insight 2" and s["rejected"][0]["id"] == 302  # newest first
