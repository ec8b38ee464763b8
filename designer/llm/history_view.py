"""Past experiments and the parent's weak spots, as compact lines a model reads right.

One line per candidate (its cheap screen and full run merged), the metric named with its
split (``val ndcg@10``: all validation users, full fidelity), the idea in one sentence and
the outcome. The confirmation stages (an earlier window used by promotion) and every sealed
test number stay out: only ``cheap`` and ``full`` experiments are read, and of those only
validation metrics and promotion states.
"""
from __future__ import annotations

import re
from typing import Any

from designer.proposal import DesignContext
from knowledge_base.models import Experiment, ExperimentStatus, PromotionState

SHOWN_STAGES = ("cheap", "full")
IDEA_CHARS = 160
SAME = 1e-9
SEGMENTS = ("cold", "medium", "heavy")
ITEM_GROUPS = ("head", "tail")

OUTCOMES = {
    PromotionState.APPROVED: "promoted (a new version)",
    PromotionState.PENDING_REVIEW: "passed the significance test; waits for review",
    PromotionState.NOT_BETTER: "not significantly better than its parent",
    PromotionState.NOT_CONFIRMED: "better on val but the gain did not hold on held-back evidence",
    PromotionState.SUPERSEDED: "compared with a champion since replaced",
    PromotionState.REJECTED: "rejected by a reviewer",
    PromotionState.SCREENED_OUT: "screened out by the cheap stage",
}


def idea(e: Experiment) -> str:
    """The first sentence of the rationale (at most ``IDEA_CHARS``) plus the params, if any."""
    text = " ".join(str(e.proposal.get("rationale", "")).split())
    text = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0] if text else ""
    if e.params:  # a search point (a built-in family, or the SPACE of an LLM module)
        text = (text + " " if text else "") + "params " + _params(e.params)
    return text if len(text) <= IDEA_CHARS else text[:IDEA_CHARS - 4] + " ..."


def _params(params: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={_short(v)}" for k, v in params.items()) + "}"


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def candidates(history: list[Experiment]) -> list[tuple[Experiment | None, Experiment | None]]:
    """``(cheap, full)`` per candidate, newest first; the champion's own scoring runs are skipped."""
    by_id = {e.id: e for e in history}
    fulls_of = {e.parent_experiment_id for e in history if e.stage == "full"}
    out = []
    for e in reversed(history):
        if e.stage not in SHOWN_STAGES or e.proposer == "baseline":
            continue
        if e.stage == "cheap" and e.id in fulls_of:
            continue  # shown with its full run
        cheap = by_id.get(e.parent_experiment_id) if e.stage == "full" else e
        if cheap is not None and cheap.stage != "cheap":
            cheap = None
        out.append((cheap, e if e.stage == "full" else None))
    return out


def candidate_line(cheap: Experiment | None, full: Experiment | None, reward: str,
                   rewards: dict[int, float | None]) -> str:
    """``#id [proposer/ask] family: val metric x (delta vs parent) -- idea -- outcome``."""
    e = full or cheap
    assert e is not None
    who = e.proposer + (f"/{e.proposal['ask']}" if e.proposal.get("ask") else "")
    family = e.family or "?"
    if family == "custom" and e.proposal.get("base_family") not in (None, "", "custom"):
        family = f"custom (from {e.proposal['base_family']})"
    parts = [f"#{e.id} [{who}] {family}"]
    score, outcome = _score_and_outcome(cheap, full, reward, rewards)
    if score:
        parts.append(score)
    if (text := idea(e)):
        parts.append(f"idea: {text}")
    parts.append(f"outcome: {outcome}")
    return " -- ".join(parts)


