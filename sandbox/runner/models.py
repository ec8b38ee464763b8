"""Value types of the runner: tiers, requests, results and the ``Runner`` protocol."""
from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, field_validator

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


class RunRequest(BaseModel):
    """One candidate run.

    ``candidate``: the agent's ``.py`` file. ``inputs``: read-only folder with
    ``train.npz`` (+ ``item_features.npy``/``user_features.npy``) and ``users.npy``; its
    files must be world-readable (tier A runs as an unprivileged uid). ``output``: an
    empty folder the caller created, the only writable place (quota ``limits.output_mb``).
    ``config``: JSON-able ``{"k": int, "params": {...}, "fidelity": float, "seed": int}``;
    an optional ``"run_id"`` (``[A-Za-z0-9_.-]{1,64}``) names the cgroup and is exported
    to the sandbox as ``AGENTICRS_RUN_ID``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidate: Path
    inputs: Path
    output: Path
    config: dict[str, Any]
    limits: Limits = Limits()

    @field_validator("config")
    @classmethod
    def _json_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config must be JSON-serialisable: {exc}") from exc
        k = value.get("k")
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise ValueError("config['k'] must be a positive int")
        if not isinstance(value.get("params", {}), dict):
            raise ValueError("config['params'] must be a dict of keyword arguments for Agent()")
        run_id = value.get("run_id")
        if run_id is not None and not (isinstance(run_id, str) and _RUN_ID.match(run_id)):
            raise ValueError("config['run_id'] must match [A-Za-z0-9_.-]{1,64}")
        return value


class RunResult(BaseModel):
    """What happened in one run, as data.

    ``outcome`` COMPLETED implies ``output/recommendations.npy`` passed
    ``read_recommendations``. Measured by the parent, with its own clocks, and not
    forgeable: ``wall_seconds`` (spawn to reaping), ``cpu_seconds`` (cgroup, else
    rusage), ``peak_memory_mb``, and ``fit_seconds``/``recommend_seconds`` (between the
    arrivals of the entry's phase announcements and the reaping; a candidate can at most
    shift time between the two, both stay in [0, wall]; see ``sandbox.runner.timing``).
    Reported by code inside the sandbox, so forgeable and advisory only:
    ``reported_fit_seconds``/``reported_recommend_seconds`` (None when impossible:
    negative, non-finite, above the wall time), ``error_type`` and ``traceback_tail``.
    ``exit_code`` is negative (-signal) when the candidate was killed by a signal.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

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


@runtime_checkable
class Runner(Protocol):
    """Runs one candidate in isolation; never raises for failures of candidate code."""

    tier: IsolationTier

    def run(self, request: RunRequest) -> RunResult:
        """Run ``request`` to completion or to a limit; raises only ``SandboxError``."""
        ...
