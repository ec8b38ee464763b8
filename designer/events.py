"""Progress of a design session as events; the CLI renders them, tests collect them."""
from __future__ import annotations

from enum import Enum
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field


class EventKind(str, Enum):
    STARTED = "started"
    RESUMED = "resumed"            # interrupted experiments of an earlier session found
    BASELINE = "baseline"          # the champion was scored on this data set
    PROPOSED = "proposed"
    STAGE = "stage"                # a cheap / full / test evaluation starts
    FINISHED = "finished"          # a candidate completed its full evaluation
    SCREENED_OUT = "screened_out"  # cheap stage too far below the incumbent
    FAILED = "failed"              # crashed, timed out, invalid output, rejected statically
    DUPLICATE = "duplicate"        # content hash already evaluated: skipped
    PROPOSAL_FAILED = "proposal_failed"
    NEW_BEST = "new_best"
    PENDING_REVIEW = "pending_review"
    NOT_CONFIRMED = "not_confirmed"  # passed validation, failed confirmation
    VETOED = "vetoed"              # sealed test significantly below the parent's: no auto-approval
    SUPERSEDED = "superseded"      # compared with a champion that is no longer the champion
    PHASE = "phase"                # evolve: a phase started or ended
    INFEASIBLE = "infeasible"      # broke a constraint of the outer reward: never promoted
    APPROVED = "approved"
    INSIGHT = "insight"
    STOPPED = "stopped"


IMPORTANT = {EventKind.FINISHED, EventKind.SCREENED_OUT, EventKind.FAILED, EventKind.NEW_BEST,
             EventKind.NOT_CONFIRMED, EventKind.VETOED, EventKind.SUPERSEDED, EventKind.INFEASIBLE, EventKind.PHASE,
             EventKind.PENDING_REVIEW, EventKind.APPROVED, EventKind.BASELINE, EventKind.STOPPED,
             EventKind.PROPOSAL_FAILED, EventKind.RESUMED}


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EventKind
    iteration: int
    message: str
    experiment_id: int | None = None
    reward: float | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def important(self) -> bool:
        """Events worth a line in the live view (never a wall of logs)."""
        return self.kind in IMPORTANT


EventSink = Callable[[Event], None]
