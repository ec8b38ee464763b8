"""Confirmation of finalists: evidence a candidate was not selected on.

A candidate that passed its validation test at the level the subject's error control
granted is confirmed before it is promoted:

- **another seed**: the candidate is re-run on validation with ``seed + 1``. If its per-user
  rewards differ from the first run's by more than a tolerance it is *stochastic*; its
  evidence is then the two-seed mean of its per-user rewards, whose gain over the champion
  must still reach the minimum effect at the same level (a lucky seed does not promote).
- **an earlier temporal window**: candidate and champion are fitted on the train prefix and
  scored on each user's last train slice, the window just before validation (see
  ``sandbox.harness.splits``). The gain there must be positive, and Stouffer's combination
  of the validation z (two-seed z when stochastic) and the window z must be significant at
  the same level: a finalist whose validation gain is just at the level needs the earlier
  window to agree strongly; a large gain needs only a positive one.

The sealed test never enters confirmation.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from designer.promotion import Comparison, combined_p, format_p


class Confirmation(BaseModel):
    """What confirmation found; stored in the experiment's evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    confirmed: bool
    reason: str
    alpha: float
    window: Comparison | None = None
    stochastic: bool | None = None
    seed_comparison: Comparison | None = None
    combined_z: float | None = None
    combined_p: float | None = None
    experiment_ids: list[int] = Field(default_factory=list)


def decide(validation: Comparison, window: Comparison | None, seeded: Comparison | None,
           min_effect: float, experiment_ids: list[int]) -> Confirmation:
    """Confirmed iff the seed check (when stochastic) and the window check both hold. A data
    set whose users are too short for an earlier window (``window`` None: no user has train
    left before it) gives no window evidence: the seed check alone decides, and says so."""
    alpha = validation.alpha
    common = dict(alpha=alpha, window=window, stochastic=seeded is not None,
                  seed_comparison=seeded, experiment_ids=experiment_ids)
    evidence = validation
    if seeded is not None:
        if seeded.effect < min_effect or seeded.p_value > alpha:
            return Confirmation(confirmed=False, reason=f"stochastic: over two seeds the gain is "
                                f"{seeded.effect:+.4f} (p={format_p(seeded.p_value)}), not significant at "
                                f"alpha={format_p(alpha)}", **common)
        evidence = seeded
    if window is None:
        return Confirmation(confirmed=True, reason="no user has an earlier window (too few interactions): "
                            "confirmed on the seed check alone", **common)
    z, p = combined_p(evidence.z, window.z)
    common.update(combined_z=z, combined_p=p)
    if window.effect <= 0:
        return Confirmation(confirmed=False, reason=f"gain on the earlier window is {window.effect:+.4f}, "
                            "not positive", **common)
    if p > alpha:
        return Confirmation(confirmed=False, reason=f"combined evidence of validation and the earlier "
                            f"window p={format_p(p)} > alpha={format_p(alpha)}", **common)
    return Confirmation(confirmed=True, reason=f"confirmed: earlier window gain {window.effect:+.4f}, "
                        f"combined p={format_p(p)} <= alpha={format_p(alpha)}", **common)


def failed(validation: Comparison, what: str, experiment_ids: list[int]) -> Confirmation:
    """A confirmation run did not complete: no promotion."""
    return Confirmation(confirmed=False, reason=f"{what} did not complete: not confirmed",
                        alpha=validation.alpha, experiment_ids=experiment_ids)