def _score_and_outcome(cheap, full, reward, rewards) -> tuple[str, str]:
    e = full or cheap
    if e.status is not ExperimentStatus.COMPLETED:
        return "", _failed(e)
    if full is None:
        outcome = OUTCOMES.get(cheap.promotion, "stopped after the cheap stage")
        score = f"cheap-screen {reward} {_num(cheap.inner_reward)} (subset of users, reduced fidelity)"
        return score, outcome
    parent = rewards.get(e.proposal.get("incumbent_experiment") or -1)
    score = f"val {reward} {_num(e.inner_reward)}"
    if parent is not None and e.inner_reward is not None:
        if abs(e.inner_reward - parent) <= SAME:
            return score, "scored exactly the parent (the change had no effect)"
        score += f" ({e.inner_reward - parent:+.4f} vs its parent)"
    outcome = OUTCOMES.get(e.promotion, "not judged")
    if e.promotion is PromotionState.NOT_BETTER and e.p_value is not None:
        outcome += f" (p={e.p_value:.2g})"
    return score, outcome


def _failed(e: Experiment) -> str:
    if e.status is ExperimentStatus.REJECTED_STATIC:
        return "rejected by the static checks before running"
    stage = "" if e.stage == "full" else f" in the {e.stage} stage"
    return f"{e.status.value.lower().replace('_', ' ')}{stage}"


def history_lines(context: DesignContext) -> list[str]:
    """One line per past candidate of this agent and data set, newest first."""
    reward = context.agent.inner_reward
    rewards = {e.id: e.inner_reward for e in context.history if e.stage == "full"}
    return [candidate_line(c, f, reward, rewards) for c, f in candidates(context.history)]


def parent_run(context: DesignContext) -> Experiment | None:
    """The parent's full-stage validation run on this data set, if it is in the history."""
    if context.parent is None:
        return None
    full = [e for e in context.history if e.stage == "full" and e.status is ExperimentStatus.COMPLETED]
    mine = [e for e in full if e.id == context.parent.experiment_id]
    mine = mine or [e for e in full if e.proposer == "baseline" and e.parent_version_id == context.parent.id]
    return mine[-1] if mine else None


def weak_spots(context: DesignContext) -> dict[str, Any]:
    """Costs and per-segment validation metrics of the parent next to the best other run."""
    parent = parent_run(context)
    if parent is None:
        return {"costs": "", "rows": [], "best_label": ""}
    best = next((e for e in context.best if e.code_hash != parent.code_hash and e.segments), None)
    reward = context.agent.inner_reward
    out: dict[str, Any] = {"costs": _costs(parent, context), "rows": [],
                           "best_label": f"#{best.id} ({best.family})" if best else ""}
    k = reward.split("@")[-1] if "@" in reward else "10"
    for seg in SEGMENTS + ITEM_GROUPS:
        metric = reward if seg in SEGMENTS else f"exposure@{k}"
        row = _segment_row(seg, metric, parent, best)
        if row:
            out["rows"].append(row)
        if seg in ITEM_GROUPS and reward in parent.segments.get(seg, {}):
            out["rows"].append(_segment_row(seg, reward, parent, best, suffix=" (its items only)"))
    return out


def _segment_row(seg: str, metric: str, parent: Experiment, best: Experiment | None,
                 suffix: str = "") -> str:
    values = parent.segments.get(seg, {})
    if metric not in values:
        return ""
    users = values.get("n_users")
    who = f"{seg} ({int(users)} users)" if users is not None and seg in SEGMENTS else seg
    text = f"{who} {metric}{suffix}: parent {_num(values[metric])}"
    other = (best.segments.get(seg, {}) if best else {}).get(metric)
    return text + (f", best {_num(other)}" if other is not None else "")


def _costs(parent: Experiment, context: DesignContext) -> str:
    limit = context.time_limit_seconds
    parts = []
    if parent.fit_seconds is not None:
        parts.append(f"fit {_seconds(parent.fit_seconds)}")
    if parent.wall_seconds is not None:
        share = parent.wall_seconds / limit if limit else 0.0
        parts.append(f"whole run {_seconds(parent.wall_seconds)} of the {limit:.0f} s limit "
                     f"({max(0.0, 1 - share):.0%} headroom)")
    if parent.peak_memory_mb is not None:
        parts.append(f"peak memory {parent.peak_memory_mb:.0f} of {context.memory_limit_mb} MB")
    return ", ".join(parts)


def _seconds(x: float) -> str:
    return f"{x:.1f} s" if x >= 1 else f"{x:.2f} s"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"
