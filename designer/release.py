"""Approve, reject and roll back agent versions, keeping git and the knowledge base in step.

Order of writes: git first (commit, tag, champion alias), then the knowledge base. A crash
in between leaves a tag without a version row, which ``reconcile`` turns into the row.
A version row whose tag is missing (impossible by this order, but a repository can be
edited by hand) is reported and removed.
"""
from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from designer.errors import UsageError
from designer.versions import AgentRepository
from knowledge_base.errors import NotFoundError
from knowledge_base.models import AgentVersion, Experiment, PromotionState, ReviewDecision

log = logging.getLogger(__name__)


def version_family(exp: Experiment) -> str:
    """A version's family: the built-in one it renders, or ``custom`` for LLM-written code."""
    return "custom" if exp.proposal.get("kind") == "code" or not exp.family else exp.family


def reviewer_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for this uid (containers)
        return "unknown"


@dataclass
class ReconcileReport:
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    champion_fixed: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created or self.removed or self.champion_fixed)


class Releaser:
    """The only writer of agent versions."""

    def __init__(self, store: Any, repo: AgentRepository):
        self.store, self.repo = store, repo

    def manifest(self, exp: Experiment, parent: AgentVersion | None) -> dict[str, Any]:
        test = self.store.get_test_metrics(exp.id) or {}
        return {
            "agent": exp.agent_name, "family": version_family(exp), "params": exp.params,
            "base_family": exp.proposal.get("base_family", exp.family),
            "parent_version": parent.number if parent else None,
            "experiment_id": exp.id, "dataset": exp.dataset_key, "proposer": exp.proposer,
            "model": exp.proposal.get("model"), "rationale": exp.proposal.get("rationale", ""),
            "validation": {"inner_reward": exp.inner_reward, **exp.metrics},
            "test": test.get("metrics", {}),
            "p_value": exp.p_value, "effect_size": exp.effect_size,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def approve(self, experiment_id: int, reviewer: str | None = None, reason: str = "") -> AgentVersion:
        """Commit a pending candidate as the next version and make it the champion.

        Idempotent: after a crash anywhere inside a previous approval of the same
        experiment, it finishes the missing steps instead of creating a second version.
        Refuses a candidate that was compared with a parent that is no longer the champion.
        """
        exp = self.store.get_experiment(experiment_id)
        self.reconcile(exp.agent_name)
        done = self._version_of(exp)
        if done is not None:
            return self._finish_approval(exp, done, reviewer, reason)
        if exp.promotion is not PromotionState.PENDING_REVIEW:
            raise UsageError(f"experiment {exp.id} is {exp.promotion.value}, not PENDING_REVIEW: "
                             "only candidates waiting in `agenticrs review list` can be approved")
        champion = self.store.champion(exp.agent_name)
        if champion is not None and exp.parent_version_id not in (None, champion.id):
            parent = self.store.get_version_by_id(exp.parent_version_id)
            raise UsageError(f"experiment {exp.id} was compared with {parent.tag}, but the champion is now "
                             f"{champion.tag}: run `agenticrs design` again to test it against the champion")
        parent = self.store.get_version_by_id(exp.parent_version_id) if exp.parent_version_id else None
        number = self.store.next_version_number(exp.agent_name)
        code = self.store.get_code(exp.code_hash)
        message = (f"{exp.agent_name} v{number}: experiment {exp.id} ({exp.proposer}, {version_family(exp)})\n\n"
                   f"parent: {'v%d' % parent.number if parent else 'none'}\n"
                   f"validation {exp.agent_name} inner reward {exp.inner_reward!r}, "
                   f"p-value {exp.p_value!r}, effect {exp.effect_size!r}\n")
        sha = self.repo.commit_version(exp.agent_name, number, code, self.manifest(exp, parent), message)
        version = self.store.add_version(exp.agent_name, number, sha, version_family(exp), exp.params,
                                         parent_version_id=exp.parent_version_id,
                                         experiment_id=exp.id, make_champion=True)
        return self._finish_approval(exp, version, reviewer, reason)

    def _version_of(self, exp: Experiment) -> AgentVersion | None:
        return next((v for v in self.store.list_versions(exp.agent_name) if v.experiment_id == exp.id), None)

    def _finish_approval(self, exp: Experiment, version: AgentVersion, reviewer: str | None,
                         reason: str) -> AgentVersion:
        """The steps after the version row; each is safe to repeat."""
        self.repo.move_champion(exp.agent_name, version.number)
        version = self.store.set_champion(exp.agent_name, version.id)
        if exp.promotion is not PromotionState.APPROVED:
            self.store.set_promotion(exp.id, PromotionState.APPROVED, exp.p_value, exp.effect_size)
        if not self.store.list_reviews(experiment_id=exp.id, decision=ReviewDecision.APPROVED):
            self.store.record_review(exp.id, ReviewDecision.APPROVED, reason or "approved",
                                     reviewer or reviewer_name())
        return version

    def reject(self, experiment_id: int, reason: str, reviewer: str | None = None) -> None:
        """Reject a pending candidate; the reason becomes knowledge for later prompts."""
        if not reason.strip():
            raise UsageError("a rejection needs a reason: pass --reason TEXT (it guides later proposals)")
        exp = self.store.get_experiment(experiment_id)
        if exp.promotion is not PromotionState.PENDING_REVIEW:
            raise UsageError(f"experiment {exp.id} is {exp.promotion.value}, not PENDING_REVIEW")
        self.store.set_promotion(exp.id, PromotionState.REJECTED, exp.p_value, exp.effect_size)
        self.store.record_review(exp.id, ReviewDecision.REJECTED, reason, reviewer or reviewer_name())
        self.store.add_insight(exp.agent_name, f"Reviewer rejected experiment {exp.id} "
                               f"({exp.family}, {exp.proposer}): {reason}",
                               {"experiment_id": exp.id, "source": "review"})

    def publish_initial(self, agent: str, family: str, params: dict, code: str) -> AgentVersion:
        """Commit the built-in starting point of a new agent as v1 (no experiment)."""
        manifest = {"agent": agent, "family": family, "params": params, "parent_version": None,
                    "experiment_id": None, "proposer": "builtin"}
        sha = self.repo.commit_version(agent, 1, code, manifest, f"{agent} v1: built-in {family}")
        return self.store.add_version(agent, 1, sha, family, params, make_champion=True)

    def rollback(self, agent: str, number: int) -> AgentVersion:
        """Make version ``number`` current again, as a new commit and version."""
        old = self.store.get_version(agent, number)
        stored = self.repo.read_version(agent, number)
        new_number = self.store.next_version_number(agent)
        manifest = {**stored.manifest, "rollback_of": number,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        sha = self.repo.commit_version(agent, new_number, stored.code, manifest,
                                       f"{agent} v{new_number}: roll back to v{number}")
        version = self.store.add_version(agent, new_number, sha, old.family, old.params,
                                         parent_version_id=old.id, experiment_id=old.experiment_id,
                                         make_champion=True)
        return version

    def reconcile(self, agent: str, repair: bool = False) -> ReconcileReport:
        """Make the knowledge base agree with git for ``agent``; report what changed.

        Additive by default: tags without a row become rows, experiments referenced by a
        version are marked APPROVED, a missing champion is set from the champion tag (or the
        newest version). Rows without a matching tag are only reported, and removed when
        ``repair`` (``agenticrs agents check --repair``).
        """
        report = ReconcileReport()
        shas = self.repo.version_shas(agent)
        rows = {v.number: v for v in self.store.list_versions(agent)}
        for number, sha in shas.items():
            if number not in rows:
                rows[number] = self._row_from_tag(agent, number, sha, rows)
                report.created.append(f"{agent}/v{number}")
        for number, row in list(rows.items()):
            if number not in shas or shas[number] != row.git_sha:
                report.removed.append(f"{agent}/v{number}")
                if repair:
                    self.store.delete_version(row.id)
                    rows.pop(number)
        for number in sorted(rows):
            self._complete_approval(rows[number])
        self._fix_champion(agent, rows, report)
        return report

    def _row_from_tag(self, agent: str, number: int, sha: str, rows: dict) -> AgentVersion:
        m = self.repo.read_version(agent, number).manifest
        parent = rows.get(m.get("parent_version")) if m.get("parent_version") else None
        experiment_id = m.get("experiment_id")
        if experiment_id is not None and not self._exists(experiment_id):
            experiment_id = None  # a repository brought to a new knowledge base
        return self.store.add_version(agent, number, sha, m.get("family") or "custom", m.get("params") or {},
                                      parent_version_id=parent.id if parent else None,
                                      experiment_id=experiment_id, make_champion=False)

    def _exists(self, experiment_id: int) -> bool:
        try:
            self.store.get_experiment(experiment_id)
            return True
        except NotFoundError:
            return False

    def _complete_approval(self, row: AgentVersion) -> None:
        """A version whose experiment still waits for review: the approval was interrupted."""
        if row.experiment_id is None or not self._exists(row.experiment_id):
            return
        exp = self.store.get_experiment(row.experiment_id)
        if exp.promotion is PromotionState.PENDING_REVIEW:
            log.warning("finishing the interrupted approval of experiment %d as %s", exp.id, row.tag)
            self._finish_approval(exp, row, "agenticrs", "approval finished after an interruption")
        elif exp.promotion is not PromotionState.APPROVED:
            self.store.set_promotion(exp.id, PromotionState.APPROVED, exp.p_value, exp.effect_size)

    def _fix_champion(self, agent: str, rows: dict, report: ReconcileReport) -> None:
        if not rows:
            return
        tagged = self.repo.champion_number(agent)
        wanted = tagged if tagged in rows else max(rows)
        current = self.store.champion(agent)
        if current is None or current.number != wanted:
            self.store.set_champion(agent, rows[wanted].id)
            report.champion_fixed = f"{agent}/v{wanted}"
        if tagged != wanted:
            self.repo.move_champion(agent, wanted)
