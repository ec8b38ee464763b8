"""Promotion: does a candidate beat its parent on the inner reward, significantly?

A paired sign-flip permutation test over the validation users both were scored on
(one-sided: candidate > parent), plus a minimum effect size, plus a paired bootstrap
confidence interval of the mean gain for review.
"""
from __future__ import annotations

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
    promote: bool
    reason: str


def align(users_a: np.ndarray, scores_a: np.ndarray, users_b: np.ndarray,
          scores_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the users present in both runs, in the same order."""
    common, ia, ib = np.intersect1d(users_a, users_b, assume_unique=True, return_indices=True)
    return scores_a[ia], scores_b[ib]


def compare(candidate: np.ndarray, parent: np.ndarray, config: PromotionConfig,
            seed: int = 0) -> Comparison:
    """Paired test of per-user rewards (arrays aligned by user). Deterministic by ``seed``."""
    if len(candidate) != len(parent) or len(candidate) == 0:
        raise ValueError("paired comparison needs two non-empty arrays of equal length")
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(parent, dtype=np.float64)
    rng = np.random.default_rng(seed)
    observed = diff.mean()
    null = _resample(lambda n: (rng.choice([-1.0, 1.0], size=(n, len(diff))) * diff).mean(axis=1),
                     config.resamples, len(diff))
    p_value = float((1 + np.count_nonzero(null >= observed)) / (config.resamples + 1))
    boot = _resample(lambda n: diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1),
                     config.resamples, len(diff))
    low, high = np.quantile(boot, [0.025, 0.975])
    promote, reason = _decide(observed, p_value, config)
    return Comparison(n_users=len(diff), candidate_mean=float(np.mean(candidate)),
                      parent_mean=float(np.mean(parent)), effect=float(observed),
                      ci_low=float(low), ci_high=float(high), p_value=p_value,
                      promote=promote, reason=reason)


def _resample(draw, total: int, width: int, cells: int = 4_000_000) -> np.ndarray:
    """Concatenate ``draw(n)`` batches so no batch holds more than ``cells`` numbers."""
    batch = max(1, cells // max(1, width))
    return np.concatenate([draw(min(batch, total - i)) for i in range(0, total, batch)])


def _decide(effect: float, p_value: float, config: PromotionConfig) -> tuple[bool, str]:
    if effect < config.min_effect:
        return False, f"gain {effect:+.4f} below the minimum effect {config.min_effect:.4f}"
    if p_value >= config.alpha:
        return False, f"gain {effect:+.4f} not significant (p={p_value:.3f} >= {config.alpha})"
    return True, f"gain {effect:+.4f}, p={p_value:.4f} < {config.alpha}"
