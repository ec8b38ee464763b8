"""The offline proposer: black-box optimisation over a family's declared parameter space.

Optuna ask/tell (TPE by default, CMA-ES or random on request). The study lives in memory
and is rebuilt from the knowledge base on every call, so the KB stays the source of truth:
a second run continues exactly where the first stopped (the warm start).
"""
from __future__ import annotations

import logging
import random
from typing import Any, Callable

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution,
                                  FloatDistribution, IntDistribution)
from optuna.trial import TrialState, create_trial

from designer.families import declared_space, llm_family_name
from designer.proposal import DesignContext, Proposal, ProposalError, ProposalKind
from knowledge_base.models import Experiment, ExperimentStatus

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "cmaes", "random")


def distributions(family: Any) -> dict[str, BaseDistribution]:
    """Optuna distributions for a ``designer.families.Family``'s parameter space (or for
    anything with ``params``: name -> ``ParamSpec``, e.g. an ``LLMFamily``)."""
    out: dict[str, BaseDistribution] = {}
    for name, spec in family.params.items():
        if spec.type == "float":
            out[name] = FloatDistribution(spec.low, spec.high, log=bool(spec.log))
        elif spec.type == "int":
            out[name] = IntDistribution(int(spec.low), int(spec.high), log=bool(spec.log))
        elif spec.type == "bool":
            out[name] = CategoricalDistribution([False, True])
        else:
            out[name] = CategoricalDistribution(list(spec.choices))
    return out


def _fitting(params: dict[str, Any], dists: dict[str, BaseDistribution]) -> dict[str, Any] | None:
    """``params`` restricted to ``dists``, or None when they do not fit the space."""
    values = {k: v for k, v in params.items() if k in dists}
    try:
        if set(values) != set(dists) or any(not dists[k]._contains(dists[k].to_internal_repr(v))
                                            for k, v in values.items()):
            return None
    except ValueError:  # a value the (since narrowed) space no longer knows
        return None
    return values


def past_trial(exp: Experiment, dists: dict[str, BaseDistribution],
               defaults: dict[str, Any] | None = None) -> optuna.trial.FrozenTrial | None:
    """A finished experiment as an Optuna trial, or None when it does not fit the space or
    is a confirmation run (promotion's evidence, not a search point). ``defaults`` complete
    its params (an LLM module run with ``params={}`` ran at its ``SPACE`` defaults)."""
    params = _fitting({**(defaults or {}), **exp.params}, dists)
    if params is None or exp.stage not in ("cheap", "full"):
        return None
    if exp.status is ExperimentStatus.COMPLETED and exp.stage == "full" and exp.inner_reward is not None:
        return create_trial(params=params, distributions=dists, value=exp.inner_reward)
    # screened out by the cheap stage or failed: tells the sampler to look elsewhere
    return create_trial(params=params, distributions=dists, state=TrialState.FAIL)


def pending_trial(params: dict[str, Any], dists: dict[str, BaseDistribution]) -> optuna.trial.FrozenTrial | None:
    """A proposal still being evaluated, as a RUNNING trial (None if outside ``dists``)."""
    values = _fitting(params, dists)
    return None if values is None else create_trial(params=values, distributions=dists, state=TrialState.RUNNING)


