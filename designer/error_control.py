"""Online false-discovery control over a subject's stream of promotion tests: LORD++.

Every full-stage comparison of a candidate with the champion of one subject (an agent or a
pipeline) is one hypothesis test in a stream that never ends and that every session and
worker on the subject shares (its state is the knowledge base's ``error_control_tests``).
Testing each at a fixed alpha lets the history climb on noise: dozens of candidates are
compared on the same validation users. LORD++ (Ramdas, Yang, Wainwright and Jordan 2017,
"Online control of the false discovery rate with decaying memory", NeurIPS; the LORD rule
of Javanmard and Montanari 2018, Annals of Statistics 46(2)) grants test ``t`` the level

    alpha_t = gamma_t * w0 + (alpha - w0) * gamma_{t - tau_1} + alpha * sum_{j >= 2} gamma_{t - tau_j}

where ``tau_j`` are the times of the earlier discoveries, ``w0 <= alpha`` the initial
wealth and ``gamma_j = 0.07720838 log(max(j, 2)) / (j exp(sqrt(log j)))`` (non-increasing,
summing to about 1). It keeps the false discovery rate at or below ``alpha`` at every time
for independent p-values. The defaults follow the R package onlineFDR (``w0 = alpha / 10``),
whose documented output is this module's reference test.

Here a test's "discovery" is a promotion: the validation test passed at ``alpha_t`` *and*
the finalist was confirmed (see ``designer.confirmation``). A passed but unconfirmed test
earns no wealth: later levels are then never above LORD++'s own, and a test whose
confirmation is still running counts as no discovery for the tests that start meanwhile.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowledge_base.models import ErrorControlTest

GAMMA_CONSTANT = 0.07720838
PROCEDURES = ("lord++", "per-test")


def gamma(j: int | np.ndarray) -> np.ndarray:
    """The LORD++ spending sequence ``gamma_j`` for ``j >= 1``."""
    j = np.asarray(j, dtype=np.float64)
    return GAMMA_CONSTANT * np.log(np.maximum(j, 2)) / (j * np.exp(np.sqrt(np.log(j))))


def lord_alpha(t: int, discoveries: Sequence[int], alpha: float, w0: float) -> float:
    """The level of test ``t`` (1-based) given the 1-based times of earlier discoveries."""
    taus = sorted(d for d in discoveries if d < t)
    level = float(gamma(t)) * w0
    if taus:
        level += (alpha - w0) * float(gamma(t - taus[0]))
        level += alpha * float(np.sum(gamma(t - np.asarray(taus[1:], dtype=np.int64)))) if taus[1:] else 0.0
    return level


@dataclass(frozen=True)
class Procedure:
    """An error-control procedure at target FDR ``alpha``: ``lord++`` (default) or
    ``per-test`` (every comparison at ``alpha``: the first wave's gate, for benchmarks)."""

    name: str = "lord++"
    alpha: float = 0.05
    w0: float | None = None

    def __post_init__(self):
        if self.name not in PROCEDURES:
            raise ValueError(f"unknown error-control procedure {self.name!r}: use {' or '.join(PROCEDURES)}")

    @property
    def initial_wealth(self) -> float:
        return self.alpha / 10 if self.w0 is None else self.w0

    def next_alpha(self, earlier: Sequence[ErrorControlTest]) -> float:
        """The level of the test after ``earlier`` (a subject's tests, oldest first)."""
        if self.name == "per-test":
            return self.alpha
        times = [test.seq for test in earlier if test.discovery]
        return lord_alpha(len(earlier) + 1, times, self.alpha, self.initial_wealth)


@dataclass(frozen=True)
class Budget:
    """Where a subject's stream stands: for review and history."""

    procedure: str
    target_fdr: float
    tests: int
    discoveries: int
    alpha_spent: float
    next_alpha: float
    wealth: float          # what is left to spend: w0 + earned - spent


def budget(procedure: Procedure, tests: Sequence[ErrorControlTest]) -> Budget:
    """The stream's state after ``tests`` (oldest first)."""
    found = sum(1 for t in tests if t.discovery)
    earned = 0.0 if not found else (procedure.alpha - procedure.initial_wealth) + procedure.alpha * (found - 1)
    spent = float(sum(t.alpha for t in tests))
    wealth = procedure.initial_wealth + earned - spent
    return Budget(procedure.name, procedure.alpha, len(tests), found, spent,
                  procedure.next_alpha(tests), wealth if procedure.name == "lord++" else math.inf)
