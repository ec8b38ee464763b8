"""Running and recording one evaluation stage of a candidate (a mixin of ``DesignLoop``).

A stage (``cheap``, ``full``, ``confirm``, ``confirm-seed``) is: an experiment row and its
folder first (so a kill leaves it RUNNING, to be marked INTERRUPTED on resume), the
subject's job under the family's limits, the executor's run, then the result (per-user
scores before the COMPLETED row) or a failure row. Also the cheap-stage screen, the static
check's rejection, and the duplicate check. Uses the loop's store, executor, subject,
settings, workspace, summary and ``_emit``.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from designer.errors import DesignerError
from designer.events import EventKind
from designer.failures import STATUS_OF, classify_failure
from designer.promotion import align
from designer.proposal import Candidate, ProposalKind
from knowledge_base.models import (AgentVersion, Experiment, ExperimentDraft, ExperimentResult,
                                   ExperimentStatus, FailureDraft, FailureKind, PromotionState)
from sandbox.evaluation import EvaluationResult
from sandbox.outcome import Outcome

if TYPE_CHECKING:
    from designer.loop import Incumbent


class StagesMixin:
    """See the module docstring."""

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
