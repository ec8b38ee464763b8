"""Frozen read models and write drafts of the knowledge base.

Readers always get these copies, never ORM rows (``*Row`` classes stay inside this package).
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExperimentStatus(str, Enum):
    """Where an experiment's run is; the run outcomes mirror ``sandbox.outcome.Outcome``."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    KILLED_BY_LIMIT = "KILLED_BY_LIMIT"
    INVALID_OUTPUT = "INVALID_OUTPUT"
    REJECTED_STATIC = "REJECTED_STATIC"   # failed static checks, never ran
    INTERRUPTED = "INTERRUPTED"           # the design process died while it ran

    @property
    def finished(self) -> bool:
        return self not in (ExperimentStatus.RUNNING, ExperimentStatus.INTERRUPTED)


class PromotionState(str, Enum):
    NONE = "NONE"                     # not (yet) compared with its parent
    SCREENED_OUT = "SCREENED_OUT"     # cheap stage too far below the incumbent
    NOT_BETTER = "NOT_BETTER"         # full stage, but not significantly better
    PENDING_REVIEW = "PENDING_REVIEW" # significantly better and confirmed; waits for a person
    NOT_CONFIRMED = "NOT_CONFIRMED"   # passed validation, failed confirmation (earlier window / seed)
    SUPERSEDED = "SUPERSEDED"         # compared with a champion that was replaced before approval
    INFEASIBLE = "INFEASIBLE"         # broke a constraint of its outer reward: never promoted
    APPROVED = "APPROVED"             # committed as a version
    REJECTED = "REJECTED"             # a reviewer said no


class FailureKind(str, Enum):
    SYNTAX = "SYNTAX"
    IMPORT = "IMPORT"
    INTERFACE = "INTERFACE"
    STATIC_CHECK = "STATIC_CHECK"
    TIMEOUT = "TIMEOUT"
    MEMORY = "MEMORY"
    LIMIT = "LIMIT"
    RUNTIME = "RUNTIME"
    INVALID_OUTPUT = "INVALID_OUTPUT"
    PROPOSAL = "PROPOSAL"            # the proposer could not produce a candidate


