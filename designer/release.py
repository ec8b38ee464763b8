"""Approve, reject and roll back agent versions, keeping git and the knowledge base in step.

The knowledge base is the source of truth: a version's row holds its code (by hash) and its
manifest, and is written first, under the agent's lock (``Store.release_version``: the
champion check, the next number and the insert are one step, whatever other workspaces do
at the same time). The workspace's git repository is a replica written second. A crash in
between leaves a row without a tag, which ``reconcile`` rebuilds from the knowledge base,
exactly as it rebuilds the versions other workspaces released. ``reconcile`` never deletes a
row: another workspace's repository may hold it.
"""
from __future__ import annotations

import getpass
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TYPE_CHECKING

from designer.errors import UsageError
from designer.versions import AgentRepository, version_tag
from knowledge_base.errors import ConflictError, NotFoundError
from knowledge_base.models import (AgentVersion, Experiment, PromotionState, ReviewDecision,
                                   VersionDraft)

if TYPE_CHECKING:
    from knowledge_base.store import Store

log = logging.getLogger(__name__)


def code_key(code: str) -> str:
    """The ``candidate_code`` key of a version's code that no experiment stored (sha256)."""
    return hashlib.sha256(code.encode()).hexdigest()


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
    """What ``reconcile`` found and did for one agent (tags ``<agent>/v<N>``)."""

    created: list[str] = field(default_factory=list)   # rows made from tags the KB lacked
    rebuilt: list[str] = field(default_factory=list)   # committed here from the KB's code
    stored: list[str] = field(default_factory=list)    # code this replica gave the KB (rows before 0004)
    missing: list[str] = field(default_factory=list)   # rows whose code neither side has: reported only
    diverged: list[str] = field(default_factory=list)  # tags whose code differs from the KB's version
    champion_fixed: str | None = None

    @property
    def removed(self) -> list[str]:
        """Rows removed: always none (the KB is the source of truth, repositories are replicas)."""
        return []

    @property
    def changed(self) -> bool:
        return bool(self.created or self.rebuilt or self.stored or self.missing or self.diverged
                     or self.champion_fixed)

    def describe(self, repair: bool = False) -> str:
        """One line for ``agents check``: ``consistent`` or what differed and what was done."""
        if not self.changed:
            return "consistent"
        parts = [f"{label} {names}" for label, names in (
            ("created rows from tags", self.created), ("rebuilt from the knowledge base", self.rebuilt),
            ("stored code of", self.stored), ("diverged (the knowledge base's code "
                                               + ("restored" if repair else "differs: run `agenticrs agents check --repair`")
                                               + ")", self.diverged),
            ("no code anywhere here (run `agenticrs agents check` in the workspace that made them)",
             self.missing)) if names]
        if self.champion_fixed:
            parts.append(f"champion -> {self.champion_fixed}")
        return ", ".join(parts)