class SearchProposer:
    """Explores every built-in family of the role once, then tunes the best ones.

    Policy per call: (0) when the parent is an LLM-written module that declares a ``SPACE``
    (an LLM family, see ``llm_family``), its parameters are tuned, except with probability
    ``switch_probability``, with which a near-best LLM module with a ``SPACE`` (given
    ``code_for``; see ``near_best_llm_family``) is tuned instead; (1) a family of the agent's role never evaluated on this data set is
    tried at its defaults; (2) with probability ``switch_probability`` the search moves to
    the runner-up family; (3) otherwise Optuna proposes params for the parent's family,
    warm-started from every past experiment of this agent, family and data set.
    """

    name = "search"

    def __init__(self, sampler: str = "tpe", seed: int = 0, switch_probability: float = 0.15,
                 explore_families: bool = True,
                 code_for: Callable[[Experiment], "str | None"] | None = None):
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
        self.sampler, self.seed = sampler, seed
        self.switch_probability, self.explore_families = switch_probability, explore_families
        self.code_for = code_for  # module text of an experiment: finds near-best LLM families

    def propose(self, context: DesignContext) -> Proposal:
        rng = random.Random(self.seed * 100_003 + len(context.history) + len(context.pending))
        llm, roll = llm_family(context), rng.random()
        if llm is not None and roll >= self.switch_probability:
            return self._tune_llm(context, llm)
        near = near_best_llm_family(context, self.code_for)
        if near is not None and roll < self.switch_probability:
            return self._tune_llm(context, near)
        unexplored = self._unexplored(context)
        if unexplored:
            family = unexplored[0]
            return Proposal(proposer=self.name, kind=ProposalKind.FAMILY_SWITCH, family=family,
                            params=context.families[family].defaults(),
                            rationale=f"explore family {family} at its default parameters")
        family = context.parent_family
        if family not in context.families:  # the champion is LLM-written code: tune the best family
            family = self._runner_up(context) or next(iter(context.families))
        runner_up = self._runner_up(context)
        if runner_up and rng.random() < self.switch_probability:
            family = runner_up
        return self._tune(context, family, rng)

    def _unexplored(self, context: DesignContext) -> list[str]:
        if not self.explore_families:
            return []
        tried = {e.family for e in context.history} | {p.family for p in context.pending}
        cheapest_first = sorted(context.families.values(), key=lambda f: (f.time_limit_seconds, f.name))
        return [f.name for f in cheapest_first if f.name not in tried and f.name != context.parent_family]

    def _runner_up(self, context: DesignContext) -> str | None:
        best: dict[str, float] = {}
        for e in context.history:
            if e.stage == "full" and e.inner_reward is not None and e.family in context.families:
                best[e.family] = max(best.get(e.family, float("-inf")), e.inner_reward)
        ranked = sorted((f for f in best if f != context.parent_family), key=best.get, reverse=True)
        return ranked[0] if ranked else None

    def _tune(self, context: DesignContext, family_name: str, rng: random.Random) -> Proposal:
        family = context.families[family_name]
        runs = [e for e in context.history if e.family == family_name]
        params, warm = self._next_point(context, family_name, family, runs,
                                        "widen the parameter space or switch family")
        kind = ProposalKind.PARAMS if family_name == context.parent_family else ProposalKind.FAMILY_SWITCH
        return Proposal(proposer=self.name, kind=kind, family=family_name, params=params,
                        rationale=f"{self.sampler} over {family_name} "
                                  f"({warm} past trials of this family)",
                        meta={"sampler": self.sampler, "warm_trials": warm})

    def _tune_llm(self, context: DesignContext, family: "LLMFamily") -> Proposal:
        """Optuna over the space the LLM module declares; a CODE proposal of the same module
        with new constructor params, whose ``family`` (the experiments' ``base_family``) is
        the LLM family's name, so its trials are found again."""
        params, warm = self._next_point(context, family.name, family, family_trials(context, family),
                                        "let the LLM change the module or widen its SPACE")
        return Proposal(proposer=self.name, kind=ProposalKind.CODE, family=family.name, code=family.code,
                        params=params, rationale=f"{self.sampler} over the SPACE of LLM family {family.name} "
                                                 f"({warm} past trials)",
                        meta={"sampler": self.sampler, "warm_trials": warm, "llm_family": family.name})

    def _next_point(self, context: DesignContext, name: str, family: Any, runs: list[Experiment],
                    hint: str) -> tuple[dict[str, Any], int]:
        """(a complete, not yet evaluated point of ``family``'s space, number of warm trials):
        Optuna warm-started from ``runs`` and from the proposals in flight for ``name``."""
        dists = distributions(family)
        if not dists:
            raise ProposalError(f"family {name} declares no parameters to search")
        defaults = family.defaults()
        study = optuna.create_study(direction="maximize",
                                    sampler=self._sampler(len(context.history) + len(context.pending)))
        seen, completed = [], False
        for exp in runs:
            if (trial := past_trial(exp, dists, defaults)) is not None:
                study.add_trial(trial)
                seen.append({**defaults, **exp.params})
                completed = completed or trial.state is TrialState.COMPLETE
        for proposal in context.pending:   # in flight: RUNNING trials (TPE's constant liar)
            if proposal.family == name and (running := pending_trial(proposal.params, dists)):
                study.add_trial(running)
                seen.append({**defaults, **proposal.params})
        if not completed:   # (``study.trials`` would deep-copy every trial of the study)
            study.enqueue_trial(defaults, skip_if_exists=True)
        for _ in range(20):
            trial = study.ask(dists)
            params = {**defaults, **trial.params}
            if params not in seen:
                return params, len(seen)
            study.tell(trial, state=TrialState.FAIL)
        raise ProposalError(f"the search over {name} keeps proposing evaluated points; {hint}")

    def _sampler(self, n_history: int) -> optuna.samplers.BaseSampler:
        seed = self.seed + n_history
        if self.sampler == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, constant_liar=True)


class LLMFamily:
    """An LLM-written module that declares its parameter space: ``name`` (``llm-<sha>`` of
    the code), ``code``, ``params`` (name -> ``ParamSpec``)."""

    def __init__(self, code: str, params: dict[str, Any]):
        self.name, self.code, self.params = llm_family_name(code), code, params

    def defaults(self) -> dict[str, Any]:
        return {name: spec.check(spec.default) for name, spec in self.params.items()}


def llm_family(context: DesignContext) -> LLMFamily | None:
    """The parent as an LLM family, when it is LLM-written code (not a built-in family)
    that declares a valid ``SPACE``; else None."""
    if context.parent_family in context.families or not context.parent_code:
        return None
    space = declared_space(context.parent_code)
    return LLMFamily(context.parent_code, space) if space else None


def family_trials(context: DesignContext, family: LLMFamily) -> list[Experiment]:
    """Past runs of ``family``'s module: the tuned ones (``base_family`` = its name) and
    the parent's own run (at the parent's params)."""
    parent_exp = context.parent.experiment_id if context.parent else None
    return [e for e in context.history
            if e.proposal.get("base_family") == family.name or (e.id == parent_exp and e.stage == "full")]


NEAR = 0.02
"""A near-best LLM module scores at least (1 - NEAR) x the parent's validation reward."""


def near_best_llm_family(context: DesignContext, code_for: Callable[[Experiment], "str | None"] | None
                         ) -> LLMFamily | None:
    """The best LLM-written module of ``context.best`` other than the parent that declares a
    valid ``SPACE`` and scores within ``NEAR`` of the parent; None without ``code_for``."""
    if code_for is None:
        return None
    floor = (context.parent_reward or 0.0) * (1 - NEAR)
    for exp in context.best:
        if exp.proposal.get("kind") != "code" or (exp.inner_reward or 0.0) < floor:
            continue
        try:
            code = code_for(exp)
        except Exception:  # a missing artifact: skip this one
            continue
        if code and code != context.parent_code and (space := declared_space(code)):
            return LLMFamily(code, space)
    return None