class ReviewDecision(str, Enum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


# ---- read models -----------------------------------------------------------------------

class Agent(_Frozen):
    id: int
    name: str
    role: str                      # recommender | ranker | reranker | router
    family: str                    # the built-in family it started from
    description: str
    interface: str                 # the contract text shown to proposers
    inner_reward: str              # e.g. "ndcg@10"
    parameter_space: dict[str, Any]
    created_at: datetime


class AgentVersion(_Frozen):
    id: int
    agent_name: str
    number: int                    # v<number>
    tag: str                       # "<agent>/v<number>"
    git_sha: str
    family: str
    params: dict[str, Any]
    parent_version_id: int | None
    experiment_id: int | None
    is_champion: bool
    created_at: datetime
    code_hash: str | None = None   # its code in candidate_code (None: written before revision 0004)
    # (its manifest holds sealed test metrics: read it with ``Store.get_version_manifest``,
    # never on this model, which reaches proposers' contexts)


class DesignSession(_Frozen):
    """A design process as other processes sharing the database see it (its heartbeat)."""

    session_id: str
    agent_name: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


class Experiment(_Frozen):
    id: int
    agent_name: str
    session_id: str
    parent_version_id: int | None
    parent_experiment_id: int | None
    proposer: str                  # search | llm | manual | baseline
    proposal: dict[str, Any]       # kind, rationale, model, ask, ... (never secrets)
    family: str | None
    params: dict[str, Any]
    code_hash: str
    dataset_key: str               # dataset + split fingerprint
    stage: str                     # cheap | full
    status: ExperimentStatus
    promotion: PromotionState
    metrics: dict[str, float]      # validation metrics of this stage
    segments: dict[str, dict[str, float]]
    inner_reward: float | None
    outer_reward: float | None
    p_value: float | None
    effect_size: float | None
    fit_seconds: float | None
    wall_seconds: float | None
    peak_memory_mb: float | None
    sandbox_tier: str | None
    created_at: datetime
    finished_at: datetime | None
    evidence: dict[str, Any] | None = None  # what decided the promotion: comparison, confirmation, veto


class ErrorControlTest(_Frozen):
    """One test in a subject's online false-discovery stream (see ``record_error_control_test``)."""

    id: int
    subject: str
    seq: int
    experiment_id: int | None
    procedure: str
    target_fdr: float
    initial_wealth: float
    alpha: float
    p_value: float
    passed: bool
    discovery: bool | None
    created_at: datetime


class Failure(_Frozen):
    id: int
    experiment_id: int | None
    agent_name: str
    kind: FailureKind
    message: str
    traceback_tail: str
    created_at: datetime


class LLMCall(_Frozen):
    id: int
    agent_name: str
    session_id: str
    experiment_id: int | None
    model: str
    purpose: str                   # propose | reask | insight
    prompt: str
    response: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_seconds: float
    error: str | None
    created_at: datetime


class Review(_Frozen):
    id: int
    experiment_id: int
    decision: ReviewDecision
    reason: str
    reviewer: str
    created_at: datetime


class Insight(_Frozen):
    id: int
    agent_name: str
    text: str
    provenance: dict[str, Any]
    created_at: datetime


# ---- drafts (what writers pass in) -------------------------------------------------------

class AgentSpec(_Frozen):
    name: str
    role: str = "recommender"
    family: str
    description: str = ""
    interface: str = ""
    inner_reward: str = "ndcg@10"
    parameter_space: dict[str, Any] = Field(default_factory=dict)


class ExperimentDraft(_Frozen):
    agent_name: str
    session_id: str
    parent_version_id: int | None = None
    parent_experiment_id: int | None = None
    proposer: str
    proposal: dict[str, Any] = Field(default_factory=dict)
    family: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    code_hash: str
    dataset_key: str
    stage: str = "full"


class ExperimentResult(_Frozen):
    """What a finished run adds to its experiment row."""

    status: ExperimentStatus
    metrics: dict[str, float] = Field(default_factory=dict)
    segments: dict[str, dict[str, float]] = Field(default_factory=dict)
    inner_reward: float | None = None
    outer_reward: float | None = None
    fit_seconds: float | None = None
    wall_seconds: float | None = None
    peak_memory_mb: float | None = None
    sandbox_tier: str | None = None


class FailureDraft(_Frozen):
    agent_name: str
    experiment_id: int | None = None
    kind: FailureKind
    message: str
    traceback_tail: str = ""


class LLMCallDraft(_Frozen):
    agent_name: str
    session_id: str
    experiment_id: int | None = None
    model: str
    purpose: str = "propose"
    prompt: str
    response: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_seconds: float = 0.0
    error: str | None = None


class VersionDraft(_Frozen):
    """A version to release: its code is stored under ``code_hash`` (``Store.put_code``)."""

    family: str
    params: dict[str, Any] = Field(default_factory=dict)
    code_hash: str
    manifest: dict[str, Any] = Field(default_factory=dict)
    parent_version_id: int | None = None
    experiment_id: int | None = None
    git_sha: str = ""              # filled in by the first repository that commits it


class PipelineComponent(_Frozen):
    id: int
    version_id: int                # the pipeline version that pins it
    position: int
    role: str                      # recall | ranker | reranker | router
    branch: int | None
    agent_name: str | None         # a pinned agent version ...
    agent_version_id: int | None
    family: str | None             # ... or a family with params
    params: dict[str, Any]
    quota: int | None


class EvolvePhase(_Frozen):
    id: int
    run_id: str
    pipeline: str
    kind: str                      # individual | compositional
    target: str                    # the component agent, or the pipeline
    started_at: datetime
    ended_at: datetime | None
    iterations: int
    promotions: int
    reason: str                    # why it started (while running), then why it ended
    data: dict[str, Any]
