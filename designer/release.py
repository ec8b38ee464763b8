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

from designer.errors import UsageError, VersionError
from designer.versions import AgentRepository
from knowledge_base.models import (AgentVersion, Experiment, PromotionState, ReviewDecision)

log = logging.getLogger(__name__)


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
            "agent": exp.agent_name, "family": exp.family, "params": exp.params,
            "parent_version": parent.number if parent else None,
            "experiment_id": exp.id, "dataset": exp.dataset_key, "proposer": exp.proposer,
            "model": exp.proposal.get("model"), "rationale": exp.proposal.get("rationale", ""),
            "validation": {"inner_reward": exp.inner_reward, **exp.metrics},
            "test": test.get("metrics", {}),
            "p_value": exp.p_value, "effect_size": exp.effect_size,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def approve(self, experiment_id: int, reviewer: str | None = None, reason: str = "") -> AgentVersion:
        """Commit a pending candidate as the next version and make it the champion."""
        exp = self.store.get_experiment(experiment_id)
        if exp.promotion is not PromotionState.PENDING_REVIEW:
            raise UsageError(f"experiment {exp.id} is {exp.promotion.value}, not PENDING_REVIEW: "
                             "only candidates waiting in `agenticrs review list` can be approved")
        parent = self.store.get_version_by_id(exp.parent_version_id) if exp.parent_version_id else None
        number = self.store.next_version_number(exp.agent_name)
        code = self.store.get_code(exp.code_hash)
        manifest = self.manifest(exp, parent)
        message = (f"{exp.agent_name} v{number}: experiment {exp.id} ({exp.proposer}, {exp.family})\n\n"
                   f"parent: {'v%d' % parent.number if parent else 'none'}\n"
                   f"validation {exp.metrics.get('ndcg@10', exp.inner_reward)!r}, "
                   f"p-value {exp.p_value!r}, effect {exp.effect_size!r}\n")
        sha = self.repo.commit_version(exp.agent_name, number, code, manifest, message)
        version = self.store.add_version(exp.agent_name, number, sha, exp.family or "custom",
                                         exp.params, parent_version_id=exp.parent_version_id,
                                         experiment_id=exp.id, make_champion=True)
        self.store.set_promotion(exp.id, PromotionState.APPROVED, exp.p_value, exp.effect_size)
        self.store.record_review(exp.id, ReviewDecision.APPROVED, reason or "approved", reviewer or reviewer_name())
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
        return self.store.add_version(agent, new_number, sha, old.family, old.params,
                                      parent_version_id=old.id, experiment_id=old.experiment_id,
                                      make_champion=True)

    def reconcile(self, agent: str) -> ReconcileReport:
        """Make the knowledge base agree with git for ``agent``; report what changed."""
        report = ReconcileReport()
        shas = self.repo.version_shas(agent)
        rows = {v.number: v for v in self.store.list_versions(agent)}
        for number, sha in shas.items():
            if number not in rows:
                stored = self.repo.read_version(agent, number)
                m = stored.manifest
                parent = rows.get(m.get("parent_version")) if m.get("parent_version") else None
                rows[number] = self.store.add_version(
                    agent, number, sha, m.get("family") or "custom", m.get("params") or {},
                    parent_version_id=parent.id if parent else None,
                    experiment_id=m.get("experiment_id"), make_champion=False)
                if m.get("experiment_id"):
                    self.store.set_promotion(m["experiment_id"], PromotionState.APPROVED)
                report.created.append(f"{agent}/v{number}")
        for number, row in list(rows.items()):
            if number not in shas or shas[number] != row.git_sha:
                log.warning("version %s/v%d has no matching commit; removing the row", agent, number)
                self.store.delete_version(row.id)
                rows.pop(number)
                report.removed.append(f"{agent}/v{number}")
        champion = self.repo.champion_number(agent)
        current = self.store.champion(agent)
        if champion is not None and champion in rows and (current is None or current.number != champion):
            self.store.set_champion(agent, rows[champion].id)
            report.champion_fixed = f"{agent}/v{champion}"
        return report
