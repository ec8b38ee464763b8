"""The design loop: one ``step()`` = parent -> context -> proposal -> candidate ->
cascade evaluation in the sandbox -> knowledge base -> promotion (-> git version).

Collaborators (store, proposer, executor, releaser, clock) are injected; progress leaves
as ``Event``s. Failures of generated code are data (experiment + failure rows), never
exceptions that escape the loop. By concern: this module holds the session (run, resume,
step, incumbent, context); ``designer.stages`` runs and records one evaluation stage;
``designer.judging`` decides promotions (paired test, confirmation, sealed test, review);
``designer.parallel`` keeps several candidates in flight.
"""
from __future__ import annotations

import logging
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
from designer.judging import JudgingMixin
from designer.stages import StagesMixin
from designer.liveness import Heartbeat
from designer.parallel import run_parallel
from designer.proposal import Candidate, Proposal, ProposalError, SessionStop
from designer.release import Releaser
from designer.settings import DesignSettings
from designer.subjects import AgentSubject, Subject
from designer.workspace import Workspace
from knowledge_base.models import AgentVersion, Experiment, ExperimentStatus, FailureKind, PromotionState

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


class DesignLoop(StagesMixin, JudgingMixin):
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
