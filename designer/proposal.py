"""Value types at the proposer seam: what a proposer sees and what it returns."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Protocol

from pydantic import BaseModel, ConfigDict, Field

from designer.errors import DesignerError
from knowledge_base.models import Agent, AgentVersion, Experiment, Failure, Insight, Review

if TYPE_CHECKING:
    from designer.families import Family


class ProposalKind(str, Enum):
    PARAMS = "params"                # new parameters for the parent's family
    FAMILY_SWITCH = "family_switch"  # another built-in family of the same role
    CODE = "code"                    # new module text (LLM structural innovation)


class Proposal(BaseModel):
    """One proposed change. ``code`` is set for CODE proposals, else rendered from ``family``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proposer: str
    kind: ProposalKind
    family: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    code: str | None = None
    rationale: str = ""
    model: str | None = None          # the LLM that wrote it, if any
    ask: str | None = None            # improve | debug | new_architecture | crossover
    meta: dict[str, Any] = Field(default_factory=dict)


class Candidate(BaseModel):
    """A proposal made concrete: module text plus params, identified by a content hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proposal: Proposal
    code: str
    params: dict[str, Any]

    @property
    def content_hash(self) -> str:
        """sha256 of the code and the canonical JSON of the params."""
        blob = self.code + "\n#params:" + json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


class ReviewedProposal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    experiment: Experiment
    review: Review


class DesignContext(BaseModel):
    """Everything a proposer may read. Sealed test metrics never enter it."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    agent: Agent
    parent: AgentVersion | None
    parent_family: str
    parent_params: dict[str, Any]
    parent_code: str
    parent_reward: float | None
    dataset_key: str
    history: list[Experiment]                 # this agent on this data set, oldest first
    best: list[Experiment]                    # top finished experiments, best first
    failures: list[Failure]                   # recent failures, newest first
    rejected: list[ReviewedProposal]          # proposals reviewers rejected, with reasons
    insights: list[Insight]
    families: dict[str, Any]                  # name -> designer.families.Family (same role)
    time_limit_seconds: float
    memory_limit_mb: int
    iteration: int = 0
    pending: list[Proposal] = Field(default_factory=list)  # proposals in flight (parallel workers)


class Proposer(Protocol):
    """Turns a context into a proposal. Raises ``ProposalError`` when it cannot."""

    name: str

    def propose(self, context: DesignContext) -> Proposal: ...


@dataclass
class ChosenProposer:
    """A proposer as a loop is given it: the proposer, the session id its LLM calls (if any)
    are recorded under, and its insight writer (LLM proposers only)."""

    proposer: Proposer | None     # None: a loop that only scores and resumes, never proposes
    session_id: str
    insights: Callable[[Any], str] | None = None


class ProposalError(DesignerError):
    """A proposer could not produce a usable proposal (recorded as a PROPOSAL failure)."""


class SessionStop(Exception):
    """Raised by a proposer to end the design session cleanly (e.g. an exhausted LLM budget).
    A signal, not an error: deliberately outside ``DesignerError``, so that no handler of
    errors swallows it."""
