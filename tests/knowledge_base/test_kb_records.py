"""Contract: failures, LLM calls and spend, reviews, insights (every backend)."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from knowledge_base import (
    ExperimentDraft,
    FailureDraft,
    FailureKind,
    LLMCallDraft,
    NotFoundError,
    ReviewDecision,
    Store,
)

Draft = Callable[..., ExperimentDraft]


def test_failures_newest_first_and_filtered(store: Store, agent: str, draft: Draft) -> None:
    exp = store.start_experiment(draft())
    first = store.record_failure(FailureDraft(agent_name=agent, kind=FailureKind.PROPOSAL,
                                              message="no code block"))
    second = store.record_failure(FailureDraft(
        agent_name=agent, experiment_id=exp.id, kind=FailureKind.SYNTAX,
        message="invalid syntax", traceback_tail='File "agent.py", line 3\n  def (:'))
    assert second.kind is FailureKind.SYNTAX and "line 3" in second.traceback_tail
    assert [f.id for f in store.list_failures(agent_name=agent)] == [second.id, first.id]
    assert store.list_failures(experiment_id=exp.id) == [second]
    assert len(store.list_failures(limit=1)) == 1
    with pytest.raises(NotFoundError):
        store.record_failure(FailureDraft(agent_name=agent, experiment_id=999,
                                          kind=FailureKind.RUNTIME, message="x"))


def test_llm_calls_and_spend(store: Store, agent: str, draft: Draft) -> None:
    exp = store.start_experiment(draft())
    base = {"agent_name": agent, "model": "gpt-x", "prompt": "p", "response": "r"}
    store.record_llm_call(LLMCallDraft(**base, session_id="a", cost_usd=0.25,
                                       prompt_tokens=10, completion_tokens=5))
    store.record_llm_call(LLMCallDraft(**base, session_id="a", cost_usd=0.5,
                                       experiment_id=exp.id))
    failed = store.record_llm_call(LLMCallDraft(**base, session_id="b", error="rate limit"))
    assert failed.error == "rate limit"
    assert store.llm_spend(session_id="a") == (2, 0.75)
    assert store.llm_spend(agent_name=agent) == (3, 0.75)
    assert store.llm_spend(session_id="none") == (0, 0.0)
    assert [c.session_id for c in store.list_llm_calls(agent_name=agent)] == ["b", "a", "a"]
    assert [c.cost_usd for c in store.list_llm_calls(experiment_id=exp.id)] == [0.5]
    assert len(store.list_llm_calls(session_id="a", limit=1)) == 1


def test_reviews_round_trip_and_filters(store: Store, agent: str, draft: Draft) -> None:
    one, two = (store.start_experiment(draft()).id for _ in range(2))
    yes = store.record_review(one, ReviewDecision.APPROVED, "clear win", "ana")
    no = store.record_review(two, ReviewDecision.REJECTED, "leaks the test split", "bo")
    assert (no.reason, no.reviewer, no.decision) == (
        "leaks the test split", "bo", ReviewDecision.REJECTED)
    assert store.list_reviews(agent_name=agent) == [no, yes]
    assert store.list_reviews(decision=ReviewDecision.APPROVED) == [yes]
    assert store.list_reviews(experiment_id=two) == [no]
    assert store.list_reviews(agent_name="other") == []
    with pytest.raises(NotFoundError):
        store.record_review(999, ReviewDecision.APPROVED, "", "ana")


def test_insights_newest_first(store: Store, agent: str) -> None:
    for i in range(3):
        store.add_insight(agent, f"lesson {i}", {"experiments": [i]})
    got = store.list_insights(agent, limit=2)
    assert [i.text for i in got] == ["lesson 2", "lesson 1"]
    assert got[0].provenance == {"experiments": [2]}
    with pytest.raises(NotFoundError):
        store.add_insight("nobody", "x", {})
