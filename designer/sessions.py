"""Named design sessions that span several runs of ``agenticrs design``.

A session is one agent on one data set. Its name is the ``session_id`` of every experiment
and LLM call it records, so the knowledge base holds its work; this module adds what the
knowledge base has no column for (revision 0004): the runs' bookkeeping, kept in
``<workspace>/sessions/<name>.json`` and rewritten atomically after every iteration:
iterations done (proposals, also those that failed or duplicated an evaluated candidate),
each run's start, elapsed seconds and why it stopped, and whether the session is finished
(a run stopped because its iterations or time budget were spent) or unfinished (a run was
interrupted or killed), so that a plain re-run continues it.

``--iterations N`` counts the whole session: a run does ``N - done`` more.
"""
from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from designer.errors import UsageError
from knowledge_base.models import Experiment, ExperimentStatus, PromotionState

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
FINISHING = ("iterations done", "time budget spent")   # stop reasons that finish a session
FAILED = {ExperimentStatus.FAILED, ExperimentStatus.TIMED_OUT, ExperimentStatus.OUT_OF_MEMORY,
          ExperimentStatus.KILLED_BY_LIMIT, ExperimentStatus.INVALID_OUTPUT, ExperimentStatus.REJECTED_STATIC}
PASSED = {PromotionState.PENDING_REVIEW, PromotionState.APPROVED, PromotionState.REJECTED,
          PromotionState.SUPERSEDED}


class Run(BaseModel):
    model_config = ConfigDict(extra="forbid")

    started_at: datetime
    elapsed_seconds: float = 0.0
    stopped: str = ""          # "" while it runs (or after it was killed)


class SessionRecord(BaseModel):
    """The bookkeeping of one session (mutable: a run updates it as it goes)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    agent: str
    dataset_key: str
    iterations: int = 0            # proposals made, over every run
    proposal_failures: int = 0
    duplicates: int = 0
    baseline_reward: float | None = None
    target_iterations: int | None = None
    finished: bool = False
    runs: list[Run] = Field(default_factory=list)

    @property
    def stopped(self) -> str:
        return self.runs[-1].stopped if self.runs else ""


class SessionBook:
    """The session files of one workspace."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def load(self, name: str) -> SessionRecord | None:
        path = self.path(name)
        return SessionRecord.model_validate_json(path.read_text()) if path.is_file() else None

    def save(self, record: SessionRecord) -> None:
        """Write ``record`` atomically (a killed process leaves the previous version)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(record.name).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(record.model_dump_json(indent=2))
        tmp.replace(self.path(record.name))

    def all(self) -> list[SessionRecord]:
        if not self.folder.is_dir():
            return []
        return [SessionRecord.model_validate_json(p.read_text()) for p in sorted(self.folder.glob("*.json"))]

    def last_unfinished(self, agent: str, dataset_key: str) -> SessionRecord | None:
        """The agent's most recently started unfinished session on ``dataset_key``."""
        found = [r for r in self.all() if r.agent == agent and r.dataset_key == dataset_key
                 and not r.finished and r.runs]
        return max(found, key=lambda r: r.runs[-1].started_at, default=None)

    def choose(self, name: str | None, agent: str, dataset_key: str) -> tuple[SessionRecord, bool]:
        """The session a run works in: ``name`` (created if new) or, without a name, the
        agent's last unfinished session on the data set, else a new one. Returns
        ``(record, continued)``. Raises ``UsageError`` for a bad name or a session of
        another agent or data set."""
        if name is None:
            found = self.last_unfinished(agent, dataset_key)
            return (found, True) if found else (SessionRecord(name=uuid.uuid4().hex[:12], agent=agent,
                                                              dataset_key=dataset_key), False)
        check_name(name)
        found = self.load(name)
        if found is None:
            return SessionRecord(name=name, agent=agent, dataset_key=dataset_key), False
        if (found.agent, found.dataset_key) != (agent, dataset_key):
            raise UsageError(f"session {name} is agent {found.agent}'s on data set {found.dataset_key}; "
                             "pick another --session name for this agent and data set")
        return found, True


def check_name(name: str) -> str:
    """``name`` if it can name a session (and its file); else ``UsageError``."""
    if not NAME.match(name):
        raise UsageError(f"--session {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


def start_run(record: SessionRecord, kb_iterations: int) -> SessionRecord:
    """Open a new run of ``record``: iterations done are at least what the knowledge base
    shows (``kb_iterations``), e.g. when the session file was lost."""
    record.iterations = max(record.iterations, kb_iterations)
    record.finished = False
    record.runs.append(Run(started_at=datetime.now(timezone.utc)))
    return record


def end_run(record: SessionRecord, stopped: str, elapsed_seconds: float) -> SessionRecord:
    record.runs[-1].stopped, record.runs[-1].elapsed_seconds = stopped, round(elapsed_seconds, 3)
    record.finished = stopped in FINISHING
    return record


def kb_iterations(experiments: list[Experiment]) -> int:
    """Iterations the knowledge base shows for a session: each candidate that reached the
    sandbox has one cheap-stage run; one rejected before it has a REJECTED_STATIC row."""
    return sum(1 for e in experiments if e.stage == "cheap" or e.status is ExperimentStatus.REJECTED_STATIC)


def session_summary(record: SessionRecord, experiments: list[Experiment], approved: list[str],
                    metric: str) -> dict[str, Any]:
    """What the whole session did, over every run (``design --json``'s summary)."""
    mine = [e for e in experiments if e.proposer != "baseline"]
    full = [e for e in experiments if e.stage == "full" and e.status is ExperimentStatus.COMPLETED
            and e.inner_reward is not None]
    best = max(full, key=lambda e: e.inner_reward or 0.0, default=None)
    baseline = record.baseline_reward
    if best is not None and baseline is not None and best.inner_reward <= baseline:
        best = None
    return {"session": record.name, "agent": record.agent, "dataset": record.dataset_key,
            "metric": f"val {metric}", "iterations": record.iterations,
            "target_iterations": record.target_iterations, "runs": len(record.runs),
            "evaluated": sum(1 for e in full if e.proposer != "baseline"),
            "failed": sum(1 for e in mine if e.status in FAILED) + record.proposal_failures,
            "screened_out": sum(1 for e in mine if e.promotion is PromotionState.SCREENED_OUT),
            "duplicates": record.duplicates,
            "promoted_experiments": sorted(e.id for e in mine if e.promotion in PASSED),
            "approved_versions": approved, "baseline_reward": baseline,
            "best_reward": best.inner_reward if best else baseline,
            "best_experiment": best.id if best else None, "stopped": record.stopped,
            "finished": record.finished,
            "elapsed_seconds": round(sum(r.elapsed_seconds for r in record.runs), 1)}

