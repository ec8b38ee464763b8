"""Judging a full-stage candidate: the online-FDR test, confirmation, the sealed test as a
veto, and approval. Mixed into ``DesignLoop`` (it uses the loop's stage runner and store).

Order of evidence, each step paid only by those that pass the one before:
1. validation: paired test against the champion at the level LORD++ grants (``error_control``);
2. confirmation: another seed and the earlier window (``confirmation``);
3. sealed test, scored once for the promoted candidate and its parent: never a selector,
   but a result significantly below the parent's stops auto-approval (a person decides).
"""
from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from designer import confirmation as confirming
from designer.error_control import Procedure
from designer.errors import UsageError
from designer.events import EventKind
from designer.promotion import Comparison, align, compare, format_p
from designer.proposal import Candidate, Proposal, ProposalKind
from knowledge_base.errors import NotFoundError
from knowledge_base.models import AgentVersion, Experiment, ExperimentStatus, PromotionState
from sandbox.outcome import Outcome

log = logging.getLogger(__name__)


class JudgingMixin:
    """Promotion of candidates of ``DesignLoop`` (see the module docstring)."""

    def procedure(self) -> Procedure:
        promo = self.settings.promotion
        return Procedure(promo.error_control, promo.alpha, promo.initial_wealth)

    def _judge(self, full: Experiment, incumbent: Any) -> None:
        self.summary.evaluated += 1
        promo, metric = self.settings.promotion, self._metric()
        if self._infeasible(full):
            return
        users, rewards = self.store.get_user_scores(full.id)
        first = compare(*align(users, rewards, incumbent.user_ids, incumbent.rewards), promo, seed=self.settings.seed)
        proc = self.procedure()
        test = self.store.record_error_control_test(
            self.agent.name, full.id, first.p_value, first.effect >= promo.min_effect, proc.next_alpha,
            proc.name, proc.alpha, proc.initial_wealth)
        result = first.decided_at(test.alpha, promo.min_effect)
        evidence: dict[str, Any] = {"parent_version": incumbent.version.tag, "metric": metric,
                                    "validation": result.model_dump(),
                                    "error_control": {"procedure": test.procedure, "seq": test.seq,
                                                      "alpha": test.alpha, "target_fdr": test.target_fdr}}
        if getattr(incumbent, "provisional", False):   # compared with a pending winner, not the champion's run
            evidence["provisional_incumbent"] = incumbent.experiment.id
        confirmed = None
        if result.promote and promo.confirm:
            confirmed = self._confirm(full, incumbent, result)
            evidence["confirmation"] = confirmed.model_dump()
        promoted = result.promote and (confirmed is None or confirmed.confirmed)
        if result.promote:
            self.store.set_discovery(test.id, promoted)
        state = (PromotionState.PENDING_REVIEW if promoted else
                 PromotionState.NOT_CONFIRMED if result.promote else PromotionState.NOT_BETTER)
        full = self.store.set_promotion(full.id, state, result.p_value, result.effect, evidence=evidence)
        self._write_evidence(full.id, evidence)
        self._emit(EventKind.FINISHED, f"experiment {full.id} {full.family}: val {metric} {full.inner_reward:.4f} "
                   f"vs {incumbent.experiment.inner_reward:.4f}"
                   + (f" (pending experiment {incumbent.experiment.id}, the provisional incumbent)"
                      if getattr(incumbent, "provisional", False) else "") + f" ({result.reason})",
                   experiment_id=full.id, reward=full.inner_reward)
        self._track_best(full)
        if confirmed is not None and not promoted:
            self._emit(EventKind.NOT_CONFIRMED, f"experiment {full.id} not promoted: {confirmed.reason}",
                       experiment_id=full.id)
        if not promoted:
            return
        self.summary.promoted.append(full.id)
        self._emit(EventKind.PENDING_REVIEW, f"experiment {full.id} beats {incumbent.version.tag}: "
                   f"{result.reason}", experiment_id=full.id, reward=full.inner_reward)
        self._release(self.seal_test(full))

    def _infeasible(self, full: Experiment) -> bool:
        """Mark ``full`` INFEASIBLE when it breaks a constraint of the subject's outer reward
        (before any test: it spends no alpha and is never promoted)."""
        broken = self.subject.violations(self.store.get_code(full.code_hash), full.metrics)
        if not broken:
            return False
        evidence = {"infeasible": broken, "metric": self._metric()}
        self.store.set_promotion(full.id, PromotionState.INFEASIBLE, evidence=evidence)
        self._write_evidence(full.id, evidence)
        self._emit(EventKind.INFEASIBLE, f"experiment {full.id} INFEASIBLE: "
                   + "; ".join(b["reason"] for b in broken), experiment_id=full.id, reward=full.inner_reward)
        return True

    def _release(self, exp: Experiment) -> None:
        """Auto-approve a pending candidate unless its sealed test vetoes it or it is stale."""
        if not (self.auto_approve and exp.proposal.get("auto_approve", True)):
            return
        veto = self.verdict(exp)
        if veto.get("vetoed"):
            self._emit(EventKind.VETOED, f"experiment {exp.id} not auto-approved: {veto['reason']}; "
                       f"see `agenticrs review show {exp.id}`", experiment_id=exp.id)
            return
        champion = self.store.champion(self.agent.name)
        if champion is not None and exp.parent_version_id not in (None, champion.id):
            self.supersede(exp, champion)
            return
        try:
            self._approve(exp)
        except UsageError:  # another process replaced the champion between the check and the release?
            now = self.store.champion(self.agent.name)
            if now is None or now.id == exp.parent_version_id:
                raise
            self.supersede(exp, now)

    def supersede(self, exp: Experiment, champion: AgentVersion) -> None:
        """Mark a pending candidate whose parent is no longer the champion (e.g. after a
        rollback while the session ran): it never beat the current one."""
        parent = (exp.evidence or {}).get("parent_version") or f"version id {exp.parent_version_id}"
        reason = f"compared with {parent}, but the champion is now {champion.tag}"
        evidence = {**(exp.evidence or {}), "superseded": reason}
        self.store.set_promotion(exp.id, PromotionState.SUPERSEDED, evidence=evidence)
        self._emit(EventKind.SUPERSEDED, f"experiment {exp.id} superseded: {reason}", experiment_id=exp.id)

    # ---- confirmation -------------------------------------------------------------------

    def _confirm(self, full: Experiment, incumbent: Any, validation: Comparison) -> confirming.Confirmation:
        promo, seed = self.settings.promotion, self.settings.seed
        candidate = self._candidate_of(full)
        champion = self.champion_candidate(incumbent.version, incumbent.code)
        runs: list[int] = []
        mine = self._reuse_or_run(candidate, incumbent, "confirm", full, runs=runs)
        theirs = self._reuse_or_run(champion, None, "confirm", None, version=incumbent.version, runs=runs)
        if mine is None or theirs is None:
            return confirming.failed(validation, "the earlier-window run", runs)
        paired = align(*self.store.get_user_scores(mine.id), *self.store.get_user_scores(theirs.id))
        window = compare(*paired, promo, seed=seed, alpha=validation.alpha) if len(paired[0]) else None
        reseeded = self._reuse_or_run(candidate, incumbent, "confirm-seed", full, seed=seed + 1, runs=runs)
        if reseeded is None:
            return confirming.failed(validation, f"the re-run with seed {seed + 1}", runs)
        users, first = self.store.get_user_scores(full.id)
        again_users, again = self.store.get_user_scores(reseeded.id)
        a, b = align(users, first, again_users, again)
        seeded = None
        if len(a) and float(np.max(np.abs(a - b))) > promo.seed_tolerance:
            common = np.intersect1d(users, again_users)
            seeded = compare(*align(common, (a + b) / 2, incumbent.user_ids, incumbent.rewards),
                             promo, seed=seed, alpha=validation.alpha)
        return confirming.decide(validation, window, seeded, promo.min_effect, runs)

    def _reuse_or_run(self, candidate: Candidate, incumbent: Any, stage: str, parent: Experiment | None,
                      version: AgentVersion | None = None, seed: int | None = None,
                      runs: list[int] | None = None) -> Experiment | None:
        """A completed run of ``candidate`` at ``stage`` (reused after a restart), else a new one."""
        done = self.store.find_experiment(self.agent.name, self.dataset_key, candidate.content_hash, stage)
        if done is None or done.status is not ExperimentStatus.COMPLETED or not self._has_scores(done):
            done = self._run_stage(candidate, incumbent, stage, parent_experiment=parent, version=version, seed=seed)
        if done is not None and runs is not None:
            runs.append(done.id)
        return done

    def _candidate_of(self, exp: Experiment) -> Candidate:
        kind = ProposalKind(exp.proposal.get("kind", ProposalKind.PARAMS.value))
        proposal = Proposal(proposer=exp.proposer, kind=kind, family=exp.proposal.get("base_family", exp.family),
                            params=exp.params,
                            rationale=exp.proposal.get("rationale", ""))
        return Candidate(proposal=proposal, code=self.store.get_code(exp.code_hash), params=dict(exp.params))

    def champion_candidate(self, version: AgentVersion, code: str) -> Candidate:
        return Candidate(proposal=Proposal(proposer="baseline", kind=ProposalKind.PARAMS, family=version.family,
                                           params=version.params, rationale=f"score champion v{version.number}"),
                         code=code, params=dict(version.params))

    # ---- the sealed test ----------------------------------------------------------------

    def verdict(self, exp: Experiment) -> dict[str, Any]:
        """The sealed test's veto check of ``exp`` (empty if not sealed yet)."""
        sealed = self.store.get_test_metrics(exp.id)
        return (sealed or {}).get("verdict") or {}

    def seal_test(self, exp: Experiment) -> Experiment:
        """Score a promoted candidate once on the sealed test split (fit on train+validation),
        and its parent the same way; record whether the candidate is significantly worse.

        Shown in review and history; never used for selection, never put in a prompt.
        """
        mine = self._test_scores(exp)
        parent = self._parent_baseline(exp)
        theirs = self._test_scores(parent) if parent is not None else None
        if mine is None or theirs is None:
            verdict = {"vetoed": True, "reason": "the sealed test run did not complete"}
        else:
            verdict = self._veto(*align(*mine, *theirs))
        self.store.set_test_verdict(exp.id, verdict)
        return exp

    def _veto(self, mine: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
        promo, metric = self.settings.promotion, self._metric()
        worse = compare(theirs, mine, promo, seed=self.settings.seed, alpha=promo.veto_alpha)  # parent > candidate?
        verdict = {"metric": metric, "candidate": float(mine.mean()), "parent": float(theirs.mean()),
                   "delta": float(mine.mean() - theirs.mean()), "p_worse": worse.p_value,
                   "veto_alpha": promo.veto_alpha,
                   "vetoed": bool(promo.veto and worse.effect > 0 and worse.p_value <= promo.veto_alpha)}
        verdict["reason"] = (f"test {metric} {verdict['candidate']:.4f} vs parent {verdict['parent']:.4f} "
                             f"({verdict['delta']:+.4f}; one-sided test of 'worse than the parent': "
                             f"p={format_p(worse.p_value)}, a veto needs p <= {format_p(promo.veto_alpha)})")
        return verdict

    def _parent_baseline(self, exp: Experiment) -> Experiment | None:
        if exp.parent_version_id is None:
            return None
        version = self.store.get_version_by_id(exp.parent_version_id)
        code = self.version_code(version)
        return self.store.find_experiment(self.agent.name, self.dataset_key,
                                          self.champion_candidate(version, code).content_hash, "full")

    def _test_scores(self, exp: Experiment) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-user sealed-test rewards of ``exp`` (run once; kept in its folder, not the KB)."""
        path = self.workspace.experiment_dir(exp.id) / "test-scores.npz"
        if path.is_file() and self.store.get_test_metrics(exp.id) is not None:
            with np.load(path) as z:
                return z["users"], z["rewards"]
        family = self.families.get(exp.proposal.get("base_family") or exp.family or "")
        job = self.subject.job(self.store.get_code(exp.code_hash), exp.params, stage="test",
                               k=self.settings.k, seed=self.settings.seed, limits=self._limits(family),
                               inner_reward=self.agent.inner_reward)
        result = self.executor.evaluate(job, self.workspace.experiment_dir(exp.id))
        self.store.set_test_metrics(exp.id, result.metrics, result.segments)
        if result.outcome is not Outcome.COMPLETED:
            log.warning("sealed test run of experiment %d ended %s: %s", exp.id, result.outcome.value, result.message)
            return None
        np.savez(path, users=result.user_ids, rewards=result.user_rewards)
        return result.user_ids, result.user_rewards

    # ---- bookkeeping --------------------------------------------------------------------

    def _approve(self, exp: Experiment) -> None:
        version = self.releaser.approve(exp.id, reviewer="auto-approve", reason="--auto-approve")
        self.summary.approved.append(version.tag)
        self._emit(EventKind.APPROVED, f"{version.tag} committed ({version.git_sha[:10]})",
                   experiment_id=exp.id, reward=exp.inner_reward)

    def _metric(self) -> str:
        reward = self.agent.inner_reward
        return f"{reward.split('@')[0]}@{self.settings.k}" if "@" in reward else reward

    def _write_evidence(self, experiment_id: int, evidence: dict[str, Any]) -> None:
        folder = self.workspace.experiment_dir(experiment_id)   # another workspace's run has none here
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "comparison.json").write_text(json.dumps(evidence, indent=2, default=str))

    def _has_scores(self, exp: Experiment) -> bool:
        try:
            self.store.get_user_scores(exp.id)
            return True
        except NotFoundError:
            return False
