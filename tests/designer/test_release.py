"""Versions stay consistent between git and the knowledge base, whatever line a crash hits."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from designer.errors import UsageError, VersionError
from designer.versions import lock_holders
from designer.settings import load_settings
from knowledge_base.models import ExperimentDraft, ExperimentResult, ExperimentStatus, PromotionState
from tests.designer.test_search_and_promotion import KEY


def pending(store, family_params, code="class Agent: pass\n", h="h1", parent=None):
    parent = parent or store.champion("recommender")
    store.put_code(h, code)
    exp = store.start_experiment(ExperimentDraft(agent_name="recommender", session_id="s", proposer="search",
                                                 family="ease", params=family_params, code_hash=h,
                                                 dataset_key=KEY, parent_version_id=parent.id))
    store.finish_experiment(exp.id, ExperimentResult(status=ExperimentStatus.COMPLETED, inner_reward=0.2))
    return store.set_promotion(exp.id, PromotionState.PENDING_REVIEW, 0.01, 0.05)


def test_an_approval_killed_after_the_row_is_finished_not_repeated(store, releaser):
    exp = pending(store, {"l2": 10.0})
    parent = store.champion("recommender")
    sha = releaser.repo.commit_version("recommender", 2, store.get_code("h1"), releaser.manifest(exp, parent), "m")
    store.add_version("recommender", 2, sha, "ease", exp.params, parent_version_id=parent.id,
                      experiment_id=exp.id, make_champion=True)
    # killed here: experiment still PENDING_REVIEW, no review row; the user approves again
    version = releaser.approve(exp.id)
    assert version.number == 2 and [v.number for v in store.list_versions("recommender")] == [1, 2]
    assert store.get_experiment(exp.id).promotion is PromotionState.APPROVED
    assert releaser.repo.champion_number("recommender") == 2 and store.champion("recommender").number == 2


def test_an_approval_killed_after_the_tag_is_finished_by_the_retry(store, releaser):
    exp = pending(store, {"l2": 10.0})
    parent = store.champion("recommender")
    releaser.repo.commit_version("recommender", 2, store.get_code("h1"), releaser.manifest(exp, parent), "m",
                                 champion=False)
    # killed before the champion alias moved and before the row: a retry completes it
    version = releaser.approve(exp.id)
    assert version.number == 2 and store.champion("recommender").number == 2
    assert releaser.repo.champion_number("recommender") == 2
    assert len(store.list_reviews(experiment_id=exp.id)) == 1


def test_a_candidate_compared_with_an_old_champion_is_refused(store, releaser):
    first = pending(store, {"l2": 10.0}, h="a")
    second = pending(store, {"l2": 20.0}, h="b")
    releaser.approve(first.id)
    with pytest.raises(UsageError, match="champion is now"):
        releaser.approve(second.id)


def test_a_row_whose_code_neither_side_has_is_reported_never_deleted(store, releaser):
    """The knowledge base is the source of truth: reconcile reports, it never deletes a row."""
    store.add_version("recommender", 5, "0" * 40, "ease", {}, make_champion=False)
    for repair in (False, True):
        report = releaser.reconcile("recommender", repair=repair)
        assert report.missing == ["recommender/v5"] and report.removed == []
        assert [v.number for v in store.list_versions("recommender")] == [1, 5]


def test_bad_settings_are_a_usage_error_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTICRS_K", "abc")
    with pytest.raises(UsageError, match="AGENTICRS_"):
        load_settings(None)
    monkeypatch.delenv("AGENTICRS_K")
    with pytest.raises(UsageError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    config = tmp_path / "c.toml"
    config.write_text('dataset = "ml-100k"\nk = 20\n[limits]\nwall_seconds = 50\n')
    monkeypatch.setenv("AGENTICRS_K", "5")
    settings = load_settings(config, seed=3)
    assert (settings.dataset, settings.k, settings.seed, settings.limits.wall_seconds) == ("ml-100k", 5, 3, 50)
    assert "db" not in settings.model_dump()  # a URL with a password is never snapshotted


def test_init_defaults_keep_the_rest_of_the_workspace_config(tmp_path):
    from designer.cli.init import write_workspace_config
    config = tmp_path / "config.toml"
    config.write_text('k = 20\n[limits]\nwall_seconds = 50\n')
    write_workspace_config(config, dataset="ml-100k", data_dir=None)
    settings = load_settings(config)
    assert (settings.dataset, settings.k, settings.limits.wall_seconds) == ("ml-100k", 20, 50)


def test_env_limits_merge_with_the_config_files_limits(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("[limits]\nwall_seconds = 50\nmemory_mb = 1000\n")
    monkeypatch.setenv("AGENTICRS_LIMITS", '{"memory_mb": 2000}')
    limits = load_settings(config).limits
    assert (limits.wall_seconds, limits.memory_mb) == (50, 2000)


# ---- git locks left by a killed process (issue 13 item 6) ---------------------------------

def _stale(path, age_seconds=3600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    old = time.time() - age_seconds
    os.utime(path, (old, old))
    return path


def test_an_approval_after_a_kill_in_gits_lock_window_removes_the_stale_lock(store, releaser):
    lock = _stale(releaser.repo.path / ".git" / "index.lock")
    tag_lock = _stale(releaser.repo.path / ".git" / "refs" / "tags" / "recommender" / "v2.lock")
    exp = pending(store, {"l2": 10.0})
    version = releaser.approve(exp.id)
    assert version.number == 2 and releaser.repo.champion_number("recommender") == 2
    assert not lock.exists() and not tag_lock.exists()
    assert "recommender/v2" in releaser.repo.repo.tags


def test_a_lock_a_live_process_holds_is_reported_busy_and_kept(store, releaser):
    lock = _stale(releaser.repo.path / ".git" / "index.lock")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1]); time.sleep(60)",
                               str(lock)])
    try:
        deadline = time.time() + 10
        while not lock_holders(lock) and time.time() < deadline:
            time.sleep(0.05)
        exp = pending(store, {"l2": 10.0})
        with pytest.raises(VersionError, match=f"busy: process {holder.pid} holds"):
            releaser.approve(exp.id)
        assert lock.exists() and store.get_experiment(exp.id).promotion is PromotionState.PENDING_REVIEW
    finally:
        holder.kill()
        holder.wait()


def test_a_fresh_unheld_lock_is_not_removed(releaser):
    lock = _stale(releaser.repo.path / ".git" / "index.lock", age_seconds=0)
    with pytest.raises(VersionError, match="busy"):
        releaser.repo.clear_stale_locks()
    assert lock.exists()


def test_other_git_write_errors_are_one_version_error(releaser, monkeypatch):
    def broken(*_a, **_k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("git.index.base.IndexFile.commit", broken)
    with pytest.raises(VersionError, match="No space left on device.*agents check"):
        releaser.repo.commit_version("recommender", 7, "x = 1\n", {"a": 1}, "m")
