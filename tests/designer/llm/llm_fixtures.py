"""Shared helpers of the LLM tests (a uniquely named module: several conftest.py exist)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from fake_llm_server import ScriptedLLMServer

from designer.llm.client import RetryPolicy
from designer.proposal import DesignContext, ReviewedProposal
from knowledge_base.models import (Agent, AgentVersion, Experiment, ExperimentStatus, Failure,
                                   FailureKind, Insight, LLMCallDraft, PromotionState, Review,
                                   ReviewDecision)

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)

PARENT_CODE = '''import numpy as np
from agent_sdk import topk_unseen


class Agent:
    """Most popular items."""

    def __init__(self, **params):
        self.params = params

    def fit(self, train):
        self.seen = train.matrix()
        self.pop = np.asarray(self.seen.sum(axis=0)).ravel()

    def recommend(self, users, k):
        scores = np.tile(self.pop, (len(users), 1))
        return topk_unseen(scores, self.seen, users, k)
'''

GOOD_MODULE = PARENT_CODE.replace('"""Most popular items."""', '"""Popularity with a recency boost."""').replace(
    "        self.pop = np.asarray(self.seen.sum(axis=0)).ravel()\n",
    "        recent = train.timestamp >= np.quantile(train.timestamp, 0.8)\n"
    "        self.pop = np.bincount(train.item, weights=1.0 + recent, minlength=train.n_items)\n")


class ListRecorder:
    """A ``CallRecorder`` that keeps the drafts."""

    def __init__(self) -> None:
        self.drafts: list[LLMCallDraft] = []

    def record(self, draft: LLMCallDraft) -> None:
        self.drafts.append(draft)


@pytest.fixture
def server():
    with ScriptedLLMServer() as s:
        yield s


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def recorder() -> ListRecorder:
    return ListRecorder()


def experiment(id: int, *, status=ExperimentStatus.COMPLETED, reward: float | None = 0.1,
               parent_version_id: int | None = 1, rationale: str = "", proposer: str = "llm",
               code_hash: str | None = None, metrics: dict | None = None) -> Experiment:
    return Experiment(
        id=id, agent_name="rec", session_id="s", parent_version_id=parent_version_id,
        parent_experiment_id=None, proposer=proposer,
        proposal={"kind": "code", "rationale": rationale, "ask": "improve"}, family="popularity",
        params={}, code_hash=code_hash or f"h{id}", dataset_key="synthetic", stage="full",
        status=status, promotion=PromotionState.NONE,
        metrics=metrics if metrics is not None else {"ndcg@10": reward or 0.0, "recall@10": 0.2},
        segments={}, inner_reward=reward, outer_reward=None, p_value=None, effect_size=None,
        fit_seconds=1.0, wall_seconds=2.0, peak_memory_mb=100.0, sandbox_tier="process",
        created_at=NOW, finished_at=NOW)


def failure(id: int, experiment_id: int | None, *, message: str = "boom",
            tb: str = "Traceback...\nValueError: boom") -> Failure:
    return Failure(id=id, experiment_id=experiment_id, agent_name="rec", kind=FailureKind.RUNTIME,
                   message=message, traceback_tail=tb, created_at=NOW)


def make_context(**overrides: Any) -> DesignContext:
    """A context for agent 'rec' whose parent is v1 (popularity) with PARENT_CODE."""
    agent = Agent(id=1, name="rec", role="recommender", family="popularity",
                  description="top-k recommender", interface="class Agent: fit, recommend",
                  inner_reward="ndcg@10", parameter_space={}, created_at=NOW)
    parent = AgentVersion(id=1, agent_name="rec", number=1, tag="rec/v1", git_sha="abc",
                          family="popularity", params={}, parent_version_id=None,
                          experiment_id=None, is_champion=True, created_at=NOW)
    values: dict[str, Any] = dict(
        agent=agent, parent=parent, parent_family="popularity", parent_params={},
        parent_code=PARENT_CODE, parent_reward=0.1, dataset_key="synthetic", history=[],
        best=[], failures=[], rejected=[], insights=[], families={}, time_limit_seconds=60.0,
        memory_limit_mb=2048)
    values.update(overrides)
    return DesignContext(**values)


def rejected(id: int, reason: str) -> ReviewedProposal:
    return ReviewedProposal(
        experiment=experiment(id, rationale=f"idea {id}"),
        review=Review(id=id, experiment_id=id, decision=ReviewDecision.REJECTED, reason=reason,
                      reviewer="ann", created_at=NOW))


def insight(id: int, text: str) -> Insight:
    return Insight(id=id, agent_name="rec", text=text, provenance={}, created_at=NOW)
