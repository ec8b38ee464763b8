"""Classify how a candidate run failed; failures are data for the next proposal."""
from __future__ import annotations

from knowledge_base.models import ExperimentStatus, FailureKind
from sandbox.evaluation import EvaluationResult
from sandbox.outcome import Outcome

STATUS_OF = {o: ExperimentStatus(o.value) for o in Outcome}
FAILURE_OF = {Outcome.TIMED_OUT: FailureKind.TIMEOUT, Outcome.OUT_OF_MEMORY: FailureKind.MEMORY,
              Outcome.KILLED_BY_LIMIT: FailureKind.LIMIT, Outcome.INVALID_OUTPUT: FailureKind.INVALID_OUTPUT}


def classify_failure(result: EvaluationResult) -> FailureKind:
    """The failure class of a run that did not complete."""
    if result.outcome in FAILURE_OF:
        return FAILURE_OF[result.outcome]
    kind = result.error_type or ""
    if kind in ("SyntaxError", "IndentationError", "TabError"):
        return FailureKind.SYNTAX
    if kind in ("ImportError", "ModuleNotFoundError"):
        return FailureKind.IMPORT
    if kind in ("AttributeError", "TypeError") and any(
            w in result.message for w in ("Agent", "recommend", "fit", "__init__", "argument")):
        return FailureKind.INTERFACE
    return FailureKind.RUNTIME
