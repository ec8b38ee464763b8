"""``agenticrs evolve``: alternate individual and compositional evolution of a pipeline.

Blueprint 4.3: given a composition, optimise its agents one at a time (*individual*
phases, each judged on the agent's own inner reward); when those gains saturate, or the
data drifted, explore new compositions (*compositional* phases); then resume local
refinement under the new wiring. Both phase kinds are the same ``DesignLoop`` on a
different subject: a component agent or the pipeline.

- **Adoption.** A component version promoted in an individual phase is re-scored inside
  the pipeline (the champion spec with the new version pinned, judged like any pipeline
  candidate). It is adopted only if that pipeline is promoted; one that gained inside but
  is significantly worse outside is recorded *misaligned* (both numbers), with an insight
  for the agent, and the pipeline keeps the old version.
- **Credit assignment** picks the component of the next individual phase: leave-one-out
  ablation of each source on the cached outputs (the outer reward's drop without it), plus
  its inner reward's gap to the best seen for its role; a component that has not had a
  phase for ``STARVE_AFTER`` phases goes first, so none is starved. The ranking and the
  reason are stored with the phase.
- **Switching.** A phase ends after ``patience`` iterations without a promotion
  (saturation) or when its time share is spent; after individual phases on two
  components (or one that saturated at once), a compositional phase follows.
- **Drift.** On a data set other than the one the champion was promoted on, the champion
  is re-scored first; a significant drop (unpaired z-test at 0.01) starts with a
  compositional phase.

Phases are rows in the knowledge base (kind, target, start/end, iterations, promotions,
why it started and why it ended): a killed run resumes in the phase it was in.
"""
from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, TYPE_CHECKING

import numpy as np

from designer.errors import DesignerError
from designer.events import Event, EventKind, EventSink
from designer.liveness import Heartbeat
from designer.loop import DesignLoop
from designer.parallel import run_parallel
from designer.pipelines.pool import PoolOption, recall_pool
from designer.pipelines.spec import PipelineSpec
from designer.promotion import align, compare
from designer.proposal import ChosenProposer, DesignContext, Proposal, ProposalError, ProposalKind, SessionStop
from designer.proposers.compose_search import CompositionSearchProposer
from designer.proposers.search import SearchProposer
from designer.subjects import PIPELINE_FAMILY, AgentSubject, PipelineSubject
from knowledge_base.errors import NotFoundError
from knowledge_base.models import AgentSpec, EvolvePhase, ExperimentStatus, PromotionState

if TYPE_CHECKING:
    from designer.executor import Executor
    from designer.release import Releaser
    from designer.settings import DesignSettings
    from designer.workspace import Workspace
    from knowledge_base.store import Store

log = logging.getLogger(__name__)

INDIVIDUAL, COMPOSITIONAL = "individual", "compositional"
STARVE_AFTER = 3          # phases after which a component that had none goes first
DRIFT_Z = -2.326          # one-sided z at 0.01


@dataclass
class EvolveSummary:
    run_id: str
    pipeline: str
    dataset_key: str
    phases: list[dict[str, Any]] = field(default_factory=list)
    iterations: int = 0
    adopted: list[str] = field(default_factory=list)
    misaligned: list[dict[str, Any]] = field(default_factory=list)
    champion: str = ""
    baseline_outer: float | None = None
    champion_outer: float | None = None
    stopped_reason: str = ""
    elapsed_seconds: float = 0.0


class PhaseProposers(Protocol):
    """What proposes in each phase: ``agent`` in an individual phase on that component agent,
    ``pipeline`` in a compositional one over the recall ``pool``. ``evolve --proposer llm``
    gives both one LLM client and one budget for the whole run."""

    def agent(self, agent: str, seed: int) -> ChosenProposer: ...

    def pipeline(self, pool: list[PoolOption], seed: int) -> ChosenProposer: ...

    def spent(self) -> str | None:
        """Why no phase may propose any more (the run's LLM budget is spent), else None."""


