"""The agents repository: every approved agent version is a git commit and a tag.

Files per agent: ``<name>/agent.py`` (the module) and ``<name>/agent.yaml`` (the manifest:
family, params, parent version, experiment id, metrics, p-value); a pipeline (manifest family
``pipeline``) keeps its spec in ``<name>/pipeline.yaml`` instead of ``agent.py``. Tags ``<name>/v<N>`` mark
versions; the moving tag ``<name>/champion`` marks the current one.

The knowledge base is the source of truth for versions (their code and manifest); this
repository is a replica of it, one per workspace. A version promoted in another workspace is
rebuilt here from the knowledge base (``Releaser.reconcile``, or on first read through the
repository's ``source``), so the same version has a different commit in each replica.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import git
import yaml

from designer.errors import VersionError

log = logging.getLogger(__name__)

CODE_FILE, PIPELINE_FILE = "agent.py", "pipeline.yaml"


@dataclass(frozen=True)
class StoredVersion:
    """A version as git holds it."""

    agent: str
    number: int
    sha: str
    code: str
    manifest: dict[str, Any]


def _same_version(a: tuple[str, dict], b: tuple[str, dict]) -> bool:
    """Same code and manifest, ignoring when the manifest was written."""
    strip = lambda m: {k: v for k, v in (m or {}).items() if k != "created_at"}  # noqa: E731
    return a[0] == b[0] and strip(a[1]) == strip(b[1])


# A lock younger than this may belong to a git process between closing and renaming it.
LOCK_GRACE_SECONDS = 5.0
# Without /proc (no way to see holders), a lock counts as stale only after this long.
LOCK_STALE_WITHOUT_PROC_SECONDS = 600.0


def lock_holders(path: Path) -> list[int]:
    """Pids of the processes (that this user may inspect) holding ``path`` open."""
    target, pids = os.path.realpath(path), []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        if any(_points_to(fd, target) for fd in fds):
            pids.append(int(proc.name))
    return pids


def _points_to(fd: Path, target: str) -> bool:
    try:
        return os.readlink(fd) == target
    except OSError:
        return False


def version_tag(agent: str, number: int) -> str:
    return f"{agent}/v{number}"


def champion_tag(agent: str) -> str:
    return f"{agent}/champion"


# Where a replica gets a version it lacks: (agent, number) -> (code, manifest) or None.
VersionSource = Callable[[str, int], "tuple[str, dict[str, Any]] | None"]


class AgentRepository:
    """A git repository of agent versions (through gitpython).

    ``source``, when set, supplies the versions this replica lacks (``Releaser`` sets it to
    the knowledge base): ``read_version`` then commits a missing version before reading it.
    """

    def __init__(self, path: Path, source: VersionSource | None = None):
        try:
            self.repo = git.Repo(path)
        except (git.NoSuchPathError, git.InvalidGitRepositoryError) as e:
            raise VersionError(f"no agents repository at {path}: run `agenticrs init`") from e
        self.path = Path(path)
        self.source = source

    @classmethod
    def init(cls, path: Path) -> "AgentRepository":
        """Create the repository with a first commit if it does not exist. Safe to call twice."""
        path.mkdir(parents=True, exist_ok=True)
        if not (path / ".git").exists():
            repo = git.Repo.init(path, initial_branch="main")
            with repo.config_writer() as config:
                config.set_value("user", "name", "agenticrs")
                config.set_value("user", "email", "agenticrs@localhost")
            (path / "README.md").write_text(
                "# Agent versions\n\nOne folder per agent; tags `<agent>/v<N>` are versions, "
                "`<agent>/champion` is the current one. Written by `agenticrs`.\n")
            repo.index.add(["README.md"])
            repo.index.commit("Create the agents repository")
        return cls(path)

    def lock_files(self) -> list[Path]:
        """Git lock files present now (index, HEAD, refs, packed-refs, config)."""
        git_dir = Path(self.repo.git_dir)
        return sorted([*git_dir.glob("*.lock"), *(git_dir / "refs").rglob("*.lock")])

    def clear_stale_locks(self) -> list[str]:
        """Remove lock files no live process holds (what a kill inside git's lock window
        leaves); returns them relative to the repository folder.

        Raises ``VersionError`` when a live process holds one: the repository is busy.
        """
        removed = []
        for lock in self.lock_files():
            holders = lock_holders(lock) if Path("/proc/self/fd").is_dir() else None
            if holders:
                raise VersionError(f"the agents repository is busy: process {holders[0]} holds {lock}; "
                                   "wait for it to finish (or stop it) and run the command again")
            try:
                age = time.time() - lock.stat().st_mtime
            except FileNotFoundError:
                continue  # released meanwhile
            if age < (LOCK_GRACE_SECONDS if holders is not None else LOCK_STALE_WITHOUT_PROC_SECONDS):
                raise VersionError(f"the agents repository is busy ({lock} was just taken); "
                                   "run the command again in a few seconds")
            lock.unlink(missing_ok=True)
            root = Path(self.repo.working_tree_dir or self.path)
            name = str(lock.relative_to(root)) if lock.is_relative_to(root) else str(lock)
            log.warning("removed a stale git lock left by a killed process: %s", lock)
            removed.append(name)
        return removed

    def commit_version(self, agent: str, number: int, code: str, manifest: dict[str, Any],
                       message: str, champion: bool = True) -> str:
        """Write the agent's files, commit, tag ``<agent>/v<number>``; returns the commit sha.

        Raises ``VersionError`` if the tag already exists on another commit.
        """
        self.clear_stale_locks()
        tag = version_tag(agent, number)
        if tag in self.repo.tags:
            existing = self.repo.tags[tag].commit
            if _same_version(self._files_at(existing, agent), (code, manifest)):
                if champion:  # a retried approval after a crash before the alias moved
                    self.move_champion(agent, number)
                return existing.hexsha
            raise VersionError(f"tag {tag} already exists at {existing.hexsha[:10]}: run `agenticrs agents check`")
        code_file = PIPELINE_FILE if manifest.get("family") == "pipeline" else CODE_FILE
        with self._writing():
            folder = self.path / agent
            folder.mkdir(exist_ok=True)
            (folder / code_file).write_text(code)
            (folder / "agent.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
            self.repo.index.add([f"{agent}/{code_file}", f"{agent}/agent.yaml"])
            commit = self.repo.index.commit(message)
            self.repo.create_tag(tag, ref=commit)
        if champion:
            self.move_champion(agent, number)
        return commit.hexsha

    def rebuild_version(self, agent: str, number: int, code: str, manifest: dict[str, Any]) -> str:
        """Commit a version another workspace released (from the knowledge base's code and
        manifest) without moving the champion alias; returns the commit sha here."""
        origin = f"experiment {manifest['experiment_id']}" if manifest.get("experiment_id") else "no experiment"
        return self.commit_version(agent, number, code, manifest,
                                   f"{agent} v{number}: from the knowledge base ({origin})", champion=False)

    def set_aside(self, agent: str, number: int) -> str:
        """Rename the tag of a version whose code differs from the knowledge base's to
        ``<agent>/v<N>-diverged-<sha10>`` (the commit stays reachable); returns the new name."""
        commit = self._tag_commit(agent, number)
        name = f"{version_tag(agent, number)}-diverged-{commit.hexsha[:10]}"
        self.clear_stale_locks()
        with self._writing():
            self.repo.create_tag(name, ref=commit, force=True)
            self.repo.delete_tag(self.repo.tags[version_tag(agent, number)])
        log.warning("set aside %s (differs from the knowledge base) as %s", version_tag(agent, number), name)
        return name

    def has_version(self, agent: str, number: int) -> bool:
        return version_tag(agent, number) in self.repo.tags

    def move_champion(self, agent: str, number: int) -> None:
        """Point ``<agent>/champion`` at version ``number``."""
        target = self._tag_commit(agent, number)
        self.clear_stale_locks()
        with self._writing():
            self.repo.create_tag(champion_tag(agent), ref=target, force=True)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Git and file-system errors of a write, as one ``VersionError`` saying what to do."""
        try:
            yield
        except (OSError, git.GitCommandError) as e:
            detail = (getattr(e, "stderr", "") or str(e)).strip().strip("'").replace("stderr: ", "")
            first = next((line.strip() for line in detail.splitlines() if line.strip()), type(e).__name__)
            raise VersionError(f"cannot write the agents repository at {self.path} ({first}): "
                               "fix the cause, then run `agenticrs agents check`") from e

    def champion_number(self, agent: str) -> int | None:
        """The version number the champion tag points at, or None."""
        name = champion_tag(agent)
        if name not in self.repo.tags:
            return None
        sha = self.repo.tags[name].commit.hexsha
        matches = [n for n, s in self.version_shas(agent).items() if s == sha]
        return max(matches) if matches else None

    def version_shas(self, agent: str) -> dict[int, str]:
        """Version number -> commit sha, from the tags."""
        prefix = f"{agent}/v"
        out: dict[int, str] = {}
        for tag in self.repo.tags:
            if tag.name.startswith(prefix) and tag.name[len(prefix):].isdigit():
                out[int(tag.name[len(prefix):])] = tag.commit.hexsha
        return dict(sorted(out.items()))

    def read_version(self, agent: str, number: int) -> StoredVersion:
        """The files of a version, rebuilt from ``source`` first if this replica lacks it.
        Raises ``VersionError`` when the tag is missing and no source has the version."""
        try:
            commit = self._tag_commit(agent, number)
        except VersionError:
            if self.source is None:
                raise
            found = self.source(agent, number)
            if found is None:
                raise VersionError(f"no version {version_tag(agent, number)} in the agents repository at {self.path}, "
                                   "and the knowledge base has no code for it: run `agenticrs agents check` in "
                                   "the workspace whose repository has it") from None
            self.rebuild_version(agent, number, *found)
            commit = self._tag_commit(agent, number)
        code, manifest = self._files_at(commit, agent)
        return StoredVersion(agent, number, commit.hexsha, code, manifest)

    def _tag_commit(self, agent: str, number: int) -> git.Commit:
        tag = version_tag(agent, number)
        if tag not in self.repo.tags:
            raise VersionError(f"no version {tag} in the agents repository: see `agenticrs agents versions {agent}`")
        return self.repo.tags[tag].commit

    @staticmethod
    def _files_at(commit: git.Commit, agent: str) -> tuple[str, dict[str, Any]]:
        folder = commit.tree / agent
        name = CODE_FILE if CODE_FILE in [b.name for b in folder.blobs] else PIPELINE_FILE
        code = (folder / name).data_stream.read().decode()
        manifest = yaml.safe_load((commit.tree / f"{agent}/agent.yaml").data_stream.read().decode())
        return code, manifest
