"""Value types of the runner: tiers, requests, results and the ``Runner`` protocol."""
from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sandbox.limits import Limits
from sandbox.outcome import Outcome

_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class IsolationTier(str, Enum):
    """How strongly a run is isolated; recorded on every ``RunResult``.

    A: per-run cgroup + dedicated unprivileged uid + bubblewrap (all namespaces, no network).
    B: bubblewrap (namespaces, no network) + rlimits; no cgroup, no uid drop.
    C: rlimits + process group only. Cannot isolate network nor labels: INSECURE.
    """

    A = "A"
    B = "B"
    C = "C"

    @property
    def secure(self) -> bool:
        """True when the tier isolates the network and files outside the inputs."""
        return self is not IsolationTier.C


class RunConfig(BaseModel):
    """What the candidate is run with: ``Agent(**params)``, ``recommend(users, k)``.

    ``fidelity`` (0, 1] is exported as ``AGENTICRS_FIDELITY``; ``seed`` seeds Python, numpy
    and torch and sets ``PYTHONHASHSEED``; ``threads`` overrides ``Limits.threads`` (see
    ``RunRequest.threads``); ``run_id`` names the cgroup and is exported as
    ``AGENTICRS_RUN_ID`` (the runner makes one up when it is None).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(gt=0, strict=True)
    params: dict[str, Any] = {}
    fidelity: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 0
    threads: int | None = Field(default=None, gt=0)
    run_id: str | None = None

    @field_validator("params")
    @classmethod
    def _json_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"params must be JSON-serialisable keyword arguments for Agent(): {exc}") from exc
        return value

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        if value is not None and not _RUN_ID.match(value):
            raise ValueError("run_id must match [A-Za-z0-9_.-]{1,64}")
        return value


class RunRequest(BaseModel):
    """One candidate run.

    ``candidate``: the agent's ``.py`` file. ``inputs``: read-only folder with
    ``train.npz`` (+ ``item_features.npy``/``user_features.npy``) and ``users.npy``; its
    files must be world-readable (tier A runs as an unprivileged uid). ``output``: an
    empty folder the caller created, the only writable place (quota ``limits.output_mb``).
    ``config``: a ``RunConfig`` (a dict of its fields is accepted and validated).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidate: Path
    inputs: Path
    output: Path
    config: RunConfig
    limits: Limits = Limits()

    @property
    def threads(self) -> int:
        """The thread count of the run, resolved once: the config's, else the limits'."""
        return int(self.config.threads or self.limits.threads)


class RunResult(BaseModel):
    """What happened in one run, as data.

    ``outcome`` COMPLETED implies ``output/recommendations.npy`` passed
    ``read_recommendations``, and ``recommendations`` holds what it read (int64, one row
    per user; the only read of the file: callers check the list contract on it, not read
    it again; not serialised). Measured by the parent, with its own clocks, and not
    forgeable: ``wall_seconds`` (spawn to reaping), ``cpu_seconds`` (cgroup, else
    rusage), ``peak_memory_mb``, and ``fit_seconds``/``recommend_seconds`` (between the
    arrivals of the entry's phase announcements and the reaping; a candidate can at most
    shift time between the two, both stay in [0, wall]; see ``sandbox.runner.timing``).
    Reported by code inside the sandbox, so forgeable and advisory only:
    ``reported_fit_seconds``/``reported_recommend_seconds`` (None when impossible:
    negative, non-finite, above the wall time), ``error_type`` and ``traceback_tail``.
    ``exit_code`` is negative (-signal) when the candidate was killed by a signal.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    outcome: Outcome
    exit_code: int | None
    wall_seconds: float
    cpu_seconds: float | None
    peak_memory_mb: float | None
    tier: IsolationTier
    stdout_tail: str
    stderr_tail: str
    error_type: str | None
    message: str
    traceback_tail: str
    fit_seconds: float | None
    recommend_seconds: float | None
    reported_fit_seconds: float | None = None
    reported_recommend_seconds: float | None = None
    recommendations: np.ndarray | None = Field(default=None, exclude=True, repr=False)


@runtime_checkable
class Runner(Protocol):
    """Runs one candidate in isolation; never raises for failures of candidate code."""

    tier: IsolationTier

    def run(self, request: RunRequest) -> RunResult:
        """Run ``request`` to completion or to a limit; raises only ``SandboxError``."""
        ...