class SearchPhaseProposers:
    """Search in every phase (``--proposer search``): works offline."""

    def __init__(self, store: Store):
        self.store = store

    def agent(self, agent: str, seed: int) -> ChosenProposer:
        return ChosenProposer(SearchProposer(seed=seed, code_for=lambda exp: self.store.get_code(exp.code_hash)),
                              uuid.uuid4().hex[:12])

    def pipeline(self, pool: list[PoolOption], seed: int) -> ChosenProposer:
        return ChosenProposer(CompositionSearchProposer(pool, seed=seed), uuid.uuid4().hex[:12])

    def spent(self) -> str | None:
        return None


class _Fixed:
    """A one-shot proposer: the adoption candidate (the champion spec with a new component)."""

    name = "evolve"

    def __init__(self, spec: PipelineSpec, rationale: str):
        self.spec, self.rationale, self.used = spec, rationale, False

    def propose(self, context: DesignContext) -> Proposal:
        if self.used:
            raise ProposalError("the adoption candidate was proposed already")
        self.used = True
        return Proposal(proposer=self.name, kind=ProposalKind.PARAMS, family=PIPELINE_FAMILY,
                        params=self.spec.to_dict(), rationale=self.rationale, meta={"adoption": True})


class Evolver:
    """See the module docstring. ``make_loop(agent, chosen, subject)`` builds a
    ``DesignLoop`` wired like ``design``'s (store, executor, releaser, settings, events) for
    a ``ChosenProposer``; ``proposers``: what proposes in each phase (default: search)."""

    def __init__(self, *, store: Store, releaser: Releaser, families: dict[str, Any], executor: Executor,
                 settings: DesignSettings, workspace: Workspace, pipeline: str, make_loop: Callable[..., DesignLoop], patience: int = 4,
                 pool_names: tuple[str, ...] | None = None, on_event: EventSink | None = None,
                 clock: Callable[[], float] = time.monotonic, workers: int = 1,
                 proposers: PhaseProposers | None = None):
        self.store, self.releaser, self.families, self.executor = store, releaser, families, executor
        self.settings, self.workspace, self.pipeline = settings, workspace, pipeline
        self.make_loop, self.patience, self.pool_names = make_loop, max(1, patience), pool_names
        self.on_event, self.clock = on_event or (lambda e: None), clock
        self.workers = max(1, workers)
        self.proposers = proposers or SearchPhaseProposers(store)
        self.dataset_key = executor.dataset_key
        self.subject = PipelineSubject(store=store, repo=releaser.repo, families=families)
        self.summary = EvolveSummary(uuid.uuid4().hex[:12], pipeline, self.dataset_key)
        self.current: EvolvePhase | None = None   # the phase running now

    # ---- the run ------------------------------------------------------------------------

    def run(self, iterations: int | None = None, budget_seconds: float | None = None) -> EvolveSummary:
        start = self.clock()
        self.deadline = None if budget_seconds is None else start + budget_seconds
        self.budget_seconds, self.total_iterations = budget_seconds, iterations
        pipe_loop = self._pipeline_loop(None)      # to resume the pipeline's sessions and score its champion
        with Heartbeat(self.store, self.summary.run_id, self.pipeline):
            pipe_loop.resume()
            self.summary.baseline_outer = pipe_loop.incumbent().experiment.inner_reward
        try:
            phase = self._resumed_phase() or self._drift_phase() or self._next_phase()
            while phase is not None:
                reason = self._run_phase(phase)
                self._close(phase, reason)
                if (stop := self._stop_reason()) is not None:
                    self.summary.stopped_reason = stop
                    break
                phase = self._next_phase()
        except KeyboardInterrupt:
            self.summary.stopped_reason = "stopped by the user (Ctrl-C) at a step boundary"
            for open_phase in self._open_phases():
                self._close(open_phase, self.summary.stopped_reason)
        except SessionStop as e:
            self.summary.stopped_reason = str(e) or "stopped"
            for open_phase in self._open_phases():
                self._close(open_phase, self.summary.stopped_reason)
        champion = self.store.champion(self.pipeline)
        self.summary.champion = champion.tag if champion else ""
        self.summary.champion_outer = self._pipeline_loop(None).incumbent().experiment.inner_reward
        rid = self.summary.run_id
        self.summary.phases = [phase_json(p) for p in self.store.list_phases(self.pipeline)
                               if p.run_id == rid or (p.data or {}).get("resumed_by") == rid]
        self.summary.elapsed_seconds = self.clock() - start
        return self.summary

    def request_stop(self, why: str) -> None:
        """Stop at the next step boundary (a signal handler calls this)."""
        self.stop_requested = why

    def _stop_reason(self) -> str | None:
        if getattr(self, "stop_requested", None):
            return self.stop_requested
        if (spent := self.proposers.spent()) is not None:
            return spent
        if self.total_iterations is not None and self.summary.iterations >= self.total_iterations:
            return "iterations done"
        if self.deadline is not None and self.clock() >= self.deadline:
            return "time budget spent"
        return None

    # ---- choosing phases ----------------------------------------------------------------

    def _open_phases(self) -> list[EvolvePhase]:
        return [p for p in self.store.list_phases(self.pipeline) if p.ended_at is None]

    def _resumed_phase(self) -> EvolvePhase | None:
        """A phase a killed run left open continues, in this run, where it was."""
        open_phases = self._open_phases()
        for extra in open_phases[:-1]:
            self._close(extra, "superseded by a later open phase (a killed run)")
        if not open_phases:
            return None
        phase = open_phases[-1]
        self._emit(EventKind.RESUMED, f"resuming the {phase.kind} phase on {phase.target} "
                   f"(phase {phase.id}, {phase.iterations} iteration(s) done) of an interrupted evolve run")
        self.current = self.store.update_phase(phase.id, data={"resumed_by": self.summary.run_id})
        return self.current

    def _drift_phase(self) -> EvolvePhase | None:
        """Re-score the champion here; a significant drop from where it was promoted: drift."""
        champion = self.store.champion(self.pipeline)
        if champion is None or champion.experiment_id is None:
            return None
        origin = self.store.get_experiment(champion.experiment_id)
        if origin.dataset_key == self.dataset_key:
            return None
        now = self._pipeline_loop(None).incumbent()
        _, before = self.store.get_user_scores(origin.id)
        after = now.rewards
        se = math.sqrt(before.var(ddof=1) / len(before) + after.var(ddof=1) / len(after)) if min(len(before), len(after)) > 1 else 0.0
        z = (after.mean() - before.mean()) / se if se > 0 else 0.0
        metric = self.store.get_agent(self.pipeline).inner_reward
        text = (f"champion {champion.tag}: val {metric} {before.mean():.4f} on {origin.dataset_key}, "
                f"{after.mean():.4f} on {self.dataset_key} (z={z:.2f})")
        if z > DRIFT_Z:
            self._emit(EventKind.BASELINE, f"no drift: {text}")
            return None
        self._emit(EventKind.BASELINE, f"drift: {text}: conditions shifted, exploring compositions first")
        return self._start(COMPOSITIONAL, self.pipeline, f"drift: {text}",
                           {"drift": {"before": float(before.mean()), "after": float(after.mean()), "z": float(z),
                                      "from": origin.dataset_key}})

    def _next_phase(self) -> EvolvePhase | None:
        if self._stop_reason() is not None:
            return None
        done = self.store.list_phases(self.pipeline)
        since = []
        for phase in reversed(done):
            if phase.kind == COMPOSITIONAL:
                break
            since.append(phase)
        # (with N workers a saturated phase may have run N - 1 more candidates that were in flight)
        saturated_at_once = since and since[0].promotions == 0 and since[0].iterations <= self.patience + self.workers - 1
        if len(since) >= 2 or (since and saturated_at_once and len(self._components()) < 2):
            return self._start(COMPOSITIONAL, self.pipeline,
                               f"individual phases on {', '.join(p.target for p in reversed(since))} done; "
                               "exploring compositions")
        ranked = self._credit(done)
        if not ranked:
            return self._start(COMPOSITIONAL, self.pipeline, "the pipeline has no component agent to refine")
        recent = {p.target for p in since[:1]}
        choice = next((r for r in ranked if r["agent"] not in recent), ranked[0])
        return self._start(INDIVIDUAL, choice["agent"], choice["reason"], {"credit": ranked})

    def _components(self) -> list[dict[str, Any]]:
        """The champion's recall sources as (branch, slot, component) with an agent to evolve:
        a pinned agent, or a family source given its own agent (``<pipeline>-<family>``)."""
        spec = self._champion_spec()
        out = []
        for b, branch in enumerate(spec.branches):
            for j, source in enumerate(branch.sources):
                out.append({"branch": b, "slot": j, "source": source,
                            "agent": source.agent or f"{self.pipeline}-{source.family}"})
        return out

    def _credit(self, done: list[EvolvePhase]) -> list[dict[str, Any]]:
        """Components ranked by credit (see the module docstring), each with its reason."""
        spec = self._champion_spec()
        champion = self._pipeline_loop(None).incumbent()
        outer = float(champion.rewards.mean())
        rows = []
        for c in self._components():
            branch = spec.branches[c["branch"]]
            drop = None
            if len(branch.sources) > 1:
                ablated = self._without(spec, c["branch"], c["slot"])
                score = self._score_spec(ablated, f"ablation-{c['branch']}-{c['slot']}")
                drop = None if score is None else outer - score
            last = max((i for i, p in enumerate(done) if p.target == c["agent"]), default=None)
            waited = len(done) - 1 - last if last is not None else len(done)
            gap = self._headroom(c)
            starved = last is None and len(done) >= STARVE_AFTER or (last is not None and waited >= STARVE_AFTER)
            value = (drop or 0.0) + (gap or 0.0) + (1.0 if starved else 0.0)
            parts = [f"leave-one-out drop {drop:+.4f}" if drop is not None else "sole source (no ablation)",
                     f"inner headroom {gap:.4f}" if gap is not None else "inner headroom unknown",
                     f"{waited} phase(s) since its last" if last is not None else "never refined"]
            if starved:
                parts.append("waited too long: goes first")
            rows.append({"agent": c["agent"], "source": c["source"].ref, "drop": drop, "headroom": gap,
                         "starved": starved, "value": value,
                         "reason": f"credit for {c['agent']} ({c['source'].ref}): " + ", ".join(parts)})
        return sorted(rows, key=lambda r: -r["value"])

    def _headroom(self, component: dict[str, Any]) -> float | None:
        """The best validation inner reward seen for any recommender on this data set minus
        this component's own (None when it was never scored alone here)."""
        source = component["source"]
        best, mine = None, None
        for agent in self.store.list_agents():
            if agent.role != "recommender":
                continue
            for exp in self.store.list_experiments(agent_name=agent.name, dataset_key=self.dataset_key, stage="full",
                                                   status=ExperimentStatus.COMPLETED, limit=10_000):
                if exp.inner_reward is None:
                    continue
                best = exp.inner_reward if best is None else max(best, exp.inner_reward)
                if agent.name == component["agent"] and exp.proposer == "baseline":
                    mine = exp.inner_reward
                elif source.family and exp.family == source.family and exp.params == source.params:
                    mine = exp.inner_reward
        return None if best is None or mine is None else max(0.0, best - mine)

    # ---- running phases -----------------------------------------------------------------

    def _start(self, kind: str, target: str, reason: str, data: dict[str, Any] | None = None) -> EvolvePhase:
        phase = self.store.start_phase(self.summary.run_id, self.pipeline, kind, target, "(running)",
                                       {**(data or {}), "started_because": reason})
        self.current = phase
        self._emit(EventKind.PHASE, f"phase {phase.id} starts: {kind} on {target} ({reason})")
        return phase

    def _close(self, phase: EvolvePhase, reason: str) -> None:
        self.store.update_phase(phase.id, ended=True, reason=reason)
        self._emit(EventKind.PHASE, f"phase {phase.id} ({phase.kind} on {phase.target}) ended: {reason}")

    def _phase_limit(self, kind: str) -> tuple[int | None, float | None]:
        """(iterations, seconds) a phase may take at most."""
        its = None if self.total_iterations is None else max(2, self.total_iterations // 3)
        share = 0.4 if kind == COMPOSITIONAL else 0.3
        secs = None if self.budget_seconds is None else self.budget_seconds * share
        return its, secs

    def _run_phase(self, phase: EvolvePhase) -> str:
        if phase.kind == INDIVIDUAL:
            loop = self._agent_loop(phase.target)
        else:
            loop = self._pipeline_loop(self.proposers.pipeline(self._pool(), self.settings.seed + phase.id))
        max_its, max_secs = self._phase_limit(phase.kind)
        started, quiet, its, promotions = self.clock(), 0, phase.iterations, phase.promotions
        with Heartbeat(self.store, loop.session_id, loop.agent.name):
            loop.resume()
            loop.incumbent()
            if self.workers > 1:
                return self._run_phase_parallel(phase, loop, max_its, max_secs, started)
            while True:
                if (stop := self._stop_reason()) is not None:
                    return stop
                if max_its is not None and its - phase.iterations >= max_its:
                    return f"its share of iterations ({max_its}) spent"
                if max_secs is not None and self.clock() - started >= max_secs:
                    return f"its time share ({max_secs:.0f} s) spent"
                approved = len(loop.summary.approved)
                loop.step()
                its += 1
                self.summary.iterations += 1
                gained = len(loop.summary.approved) > approved
                if gained:
                    promotions += 1
                    quiet = 0
                    if phase.kind == INDIVIDUAL:
                        self._adopt(phase, loop.summary.approved[-1])
                else:
                    quiet += 1
                self.store.update_phase(phase.id, iterations=its, promotions=promotions)
                if loop.session_stop is not None:
                    return loop.session_stop
                if quiet >= self.patience:
                    return f"saturated: {quiet} iterations without a promotion"

    def _run_phase_parallel(self, phase: EvolvePhase, loop: DesignLoop, max_its: int | None,
                            max_secs: float | None, started: float) -> str:
        """The phase with ``workers`` candidates in flight (``designer.parallel``): the same
        limits, adoption and saturation as the serial phase, checked before each proposal.
        Saturation counts proposals since the last promotion, allowing the ``workers - 1``
        that may still be in flight when the last one was judged."""
        loop.workers = self.workers
        first_total = self.summary.iterations
        state = {"seen": len(loop.summary.approved), "promotions": phase.promotions, "since": 0}

        def bookkeeping() -> int:
            while state["seen"] < len(loop.summary.approved):
                tag = loop.summary.approved[state["seen"]]
                state["seen"] += 1
                state["promotions"] += 1
                state["since"] = loop.summary.iterations
                if phase.kind == INDIVIDUAL:
                    self._adopt(phase, tag)
            done = loop.summary.iterations
            self.summary.iterations = first_total + done
            self.store.update_phase(phase.id, iterations=phase.iterations + done, promotions=state["promotions"])
            return done

        def stop_reason() -> str | None:
            done = bookkeeping()
            if (stop := loop.session_stop or self._stop_reason()) is not None:
                return stop
            if max_its is not None and done >= max_its:
                return f"its share of iterations ({max_its}) spent"
            if max_secs is not None and self.clock() - started >= max_secs:
                return f"its time share ({max_secs:.0f} s) spent"
            quiet = done - state["since"] - (self.workers - 1)
            if quiet >= self.patience:
                return f"saturated: {quiet} iterations without a promotion"
            return None

        reason = run_parallel(loop, self.workers, stop_reason)
        bookkeeping()      # what the candidates still in flight at the stop promoted
        return reason

    def _adopt(self, phase: EvolvePhase, tag: str) -> None:
        """Re-score a promoted component inside the pipeline; adopt it only if the pipeline
        with it is promoted; record a misalignment when it is significantly worse there."""
        agent, number = tag.rsplit("/v", 1)
        spec = self._champion_spec()
        new = self._with_version(spec, agent, int(number))
        if new is None:
            return
        inner = self._inner_pair(agent, int(number))
        loop = self._pipeline_loop(ChosenProposer(_Fixed(new, f"adopt {tag} (promoted in phase {phase.id})"),
                                                  uuid.uuid4().hex[:12]))
        before = loop.incumbent()
        loop.step()
        exp = self._adoption_experiment(loop)
        if exp is None:
            return
        adopted = exp.promotion in (PromotionState.APPROVED, PromotionState.PENDING_REVIEW)
        users, rewards = self.store.get_user_scores(exp.id) if exp.status is ExperimentStatus.COMPLETED else (None, None)
        outer_before = float(before.rewards.mean())
        outer_after = exp.inner_reward
        worse = False
        if users is not None:
            mine, theirs = align(users, rewards, before.user_ids, before.rewards)
            test = compare(theirs, mine, self.settings.promotion, seed=self.settings.seed, alpha=0.05)
            worse = bool(test.effect > 0 and test.p_value <= 0.05)
        record = {"component": tag, "experiment": exp.id, "inner_before": inner[0], "inner_after": inner[1],
                  "outer_before": outer_before, "outer_after": outer_after, "adopted": adopted,
                  "misaligned": bool(worse and not adopted)}
        current = next(p for p in self.store.list_phases(self.pipeline) if p.id == phase.id)
        self.store.update_phase(phase.id, data={"adoptions": [*(current.data or {}).get("adoptions", []), record]})
        metric = self.store.get_agent(self.pipeline).inner_reward
        if adopted:
            self.summary.adopted.append(tag)
            self._emit(EventKind.APPROVED, f"{tag} adopted by {self.pipeline}: val {metric} {outer_before:.4f} -> "
                       f"{outer_after:.4f}")
        elif record["misaligned"]:
            self.summary.misaligned.append(record)
            text = (f"{tag} misaligned: its inner reward rose ({_f(inner[0])} -> {_f(inner[1])}) but the pipeline's "
                    f"val {metric} fell significantly ({outer_before:.4f} -> {_f(outer_after)}); {self.pipeline} keeps "
                    f"the old version")
            self.store.add_insight(agent, text, {"evolve_run": self.summary.run_id, "experiment": exp.id})
            self.store.add_insight(self.pipeline, text, {"evolve_run": self.summary.run_id, "experiment": exp.id})
            self._emit(EventKind.NOT_CONFIRMED, text)
        else:
            self._emit(EventKind.FINISHED, f"{tag} not adopted by {self.pipeline}: val {metric} {outer_before:.4f} -> "
                       f"{_f(outer_after)} is no significant gain")

    def _adoption_experiment(self, loop: DesignLoop):
        """The adoption candidate's full-stage run, else its cheap one (screened out)."""
        found = self.store.list_experiments(agent_name=self.pipeline, dataset_key=self.dataset_key, limit=10)
        mine = [e for e in found if e.session_id == loop.session_id and e.proposer == "evolve"
                and e.stage in ("full", "cheap")]
        return next((e for e in mine if e.stage == "full"), mine[0] if mine else None)

    def _inner_pair(self, agent: str, number: int) -> tuple[float | None, float | None]:
        versions = {v.number: v for v in self.store.list_versions(agent)}
        new = versions.get(number)
        old = versions.get(number - 1) if number > 1 else None

        def score(v):
            if v is None:
                return None
            if v.experiment_id:
                return self.store.get_experiment(v.experiment_id).inner_reward
            runs = [e for e in self.store.list_experiments(agent_name=agent, stage="full", limit=1000)
                    if e.proposer == "baseline" and e.parent_version_id == v.id and e.inner_reward is not None]
            return runs[0].inner_reward if runs else None
        return score(old), score(new)

    # ---- specs --------------------------------------------------------------------------

    def _champion_spec(self) -> PipelineSpec:
        champion = self.store.champion(self.pipeline)
        if champion is None:
            raise DesignerError(f"pipeline {self.pipeline} has no version: run `agenticrs init`")
        return PipelineSpec.from_yaml(self.releaser.repo.read_version(self.pipeline, champion.number).code)

    def _with_version(self, spec: PipelineSpec, agent: str, number: int) -> PipelineSpec | None:
        """``spec`` with every source evolved as ``agent`` pinned at version ``number``."""
        raw, changed = spec.to_dict(), False
        for branch in raw["branches"]:
            for j, source in enumerate(branch["sources"]):
                if (source.get("agent") or f"{self.pipeline}-{source.get('family')}") == agent:
                    branch["sources"][j] = {"agent": agent, "version": number, "quota": source.get("quota", 100)}
                    changed = True
        return PipelineSpec.from_dict(raw) if changed else None

    @staticmethod
    def _without(spec: PipelineSpec, b: int, j: int) -> PipelineSpec:
        raw = spec.to_dict()
        raw["branches"][b]["sources"].pop(j)
        params = raw["branches"][b]["ranker"].get("params", {})
        weights = [params.pop(f"w{i}") for i in range(8) if f"w{i}" in params]
        if weights:
            weights.pop(j) if j < len(weights) else None
            params.update({f"w{i}": w for i, w in enumerate(weights)})
        return PipelineSpec.from_dict(raw)

    def _score_spec(self, spec: PipelineSpec, name: str) -> float | None:
        """Validation outer reward of ``spec`` (sources from the cache): for credit only."""
        job = self.subject.job(spec.to_yaml(), spec.to_dict(), stage="validation", k=self.settings.k,
                               seed=self.settings.seed, limits=self.settings.limits,
                               inner_reward=spec.outer_reward.objective)
        result = self.executor.evaluate(job, Path(self.workspace.cache_dir) / "ablations" / self.summary.run_id / name)
        return result.inner_reward if result.outcome.value == "COMPLETED" else None

    # ---- loops --------------------------------------------------------------------------

    def _pool(self):
        return recall_pool(self.store, self.families, self.dataset_key, self.pool_names)

    def _pipeline_loop(self, chosen: ChosenProposer | None) -> DesignLoop:
        return self.make_loop(self.pipeline, chosen or ChosenProposer(None, uuid.uuid4().hex[:12]), self.subject)

    def _agent_loop(self, agent: str) -> DesignLoop:
        self._ensure_agent(agent)
        return self.make_loop(agent, self.proposers.agent(agent, self.settings.seed), AgentSubject(self.families))

    def _ensure_agent(self, agent: str) -> None:
        """A family source gets an agent of its own (v1 = that family and params) to evolve."""
        try:
            self.store.get_agent(agent)
            return
        except NotFoundError:
            pass
        source = next(c["source"] for c in self._components() if c["agent"] == agent)
        family = self.families[source.family]
        params = family.validate(source.params)
        space = {p: spec.model_dump(mode="json") for p, spec in family.params.items()}
        self.store.upsert_agent(AgentSpec(name=agent, role="recommender", family=source.family,
                                          description=f"recall source {source.family} of pipeline {self.pipeline}",
                                          interface=self.store.get_agent("recommender").interface,
                                          inner_reward="ndcg@10", parameter_space=space))
        self.releaser.publish_initial(agent, source.family, params, family.render(params))

    def _emit(self, kind: EventKind, message: str) -> None:
        self.on_event(Event(kind=kind, iteration=self.summary.iterations, message=message))



def phase_json(p: EvolvePhase) -> dict[str, Any]:
    """A phase for people and JSON: what it refined, why it started and ended, adoptions."""
    data = p.data or {}
    return {"id": p.id, "run": p.run_id, "kind": p.kind, "target": p.target, "iterations": p.iterations,
            "promotions": p.promotions, "started_because": data.get("started_because", ""),
            "ended_because": p.reason if p.ended_at is not None else None,
            "started_at": p.started_at, "ended_at": p.ended_at,
            "adoptions": data.get("adoptions", []), "credit": data.get("credit", [])}


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
