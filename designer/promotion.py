"""Promotion: does a candidate beat its parent on the inner reward, significantly?

A paired sign-flip permutation test over the users both were scored on (one-sided:
candidate > parent), plus a minimum effect size, plus a paired bootstrap confidence
interval of the mean gain for review. The level ``alpha`` of a test is granted by the
subject's online false-discovery procedure (``designer.error_control``), not fixed.

Where the observed gain lies beyond the resolution of the resamples (fewer than 10 of
them reach it: the permutation p-value would sit at its floor ``1/(resamples+1)``), the
p-value is the normal approximation of the same sign-flip distribution, whose null
variance is known exactly (``sum(d^2)/n^2``): small levels such as LORD++'s first ones
(2.7e-4) stay testable without millions of resamples.
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict

from designer.settings import PromotionConfig


class Comparison(BaseModel):
    """Result of comparing a candidate with its parent on the same users."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_users: int
    candidate_mean: float
    parent_mean: float
    effect: float                 # mean per-user gain (candidate - parent)
    ci_low: float                 # 95% paired bootstrap interval of the gain
    ci_high: float
    p_value: float
    p_method: str = "permutation"  # or "normal approximation" (beyond the resampling floor)
    z: float = 0.0                # sign-flip z statistic: sum(d) / sqrt(sum(d^2))
    alpha: float = 0.05           # the level this comparison was decided at
    promote: bool
    reason: str

    def decided_at(self, alpha: float, min_effect: float) -> "Comparison":
        """The same comparison decided at level ``alpha``."""
        promote, reason = _decide(self.effect, self.p_value, alpha, min_effect)
        return self.model_copy(update={"alpha": alpha, "promote": promote, "reason": reason})


def combined_p(*z_values: float) -> tuple[float, float]:
    """Stouffer's combination of one-sided z statistics: ``(z, p)``."""
    z = float(sum(z_values) / math.sqrt(len(z_values)))
    return z, normal_sf(z)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z (``math.erfc``: no scipy.stats import, ~5 s, per command)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def align(users_a: np.ndarray, scores_a: np.ndarray, users_b: np.ndarray,
          scores_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the users present in both runs, in the same order."""
    common, ia, ib = np.intersect1d(users_a, users_b, assume_unique=True, return_indices=True)
    return scores_a[ia], scores_b[ib]


def compare(candidate: np.ndarray, parent: np.ndarray, config: PromotionConfig,
            seed: int = 0, alpha: float | None = None) -> Comparison:
    """Paired test of per-user rewards (arrays aligned by user), decided at ``alpha``
    (default ``config.alpha``). Deterministic by ``seed``."""
    if len(candidate) != len(parent) or len(candidate) == 0:
        raise ValueError("paired comparison needs two non-empty arrays of equal length")
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(parent, dtype=np.float64)
    rng = np.random.default_rng(seed)
    observed = diff.mean()
    null = _resample(lambda n: (rng.choice([-1.0, 1.0], size=(n, len(diff))) * diff).mean(axis=1),
                     config.resamples, len(diff))
    reached = int(np.count_nonzero(null >= observed))
    z = _z(diff)
    p_value, method = float((1 + reached) / (config.resamples + 1)), "permutation"
    if reached < 10 and observed > 0:
        p_value, method = normal_sf(z), "normal approximation"
    boot = _resample(lambda n: diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1),
                     config.resamples, len(diff))
    low, high = np.quantile(boot, [0.025, 0.975])
    level = config.alpha if alpha is None else alpha
    promote, reason = _decide(observed, p_value, level, config.min_effect)
    return Comparison(n_users=len(diff), candidate_mean=float(np.mean(candidate)),
                      parent_mean=float(np.mean(parent)), effect=float(observed),
                      ci_low=float(low), ci_high=float(high), p_value=p_value, p_method=method,
                      z=z, alpha=level, promote=promote, reason=reason)


def _z(diff: np.ndarray) -> float:
    scale = math.sqrt(float(np.sum(diff * diff)))
    return float(np.sum(diff) / scale) if scale > 0 else 0.0


def _resample(draw, total: int, width: int, cells: int = 4_000_000) -> np.ndarray:
    """Concatenate ``draw(n)`` batches so no batch holds more than ``cells`` numbers."""
    batch = max(1, cells // max(1, width))
    return np.concatenate([draw(min(batch, total - i)) for i in range(0, total, batch)])


def format_p(p: float) -> str:
    return f"{p:.4f}" if p >= 0.001 else f"{p:.1e}"


def _decide(effect: float, p_value: float, alpha: float, min_effect: float) -> tuple[bool, str]:
    if effect < min_effect:
        return False, f"gain {effect:+.4f} below the minimum effect {min_effect:.4f}"
    if p_value > alpha:
        return False, f"gain {effect:+.4f} not significant (p={format_p(p_value)} > alpha={format_p(alpha)})"
    return True, f"gain {effect:+.4f}, p={format_p(p_value)} <= alpha={format_p(alpha)}"