class Releaser:
    """The only writer of agent versions (the knowledge base first, this workspace's git second)."""

    def __init__(self, store: Store, repo: AgentRepository):
        self.store, self.repo = store, repo
        if repo.source is None:  # a version another workspace released is rebuilt on first read
            repo.source = self.stored_version
        # (version id, its code hash, local sha) found equal: not read again in this process
        self._verified: set[tuple[int, str | None, str]] = set()

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
        """Release a pending candidate as the next version and make it the champion.

        Idempotent: after a crash anywhere inside a previous approval of the same
        experiment, it finishes the missing steps instead of creating a second version.
        Refuses (``UsageError``) a candidate compared with a parent that is no longer the
        champion, also when another workspace replaced the champion a moment ago.
        """
        exp = self.store.get_experiment(experiment_id)
        self.reconcile(exp.agent_name)
        done = self._version_of(exp)
        if done is not None:
            return self._finish_approval(exp, done, reviewer, reason)
        if exp.promotion is not PromotionState.PENDING_REVIEW:
            raise UsageError(f"experiment {exp.id} is {exp.promotion.value}, not PENDING_REVIEW: "
                             "only candidates waiting in `agenticrs review list` can be approved")
        self._refuse_stale(exp)
        parent = self.store.get_version_by_id(exp.parent_version_id) if exp.parent_version_id else None
        manifest = self.manifest(exp, parent)
        draft = VersionDraft(family=version_family(exp), params=exp.params, code_hash=exp.code_hash,
                             manifest=manifest, parent_version_id=exp.parent_version_id, experiment_id=exp.id)
        try:
            version = self.store.release_version(exp.agent_name, draft, require_champion=exp.parent_version_id)
        except ConflictError:
            self._refuse_stale(exp)  # the champion changed between the check and the lock
            raise
        message = (f"{exp.agent_name} v{version.number}: experiment {exp.id} ({exp.proposer}, {version_family(exp)})\n\n"
                   f"parent: {'v%d' % parent.number if parent else 'none'}\n"
                   f"validation {exp.agent_name} inner reward {exp.inner_reward!r}, "
                   f"p-value {exp.p_value!r}, effect {exp.effect_size!r}\n")
        version = self._commit_here(version, self.store.get_code(exp.code_hash), manifest, message)
        return self._finish_approval(exp, version, reviewer, reason)

    def _refuse_stale(self, exp: Experiment) -> None:
        champion = self.store.champion(exp.agent_name)
        if champion is not None and exp.parent_version_id not in (None, champion.id):
            parent = self.store.get_version_by_id(exp.parent_version_id)
            raise UsageError(f"experiment {exp.id} was compared with {parent.tag}, but the champion is now "
                             f"{champion.tag}: run `agenticrs design` again to test it against the champion")

    def _commit_here(self, version: AgentVersion, code: str, manifest: dict, message: str) -> AgentVersion:
        """Write a released version into this replica; the first replica's commit is recorded."""
        sha = self.repo.commit_version(version.agent_name, version.number, code, manifest, message, champion=False)
        if version.family == "pipeline":   # the KB rows of the component versions it pins
            from designer.pipelines.spec import PipelineSpec
            self.store.set_pipeline_components(version.id, PipelineSpec.from_yaml(code, version.tag).pinned())
        return version if version.git_sha else self.store.fill_version(version.id, git_sha=sha)

    def _version_of(self, exp: Experiment) -> AgentVersion | None:
        return next((v for v in self.store.list_versions(exp.agent_name) if v.experiment_id == exp.id), None)

    def _finish_approval(self, exp: Experiment, version: AgentVersion, reviewer: str | None,
                         reason: str) -> AgentVersion:
        """The steps after the version row; each is safe to repeat. An approval finished
        late makes its version the champion only if its parent still is."""
        if exp.promotion is not PromotionState.APPROVED:
            version = self._claim(version, exp.parent_version_id, force=exp.parent_version_id is None)
            self.store.set_promotion(exp.id, PromotionState.APPROVED, exp.p_value, exp.effect_size)
        if not self.store.list_reviews(experiment_id=exp.id, decision=ReviewDecision.APPROVED):
            self.store.record_review(exp.id, ReviewDecision.APPROVED, reason or "approved",
                                     reviewer or reviewer_name())
        champion = self.store.champion(exp.agent_name)
        if champion is not None and self.repo.has_version(champion.agent_name, champion.number):
            self.repo.move_champion(champion.agent_name, champion.number)
        return version

    def _claim(self, version: AgentVersion, replacing: int | None, force: bool = False) -> AgentVersion:
        """Make ``version`` the champion if ``replacing`` still is (or there is none)."""
        try:
            return self.store.claim_champion(version.agent_name, version.id, replacing=replacing, force=force)
        except ConflictError as e:
            log.warning("%s is a version but not the champion: %s", version.tag, e)
            return self.store.get_version_by_id(version.id)

    def supersede_stale(self, agent: str) -> list[int]:
        """Mark SUPERSEDED every pending candidate of ``agent`` compared with a version that is
        no longer the champion (e.g. after another one was approved): it never beat the
        current champion, so approving it is refused anyway. Returns their ids."""
        champion = self.store.champion(agent)
        if champion is None:
            return []
        stale = [e for e in self.store.list_experiments(agent_name=agent, promotion=PromotionState.PENDING_REVIEW,
                                                        limit=100_000)
                 if e.parent_version_id not in (None, champion.id)]
        for exp in stale:
            parent = (exp.evidence or {}).get("parent_version") or f"version id {exp.parent_version_id}"
            reason = f"compared with {parent}, but the champion is now {champion.tag}"
            self.store.set_promotion(exp.id, PromotionState.SUPERSEDED,
                                     evidence={**(exp.evidence or {}), "superseded": reason})
        return [e.id for e in stale]

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
        """Release the built-in starting point of a new agent as v1 (no experiment). When
        another workspace did so first, its versions are replicated here instead."""
        manifest = {"agent": agent, "family": family, "params": params, "parent_version": None,
                    "experiment_id": None, "proposer": "builtin"}
        key = code_key(code)
        self.store.put_code(key, code)
        version = self.store.first_version(agent, VersionDraft(family=family, params=params, code_hash=key,
                                                               manifest=manifest))
        if version.git_sha or version.code_hash != key:
            self.reconcile(agent)
            return self.store.get_version_by_id(version.id)
        version = self._commit_here(version, code, manifest, f"{agent} v1: built-in {family}")
        self.repo.move_champion(agent, version.number)
        return version

    def rollback(self, agent: str, number: int) -> AgentVersion:
        """Make version ``number`` current again, as a new version (and commit here)."""
        old = self.store.get_version(agent, number)
        stored = self.repo.read_version(agent, number)
        manifest = {**stored.manifest, "rollback_of": number,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        key = code_key(stored.code)
        self.store.put_code(key, stored.code)
        version = self.store.release_version(agent, VersionDraft(
            family=old.family, params=old.params, code_hash=key, manifest=manifest,
            parent_version_id=old.id, experiment_id=old.experiment_id))
        version = self._commit_here(version, stored.code, manifest,
                                    f"{agent} v{version.number}: roll back to v{number}")
        if (self.store.champion(agent) or version).id == version.id:
            self.repo.move_champion(agent, version.number)
        return version

    # ---- replication --------------------------------------------------------------------

    def stored_version(self, agent: str, number: int) -> tuple[str, dict[str, Any]] | None:
        """``(code, manifest)`` of a version as the knowledge base holds it; None if it has
        no such version or not its code (a row written before revision 0004)."""
        try:
            return self._content(self.store.get_version(agent, number))
        except NotFoundError:
            return None

    def _code(self, row: AgentVersion) -> str | None:
        if row.code_hash is None:
            return None
        try:
            return self.store.get_code(row.code_hash)
        except NotFoundError:
            return None

    def _content(self, row: AgentVersion) -> tuple[str, dict[str, Any]] | None:
        code = self._code(row)
        if code is None:
            return None
        manifest = self.store.get_version_manifest(row.id) or {
            "agent": row.agent_name, "family": row.family, "params": row.params,
            "parent_version": None, "experiment_id": row.experiment_id}
        return code, manifest

    def reconcile(self, agent: str, repair: bool = False) -> ReconcileReport:
        """Make this workspace's repository a replica of the knowledge base for ``agent``.

        - versions the repository lacks are rebuilt from the KB's code and manifest;
        - tags the KB lacks become rows (an approval by an older agenticrs that crashed
          between git and the KB, or a repository brought to a new KB); a row from before
          revision 0004 gets its code from the tag;
        - a tag whose code differs from the KB's version is reported; with ``repair`` it is
          set aside (``<agent>/v<N>-diverged-<sha>``) and the KB's version rebuilt;
        - the KB's champion is kept (set to the newest version only when there is none),
          and the local ``<agent>/champion`` alias follows it;
        - no row is ever deleted. Interrupted approvals are finished.
        """
        report = ReconcileReport()
        rows = {v.number: v for v in self.store.list_versions(agent)}
        local = self.repo.version_shas(agent)
        for number in sorted(set(local) - set(rows)):
            rows[number] = self._row_from_tag(agent, number)
            report.created.append(version_tag(agent, number))
        for number in sorted(rows):
            rows[number] = self._replicate(rows[number], local.get(number), repair, report)
        for number in sorted(rows):
            self._complete_approval(rows[number])
        self._fix_champion(agent, rows, report)
        return report

    def _replicate(self, row: AgentVersion, sha: str | None, repair: bool, report: ReconcileReport) -> AgentVersion:
        """Bring this replica's copy of ``row`` (at commit ``sha``, None if absent) in line."""
        if sha is not None and (row.id, row.code_hash, sha) in self._verified:
            return row
        if sha is not None:
            stored = self.repo.read_version(row.agent_name, row.number)
            if row.code_hash is None:  # a row from before revision 0004: this replica has its code
                key = code_key(stored.code)
                self.store.put_code(key, stored.code)
                report.stored.append(row.tag)
                return self.store.fill_version(row.id, code_hash=key, manifest=stored.manifest)
            if self._code(row) in (None, stored.code):
                self._verified.add((row.id, row.code_hash, sha))
                return row
            report.diverged.append(row.tag)
            if not repair:
                return row
            self.repo.set_aside(row.agent_name, row.number)
        return self._rebuild(row, report)

    def _rebuild(self, row: AgentVersion, report: ReconcileReport) -> AgentVersion:
        content = self._content(row)
        if content is None:
            report.missing.append(row.tag)
            return row
        sha = self.repo.rebuild_version(row.agent_name, row.number, *content)
        report.rebuilt.append(row.tag)
        return row if row.git_sha else self.store.fill_version(row.id, git_sha=sha)

    def _row_from_tag(self, agent: str, number: int) -> AgentVersion:
        stored = self.repo.read_version(agent, number)
        m = stored.manifest or {}
        parent = self._number_to_id(agent, m.get("parent_version"))
        experiment_id = m.get("experiment_id")
        if experiment_id is not None and not self._exists(experiment_id):
            experiment_id = None  # a repository brought to a new knowledge base
        key = code_key(stored.code)
        self.store.put_code(key, stored.code)
        try:
            return self.store.add_version(agent, number, stored.sha, m.get("family") or "custom", m.get("params") or {},
                                          parent_version_id=parent, experiment_id=experiment_id,
                                          make_champion=False, code_hash=key, manifest=m)
        except ConflictError:  # released elsewhere meanwhile: compared like any other row
            return self.store.get_version(agent, number)

    def _number_to_id(self, agent: str, number: int | None) -> int | None:
        if not number:
            return None
        try:
            return self.store.get_version(agent, number).id
        except NotFoundError:
            return None

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

    def _fix_champion(self, agent: str, rows: dict[int, AgentVersion], report: ReconcileReport) -> None:
        """The KB's champion stays; one is chosen only when there is none (or an older
        agenticrs crashed between moving its alias and writing the KB). The alias follows."""
        if not rows:
            return
        before = self.store.champion(agent)
        tagged = self.repo.champion_number(agent)
        crashed = rows.get(tagged) if version_tag(agent, tagged or 0) in report.created else None
        parent = (self.store.get_version_manifest(crashed.id) or {}).get("parent_version") if crashed else None
        if crashed is not None and (before is None or before.number == parent):
            self._claim(crashed, before.id if before else None)
        elif before is None:
            self._claim(rows[max(rows)], None)
        champion = self.store.champion(agent)
        if champion is None:
            return
        if before is None or champion.id != before.id:
            report.champion_fixed = champion.tag
        if champion.number != tagged and self.repo.has_version(agent, champion.number):
            self.repo.move_champion(agent, champion.number)
            report.champion_fixed = champion.tag
