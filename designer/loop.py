"""The design loop: one ``step()`` = parent -> context -> proposal -> candidate ->
cascade evaluation in the sandbox -> knowledge base -> promotion (-> git version).

Collaborators (store, proposer, executor, releaser, clock) are injected; progress leaves
as ``Event``s. Failures of generated code are data (experiment + failure rows), never
exceptions that escape the loop.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TYPE_CHECKING

import numpy as np

from designer.context import build_context
from designer.errors import DesignerError
from designer.families import FamilyError
from designer.events import Event, EventKind, EventSink
from designer.failures import STATUS_OF, classify_failure
from designer.judging import JudgingMixin
from designer.liveness import Heartbeat
from designer.parallel import run_parallel
from designer.promotion import align
from designer.proposal import Candidate, Proposal, ProposalError, ProposalKind, SessionStop
from designer.release import Releaser
from designer.settings import DesignSettings
from designer.subjects import AgentSubject, Subject
from designer.workspace import Workspace
from knowledge_base.models import (AgentVersion, Experiment, ExperimentDraft, ExperimentResult,
                                   ExperimentStatus, FailureDraft, FailureKind, PromotionState)
from sandbox.evaluation import EvaluationResult
from sandbox.outcome import Outcome

if TYPE_CHECKING:
    from designer.executor import Executor
    from designer.proposal import Proposer
    from knowledge_base.store import Store

log = logging.getLogger(__name__)

@dataclass
class Incumbent:
    """What candidates are compared with: the champion ``version`` and the run whose per-user
    ``rewards`` they must beat (the champion's own, or a pending winner's: ``provisional``)."""

    version: AgentVersion
    code: str
    experiment: Experiment
    user_ids: np.ndarray
    rewards: np.ndarray
    provisional: bool = False


@dataclass
class SessionSummary:
    session_id: str
    agent: str
    dataset_key: str
    iterations: int = 0
    evaluated: int = 0
    failed: int = 0
    screened_out: int = 0
    duplicates: int = 0
    promoted: list[int] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    baseline_reward: float | None = None
    best_reward: float | None = None
    best_experiment_id: int | None = None
    stopped_reason: str = ""
    elapsed_seconds: float = 0.0


class DesignLoop(JudgingMixin):
    """Individual evolution of one agent on one data set."""

    def __init__(self, *, store: Store, proposer: Proposer | None, executor: Executor, releaser: Releaser,
                 families: dict[str, Any], agent_name: str, settings: DesignSettings,
                 workspace: Workspace, auto_approve: bool = False, session_id: str | None = None,
                 on_event: EventSink | None = None, clock: Callable[[], float] = time.monotonic,
                 static_check: Callable[[str], list[str]] | None = None,
                 insights: Callable[[Any], str] | None = None, insight_every: int = 5,
                 parent_policy: str = "best", epsilon: float = 0.2, subject: Subject | None = None):
        self.store, self.proposer, self.executor, self.releaser = store, proposer, executor, releaser
        self.subject: Subject = subject or AgentSubject(families)
        self.families, self.settings, self.workspace = families, settings, workspace
        self.agent = store.get_agent(agent_name)
        self.auto_approve = auto_approve
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.on_event, self.clock, self.static_check = on_event or (lambda e: None), clock, static_check
        self.insights, self.insight_every = insights, insight_every
        if parent_policy not in ("best", "epsilon"):
            raise DesignerError(f"unknown parent policy {parent_policy!r}: use best or epsilon")
        self.parent_policy, self.epsilon = parent_policy, epsilon
        self.rng = random.Random(settings.seed)
        self.dataset_key = executor.dataset_key
        self.summary = SessionSummary(self.session_id, agent_name, self.dataset_key)
        self.iteration = 0
        self.workers = 1
        self.session_stop: str | None = None    # why the insight writer asked to stop (after its step)
        self._incumbent: Incumbent | None = None
        self._codes: dict[tuple[int, int, str], str] = {}

    # ---- session ------------------------------------------------------------------------

    def run(self, iterations: int | None = None, time_budget: float | None = None,
            workers: int = 1) -> SessionSummary:
        """Run steps until ``iterations`` proposals or ``time_budget`` seconds; resumable.

        ``workers > 1`` keeps that many candidates in flight (``designer.parallel``): each
        evaluation in its own sandbox slot, judged one at a time as it completes. While it
        runs, the session heartbeats (``designer.liveness``): other processes sharing the
        knowledge base never mark its runs INTERRUPTED.
        """
        with Heartbeat(self.store, self.session_id, self.agent.name):
            return self._run(iterations, time_budget, workers)

    def _run(self, iterations: int | None, time_budget: float | None, workers: int) -> SessionSummary:
        start = self.clock()
        self.workers = max(1, workers)
        self._emit(EventKind.STARTED, f"design session {self.session_id} for {self.agent.name} on {self.dataset_key}")
        self.resume()
        incumbent = self.incumbent()
        self.summary.baseline_reward = incumbent.experiment.inner_reward
        self._track_best(incumbent.experiment)

        def stop_reason() -> str | None:
            if self.session_stop is not None:
                return self.session_stop
            if iterations is not None and self.summary.iterations >= iterations:
                return "iterations done"
            if time_budget is not None and self.clock() - start >= time_budget:
                return "time budget spent"
            return None
        reason = self._serial(stop_reason) if self.workers == 1 else run_parallel(self, self.workers, stop_reason)
        self.summary.stopped_reason = reason
        self.summary.elapsed_seconds = self.clock() - start
        self._emit(EventKind.STOPPED, f"stopped: {reason}", reward=self.summary.best_reward)
        return self.summary

    def _serial(self, stop_reason: Callable[[], str | None]) -> str:
        while (reason := stop_reason()) is None:
            try:
                self.step()
            except SessionStop as e:
                return str(e) or type(e).__name__
        return reason

    def resume(self) -> None:
        """Mark experiments of dead sessions INTERRUPTED; finish promotions they left half done."""
        interrupted = self.store.interrupt_running(self.agent.name, exclude_session=self.session_id)
        if interrupted:
            self._emit(EventKind.RESUMED, f"{len(interrupted)} experiment(s) of an interrupted session "
                       f"marked INTERRUPTED: {interrupted}")
        self.releaser.reconcile(self.agent.name)
        self._judge_leftovers()
        for exp in self.store.list_experiments(agent_name=self.agent.name, promotion=PromotionState.PENDING_REVIEW,
                                               dataset_key=self.dataset_key, limit=100):
            if not self.verdict(exp):
                exp = self.seal_test(exp)
            if exp.proposal.get("auto_approve"):
                self._release(exp)

    def _judge_leftovers(self) -> None:
        """Judge full-stage runs that finished but whose session died before judging them
        (a live session, e.g. another machine's on a shared knowledge base, judges its own)."""
        live = {s.session_id for s in self.store.live_sessions(self.agent.name)} - {self.session_id}
        for exp in self.store.list_experiments(agent_name=self.agent.name, dataset_key=self.dataset_key,
                                               status=ExperimentStatus.COMPLETED, promotion=PromotionState.NONE,
                                               stage="full", limit=100):
            if exp.proposer == "baseline" or exp.session_id in live or not self._has_scores(exp):
                continue
            incumbent = self.incumbent()
            if exp.parent_version_id == incumbent.version.id:
                self._judge(exp, incumbent)

    # ---- one step -----------------------------------------------------------------------

    def step(self) -> None:
        """One proposal, evaluated through the cascade and judged for promotion."""
        ready = self.prepare()
        if ready is None:
            return
        full = self.evaluate(*ready)
        if full is not None:
            self.judge(full)
        self._maybe_summarise(ready[1])

    def prepare(self, pending: Sequence[Candidate] = ()) -> tuple[Candidate, Incumbent] | None:
        """The proposing part of a step: a checked candidate and the incumbent it starts from,
        or None when the proposal failed, duplicates an evaluated or ``pending`` (in-flight)
        candidate, or failed the static checks (all recorded)."""
        self.iteration += 1
        self.summary.iterations += 1
        incumbent = self.incumbent()
        bar = self.bar()
        started = self.clock()
        try:
            proposal = self.proposer.propose(self._context(incumbent, pending))
            proposal = proposal.model_copy(update={"meta": {**proposal.meta,
                                                            "propose_seconds": round(self.clock() - started, 3)}})
        except ProposalError as e:
            self._record_failure(None, FailureKind.PROPOSAL, str(e), "")
            self._emit(EventKind.PROPOSAL_FAILED, f"proposal failed: {e}")
            return None
        try:
            candidate = self.make_candidate(proposal)
        except (FamilyError, KeyError) as e:
            self._record_failure(None, FailureKind.PROPOSAL, f"unusable proposal: {e}", "")
            self._emit(EventKind.PROPOSAL_FAILED, f"proposal failed: {e}")
            return None
        self._emit(EventKind.PROPOSED, f"{proposal.kind.value}: {proposal.family} {proposal.rationale}",
                   data={"params": candidate.params})
        in_flight = {c.content_hash for c in pending}
        if candidate.content_hash in in_flight or self._already_evaluated(candidate):
            self.summary.duplicates += 1
            self._emit(EventKind.DUPLICATE, f"candidate {candidate.content_hash[:10]} already evaluated")
            return None
        if (problems := self._static_problems(candidate)):
            self._reject_static(candidate, incumbent, problems)
            return None
        return candidate, bar

    def evaluate(self, candidate: Candidate, incumbent: Incumbent) -> Experiment | None:
        """The cascade: cheap stage, screen against ``incumbent``, full stage. The full-stage
        experiment, or None. Safe on worker threads (it writes only its own experiments)."""
        cheap = self._run_stage(candidate, incumbent, "cheap")
        if cheap is None or not self._passes_screen(cheap, incumbent):
            return None
        return self._run_stage(candidate, incumbent, "full", parent_experiment=cheap)

    def judge(self, full: Experiment) -> None:
        """Judge ``full`` against the champion *now*: with several workers (or another
        process) it may have changed since the candidate was proposed."""
        incumbent = self.bar()
        if full.parent_version_id != incumbent.version.id:
            full = self.store.set_parent(full.id, incumbent.version.id, incumbent.experiment.id)
        self._judge(full, incumbent)

    def bar(self) -> Incumbent:
        """What a candidate must beat now. The champion; without auto-approval, the best
        candidate waiting for review against it (the *provisional incumbent*, not vetoed by
        its sealed test) when it scores higher: later candidates must beat that one, so the
        review queue does not fill with candidates that only beat the old champion.
        Confirmation and the sealed test still compare with the champion itself."""
        champion = self.incumbent()
        if self.auto_approve:
            return champion
        waiting = [e for e in self.store.list_experiments(
                       agent_name=self.agent.name, promotion=PromotionState.PENDING_REVIEW,
                       dataset_key=self.dataset_key, stage="full", limit=200)
                   if e.parent_version_id == champion.version.id and e.inner_reward is not None
                   and not self.verdict(e).get("vetoed") and self._has_scores(e)]
        best = max(waiting, key=lambda e: (e.inner_reward, -e.id), default=None)
        if best is None or best.inner_reward <= (champion.experiment.inner_reward or 0.0):
            return champion
        users, rewards = self.store.get_user_scores(best.id)
        return Incumbent(champion.version, champion.code, best, users, rewards, provisional=True)

    def _maybe_summarise(self, incumbent: Incumbent) -> None:
        """Every ``insight_every`` iterations, store what worked and failed as an insight."""
        if self.insights is None or self.summary.iterations % self.insight_every:
            return
        try:
            text = self.insights(self._context(incumbent))
        except SessionStop as e:   # e.g. the LLM budget: the step is done (judged, released); stop before the next
            self.session_stop = str(e) or type(e).__name__
            return
        except DesignerError as e:
            log.warning("no insight this time: %s", e)
            return
        if text.strip():
            self.store.add_insight(self.agent.name, text.strip(), {"session": self.session_id,
                                                                   "iteration": self.iteration})
            self._emit(EventKind.INSIGHT, f"insight stored: {text.strip()[:120]}")

    def make_candidate(self, proposal: Proposal) -> Candidate:
        """The subject's candidate: a rendered family or an LLM's module; a pipeline spec."""
        return self.subject.make_candidate(proposal)

    # ---- incumbent and context -----------------------------------------------------------

    def incumbent(self) -> Incumbent:
        """The champion with its per-user rewards on this data set (scored once if needed).

        The champion row is read each call (another process may replace it); the rest is
        kept while that row is unchanged: a version's code and a completed run are immutable.
        """
        version = self.store.champion(self.agent.name)
        if version is None:
            raise DesignerError(f"agent {self.agent.name} has no version: run `agenticrs init`")
        if self._incumbent is not None and self._incumbent.version == version:
            return self._incumbent
        code = self.version_code(version)
        candidate = self.champion_candidate(version, code)
        exp = self.store.find_experiment(self.agent.name, self.dataset_key, candidate.content_hash, "full")
        if exp is not None and not self._has_scores(exp):
            exp = None  # scored by a version of this program that was killed mid-write
        if exp is None or exp.status is not ExperimentStatus.COMPLETED:
            exp = self._run_stage(candidate, None, "full", version=version)
            if exp is None:
                raise DesignerError(f"the champion {version.tag} fails on {self.dataset_key}: see "
                                    "`agenticrs history --status FAILED`; roll back or fix the agent")
            self._emit(EventKind.BASELINE, f"champion {version.tag} scores val {self._metric()} {exp.inner_reward:.4f}",
                       experiment_id=exp.id, reward=exp.inner_reward)
        users, rewards = self.store.get_user_scores(exp.id)
        users.setflags(write=False)
        rewards.setflags(write=False)   # shared by every caller until the champion changes
        self._incumbent = Incumbent(version, code, exp, users, rewards)
        return self._incumbent

    def version_code(self, version: AgentVersion) -> str:
        """The code of ``version`` in the agents repository (read once per version)."""
        key = (version.id, version.number, version.git_sha)
        if key not in self._codes:
            self._codes[key] = self.releaser.repo.read_version(self.agent.name, version.number).code
        return self._codes[key]

    def pick_base(self, incumbent: Incumbent) -> tuple[AgentVersion, str, float | None]:
        """The version proposals start from: the champion, or (``epsilon`` policy, with
        probability ``epsilon``) the winner of a 2-way tournament among the top versions.

        Candidates are always judged against the champion, whatever they started from.
        """
        best = (incumbent.version, incumbent.code, incumbent.experiment.inner_reward)
        if self.parent_policy == "best" or self.rng.random() >= self.epsilon:
            return best
        scored = []
        for v in self.store.list_versions(self.agent.name):
            exp = self.store.get_experiment(v.experiment_id) if v.experiment_id else None
            if v.id != incumbent.version.id and exp and exp.dataset_key == self.dataset_key and exp.inner_reward:
                scored.append((exp.inner_reward, v))
        top = sorted(scored, key=lambda pair: pair[0], reverse=True)[:4]
        if not top:
            return best
        reward, version = max(self.rng.sample(top, min(2, len(top))), key=lambda pair: pair[0])
        return version, self.version_code(version), reward

    def _context(self, incumbent: Incumbent, pending: Sequence[Candidate] = ()):
        version, code, reward = self.pick_base(incumbent)
        family = self.families.get(version.family)
        return build_context(
            self.store, agent=self.agent, parent=version, parent_code=code,
            parent_reward=reward, families=self.families,
            dataset_key=self.dataset_key, time_limit_seconds=self._limits(family).wall_seconds,
            memory_limit_mb=self.settings.limits.memory_mb, iteration=self.iteration,
        ).model_copy(update={"pending": [c.proposal for c in pending]})

    def _limits(self, family: Any):
        """The run limits: the family's time limit, and threads shared among the workers."""
        limits = self.settings.limits
        update: dict[str, Any] = {"threads": max(1, min(limits.threads, (os.cpu_count() or 1) // self.workers))}
        if family is not None:
            update["wall_seconds"] = min(limits.wall_seconds, family.time_limit_seconds)
        return limits.model_copy(update=update)

    # ---- stages -------------------------------------------------------------------------

    def _already_evaluated(self, candidate: Candidate) -> bool:
        h = candidate.content_hash
        return any(self.store.find_experiment(self.agent.name, self.dataset_key, h, stage)
                   for stage in ("cheap", "full"))

    def _static_problems(self, candidate: Candidate) -> list[str]:
        if candidate.proposal.kind is not ProposalKind.CODE or self.static_check is None:
            return []
        return self.static_check(candidate.code)

    def _run_stage(self, candidate: Candidate, incumbent: Incumbent | None, stage: str,
                   parent_experiment: Experiment | None = None,
                   version: AgentVersion | None = None, seed: int | None = None) -> Experiment | None:
        """Evaluate one stage (``cheap``, ``full``, ``confirm``: the earlier window,
        ``confirm-seed``: validation with another seed); record experiment, artifacts,
        failure. None if it failed."""
        exp = self._start(candidate, incumbent, stage, parent_experiment, version)
        cheap = stage == "cheap"
        promo = self.settings.promotion
        family = self.families.get(candidate.proposal.family or "")
        try:
            job = self.subject.job(candidate.code, candidate.params,
                                   stage="confirm" if stage == "confirm" else "validation",
                                   k=self.settings.k, user_fraction=promo.cheap_fraction if cheap else 1.0,
                                   fidelity=promo.cheap_fidelity if cheap else 1.0,
                                   seed=self.settings.seed if seed is None else seed,
                                   limits=self._limits(family), inner_reward=self.agent.inner_reward)
        except DesignerError as e:  # e.g. a pinned component version no longer resolvable
            self.store.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.FAILED))
            self._record_failure(exp.id, FailureKind.PROPOSAL, str(e), "")
            self._emit(EventKind.FAILED, f"experiment {exp.id} cannot run: {e}", experiment_id=exp.id)
            return None
        self._emit(EventKind.STAGE, f"{stage} evaluation of experiment {exp.id}", experiment_id=exp.id)
        result = self.executor.evaluate(job, self.workspace.experiment_dir(exp.id))
        return self._finish(exp, result)

    def _start(self, candidate, incumbent, stage, parent_experiment, version) -> Experiment:
        p = candidate.proposal
        self.store.put_code(candidate.content_hash, candidate.code)
        code = p.kind is ProposalKind.CODE   # LLM-written modules are family `custom` in history
        proposal = {"kind": p.kind.value, "rationale": p.rationale, "model": p.model, "ask": p.ask,
                    "meta": p.meta, "auto_approve": self.auto_approve, "base_family": p.family,
                    "incumbent_experiment": incumbent.experiment.id if incumbent else None}
        parent_version = version or (incumbent.version if incumbent else None)
        draft = ExperimentDraft(
            agent_name=self.agent.name, session_id=self.session_id,
            parent_version_id=parent_version.id if parent_version else None,
            parent_experiment_id=parent_experiment.id if parent_experiment else
            (incumbent.experiment.id if incumbent else None),
            proposer=p.proposer, proposal=proposal, family="custom" if code else p.family,
            params=candidate.params,
            code_hash=candidate.content_hash, dataset_key=self.dataset_key, stage=stage)
        exp = self.store.start_experiment(draft)
        folder = self.workspace.experiment_dir(exp.id)
        resolved = {"settings": json.loads(self.settings.model_dump_json()), "experiment": draft.model_dump()}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.json").write_text(json.dumps(resolved, indent=2, default=str))
        except OSError:  # e.g. a full disk: the row must not stay RUNNING
            self.store.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.INTERRUPTED))
            raise
        return exp

    def _finish(self, exp: Experiment, result: EvaluationResult) -> Experiment | None:
        if result.outcome is Outcome.COMPLETED:  # scores first: a COMPLETED row always has them
            self.store.put_user_scores(exp.id, result.user_ids, result.user_rewards)
        done = self.store.finish_experiment(exp.id, ExperimentResult(
            status=STATUS_OF[result.outcome], metrics=result.metrics, segments=result.segments,
            inner_reward=result.inner_reward, fit_seconds=result.fit_seconds,
            wall_seconds=result.wall_seconds, peak_memory_mb=result.peak_memory_mb,
            sandbox_tier=result.tier))
        folder = self.workspace.experiment_dir(exp.id)
        (folder / f"metrics-{exp.stage}.json").write_text(json.dumps(
            {"outcome": result.outcome.value, "metrics": result.metrics, "segments": result.segments}, indent=2))
        if result.outcome is not Outcome.COMPLETED:
            self.summary.failed += 1
            kind = classify_failure(result)
            self._record_failure(exp.id, kind, f"{result.error_type or result.outcome.value}: {result.message}",
                                 result.traceback_tail or result.stderr_tail[-4000:])
            self._emit(EventKind.FAILED, f"experiment {exp.id} {result.outcome.value} ({kind.value}): "
                       f"{result.message[:200]}", experiment_id=exp.id)
            return None
        return done

    def _passes_screen(self, cheap: Experiment, incumbent: Incumbent) -> bool:
        users, rewards = self.store.get_user_scores(cheap.id)
        mine, theirs = align(users, rewards, incumbent.user_ids, incumbent.rewards)
        floor = theirs.mean() * (1 - self.settings.promotion.cheap_margin)
        if mine.mean() >= floor:
            return True
        self.summary.screened_out += 1
        self.store.set_promotion(cheap.id, PromotionState.SCREENED_OUT)
        self._emit(EventKind.SCREENED_OUT, f"experiment {cheap.id} screened out: cheap {mine.mean():.4f} "
                   f"< {floor:.4f} (incumbent {theirs.mean():.4f} on the same users)",
                   experiment_id=cheap.id, reward=float(mine.mean()))
        return False

    # ---- bookkeeping --------------------------------------------------------------------

    def _reject_static(self, candidate: Candidate, incumbent: Incumbent, problems: list[str]) -> None:
        exp = self._start(candidate, incumbent, "full", None, None)
        self.store.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.REJECTED_STATIC))
        self.summary.failed += 1
        self._record_failure(exp.id, FailureKind.STATIC_CHECK, "; ".join(problems), "")
        self._emit(EventKind.FAILED, f"experiment {exp.id} rejected before the sandbox: {problems[0]}",
                   experiment_id=exp.id)

    def _record_failure(self, experiment_id: int | None, kind: FailureKind, message: str, tail: str) -> None:
        self.store.record_failure(FailureDraft(agent_name=self.agent.name, experiment_id=experiment_id,
                                               kind=kind, message=message[:2000], traceback_tail=tail[-4000:]))

    def _track_best(self, exp: Experiment) -> None:
        if exp.inner_reward is None:
            return
        if self.summary.best_reward is None or exp.inner_reward > self.summary.best_reward:
            first = self.summary.best_reward is None
            self.summary.best_reward, self.summary.best_experiment_id = exp.inner_reward, exp.id
            if not first:
                self._emit(EventKind.NEW_BEST, f"new best {exp.inner_reward:.4f} (experiment {exp.id})",
                           experiment_id=exp.id, reward=exp.inner_reward)

    def _emit(self, kind: EventKind, message: str, **kw: Any) -> None:
        event = Event(kind=kind, iteration=self.iteration, message=message, **kw)
        log.debug("%s", event)
        self.on_event(event)
