"""``mixed``: a bandit that shares iterations between LLM structure and parameter search.

Structure by the LLM, constants by search: when the parent is an LLM module that declares
a ``SPACE`` nobody has tuned yet, search gets the iteration. Otherwise each arm's value is the validation gain it produced per second of cost (evaluation wall
time plus the time the proposer took, i.e. LLM latency), read from the knowledge base;
UCB1 adds an exploration bonus.
"""
from __future__ import annotations

import math
from typing import Any

from designer.proposal import DesignContext, Proposal
from designer.proposers.search import family_trials, llm_family
from knowledge_base.models import Experiment


def arm_stats(history: list[Experiment], arm: str) -> tuple[int, float, float]:
    """(proposals, gain, cost seconds) of one arm in ``history``."""
    mine = [e for e in history if e.proposer == arm]
    gain = sum(max(0.0, e.effect_size or 0.0) for e in mine if e.stage == "full")
    cost = sum((e.wall_seconds or 0.0) + float(e.proposal.get("meta", {}).get("propose_seconds", 0.0)) for e in mine)
    proposals = len({e.code_hash for e in mine})
    return proposals, gain, cost


class MixedProposer:
    """Chooses ``llm`` or ``search`` per call by UCB1 on gain per cost."""

    name = "mixed"

    def __init__(self, llm: Any, search: Any, exploration: float = 0.5):
        self.arms = {"llm": llm, "search": search}
        self.exploration = exploration
        self.last_arm: str | None = None
        self.attempts = {name: 0 for name in self.arms}  # proposals that left no experiment count too

    def choose(self, context: DesignContext) -> str:
        """The arm for this call: search for an untuned LLM family, an untried arm, else UCB1."""
        family = llm_family(context)
        if family is not None and not any(e.proposal.get("base_family") == family.name
                                          for e in family_trials(context, family)) \
                and not any(p.family == family.name for p in context.pending):
            return "search"
        stats = {}
        for name in self.arms:
            n, gain, cost = arm_stats(context.history, name)
            stats[name] = (max(n, self.attempts[name]), gain, cost)
        untried = [name for name, (n, _, _) in stats.items() if n == 0]
        if untried:
            return untried[0]
        total = sum(n for n, _, _ in stats.values())
        rates = {name: gain / max(cost, 1.0) for name, (_, gain, cost) in stats.items()}
        scale = max(rates.values()) or 1.0

        def score(name: str) -> float:
            n = stats[name][0]
            return rates[name] / scale + self.exploration * math.sqrt(math.log(total) / n)
        return max(self.arms, key=score)

    def propose(self, context: DesignContext) -> Proposal:
        self.last_arm = self.choose(context)
        self.attempts[self.last_arm] += 1
        return self.arms[self.last_arm].propose(context)
