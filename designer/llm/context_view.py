"""What the prompt shows of a ``DesignContext``: the ask and plain, bounded entries.

Sealed test metrics never reach here: ``DesignContext`` carries validation metrics only.
"""
from __future__ import annotations

import random
import re
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from designer.llm.history_view import SHOWN_STAGES, history_lines, idea, weak_spots
from designer.llm.prompts import PromptBudget, head, tail
from designer.families import declared_space
from designer.proposal import DesignContext
from knowledge_base.models import Experiment, ExperimentStatus, Failure

CodeLookup = Callable[[Experiment], "str | None"]
"""Returns the module text an experiment ran (the loop reads its artifact), or None."""

FAILED = frozenset({ExperimentStatus.FAILED, ExperimentStatus.TIMED_OUT,
                    ExperimentStatus.OUT_OF_MEMORY, ExperimentStatus.KILLED_BY_LIMIT,
                    ExperimentStatus.INVALID_OUTPUT, ExperimentStatus.REJECTED_STATIC})
ASKS = ("improve", "debug", "new_architecture", "crossover")
MAX_METRICS = 8
BEST_METRICS = 3
PREFERRED = ("recall", "coverage", "tail_share")
COSTS = re.compile(r"seconds|memory|latency")


class AskPlan(BaseModel):
    """The chosen ask and what it needs; ``base_code`` is what SEARCH/REPLACE edits apply to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    base_code: str
    code: str | None = None                 # failed candidate (debug) / other version (crossover)
    failure: dict[str, Any] = Field(default_factory=dict)
    other_label: str = ""


class AskPolicy:
    """Chooses the ask: debug when the parent's latest experiment failed; else crossover
    with probability ``p_crossover`` when ``context.best`` holds >= 2 distinct versions,
    new_architecture with ``p_new_architecture``, otherwise improve. Seeded."""

    def __init__(self, p_crossover: float = 0.2, p_new_architecture: float = 0.15,
                 seed: int | None = None):
        self.p_crossover, self.p_new = p_crossover, p_new_architecture
        self._rng = random.Random(seed)

    def __call__(self, context: DesignContext) -> str:
        if failed_latest(context) is not None:
            return "debug"
        roll = self._rng.random()
        if len({e.code_hash for e in context.best}) >= 2 and roll < self.p_crossover:
            return "crossover"
        if roll > 1 - self.p_new:
            return "new_architecture"
        return "improve"


def failed_latest(context: DesignContext) -> Experiment | None:
    """The latest experiment made from the current parent, if it failed; else None."""
    parent_id = context.parent.id if context.parent else None
    mine = [e for e in context.history if e.stage in SHOWN_STAGES  # not promotion's confirm runs
            and (parent_id is None or e.parent_version_id == parent_id)]
    return mine[-1] if mine and mine[-1].status in FAILED else None


def plan_ask(ask: str, context: DesignContext, budget: PromptBudget,
             code_for: CodeLookup | None = None) -> AskPlan:
    """Gather what ``ask`` needs; falls back to improve when it cannot be served."""
    if ask == "debug" and (exp := failed_latest(context)) is not None:
        failure = next((f for f in context.failures if f.experiment_id == exp.id), None)
        code = lookup_code(code_for, exp)
        info = (_failure(failure, budget) if failure else
                {"kind": exp.status.value, "message": "no failure record", "traceback_tail": ""})
        return AskPlan(name="debug", base_code=code or context.parent_code, code=code, failure=info)
    if ask == "crossover" and (other := _other_version(context, code_for)) is not None:
        exp, code = other
        label = f"experiment {exp.id}, family {exp.family}, {context.agent.inner_reward}={_num(exp.inner_reward)}"
        return AskPlan(name="crossover", base_code=context.parent_code, code=code, other_label=label)
    name = ask if ask in ("improve", "new_architecture") else "improve"
    return AskPlan(name=name, base_code=context.parent_code)


def _other_version(context: DesignContext, code_for: CodeLookup | None):
    parent_exp = context.parent.experiment_id if context.parent else None
    for exp in context.best:
        if exp.id == parent_exp:
            continue
        code = lookup_code(code_for, exp) or _render_family(context, exp)
        if code and code.strip() != context.parent_code.strip():
            return exp, code
    return None


def lookup_code(code_for: CodeLookup | None, exp: Experiment) -> str | None:
    """``code_for(exp)``, or None when there is no lookup or it fails."""
    if code_for is None:
        return None
    try:
        return code_for(exp)
    except Exception:  # a missing artifact only degrades the prompt
        return None


def _render_family(context: DesignContext, exp: Experiment) -> str | None:
    """Code of a search-made experiment: its built-in family rendered with its params."""
    family = context.families.get(exp.family or "")
    if family is None or exp.proposal.get("kind") == "code":
        return None
    try:
        return family.render(exp.params)
    except Exception:
        return None


def sections(context: DesignContext, budget: PromptBudget) -> dict[str, list]:
    """The optional prompt sections, each ordered most useful first."""
    return {
        "failures": [_failure(f, budget) for f in context.failures],
        "history": history_lines(context),
        "best": [best_line(e, context.agent.inner_reward) for e in context.best],
        "rejected": [{"id": r.experiment.id, "reason": head(r.review.reason, budget.message_chars),
                      "rationale": head(str(r.experiment.proposal.get("rationale", "")),
                                        budget.rationale_chars)}
                     for r in reversed(context.rejected)],
        "insights": insight_bullets(context.insights, budget, own=context.agent.name),
    }


def insight_bullets(insights: list, budget: PromptBudget, own: str | None = None) -> list[str]:
    """The bullets of the stored insights in their order (prompts cut from the end), without
    their own markers (an insight is itself
    a bulleted list; the template adds one ``-`` per bullet). An insight about another agent
    or pipeline than ``own`` (``designer.context.carried_insights``) names it: ``(from X)``."""
    out: list[str] = []
    for insight in insights:       # as the context holds them: own newest first, then carried ones
        source = f"(from {insight.agent_name}) " if own is not None and insight.agent_name != own else ""
        for line in head(insight.text, budget.insight_chars).splitlines():
            text = BULLET.sub("", line).strip()
            if text:
                out.append(source + text)
    return out


BULLET = re.compile(r"^\s*(?:(?:[-*\u2022]+|\d+[.)])\s+)+")


def best_line(e: Experiment, reward_name: str) -> str:
    """One best experiment: family, val metrics (reward first), params of a search, idea."""
    quality = [k for k in sorted(e.metrics) if k != reward_name and not COSTS.search(k)]
    others = sorted(quality, key=lambda k: (k.split("@")[0] not in PREFERRED, k))[:BEST_METRICS]
    metrics = ", ".join(f"{k} {float(e.metrics[k]):.4f}" for k in [reward_name] + others if k in e.metrics)
    line = f"#{e.id} [{e.proposer}] {e.family}: val {metrics}"
    return line + (f" -- idea: {text}" if (text := idea(e)) else "")


def _failure(f: Failure, budget: PromptBudget) -> dict[str, Any]:
    return {"kind": f.kind.value, "experiment_id": f.experiment_id,
            "message": head(f.message, budget.message_chars),
            "traceback_tail": tail(f.traceback_tail, budget.traceback_chars)}


def experiment_entry(e: Experiment, reward_name: str, budget: PromptBudget) -> dict[str, Any]:
    """One experiment as the prompt shows it (validation metrics only)."""
    names = [reward_name] + sorted(k for k in e.metrics if k != reward_name)
    metrics = {k: round(float(e.metrics[k]), 4) for k in names[:MAX_METRICS] if k in e.metrics}
    return {"id": e.id, "proposer": e.proposer, "ask": e.proposal.get("ask"),
            "family": e.family, "params": e.params, "reward": _num(e.inner_reward),
            "status": e.status.value, "metrics": metrics,
            "rationale": head(str(e.proposal.get("rationale", "")), budget.rationale_chars)}


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def card(context: DesignContext, allowed_imports: str, data_card: str = "",
         sdk: str = "") -> dict[str, Any]:
    """The fixed variables of the propose template (never cut)."""
    a, p = context.agent, context.parent
    label = f"{p.tag} (family {context.parent_family})" if p else f"baseline family {context.parent_family}"
    return {
        "agent": {"name": a.name, "role": a.role, "description": a.description,
                  "interface": a.interface or DEFAULT_INTERFACE, "inner_reward": a.inner_reward},
        "constraints": {"time_limit_seconds": context.time_limit_seconds,
                        "memory_limit_mb": context.memory_limit_mb,
                        "allowed_imports": allowed_imports},
        "parent": {"label": label, "reward": context.parent_reward, "params": context.parent_params,
                   "space": bool(declared_space(context.parent_code))},
        "parent_code": context.parent_code,
        "weak": weak_spots(context),
        "data_card": data_card,
        "sdk": sdk,
    }


DEFAULT_INTERFACE = """class Agent:
    def __init__(self, **params): ...
    def fit(self, train) -> None: ...
    def recommend(self, users: np.ndarray, k: int) -> np.ndarray: ...
        # int64 array (len(users), k), best first, no item the user had in `train`
`train` has user, item, timestamp, rating (equal-length numpy arrays, dense 0-based ids),
n_users, n_items, item_features and user_features (arrays or None), matrix() (scipy CSR
users x items) and sequences() (each user's items in time order)."""
