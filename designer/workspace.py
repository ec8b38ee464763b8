"""The workspace: knowledge base, agents repository, experiment artifacts and caches.

Layout of a workspace folder (default ``./runs``)::

    workspace.json   marker with the database URL chosen at ``agenticrs init``
    knowledge.db     the SQLite knowledge base (unless a PostgreSQL URL is used)
    agents/          git repository of agent versions (agents/<name>/agent.py + agent.yaml)
    experiments/<id> candidate file, logs, metrics and resolved config of each experiment
    cache/           data set and split caches, sandbox input folders
    prompts/         optional overrides of the prompt templates
    templates/agents optional overrides or additions of agent family templates
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from designer.errors import WorkspaceError
from knowledge_base.engine import safe_url

MARKER = "workspace.json"
ARCHIVE = "experiments-archive"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace. Create with ``Workspace.create``, open with ``Workspace.open``."""

    root: Path
    db_url: str

    @property
    def agents_repo(self) -> Path:
        return self.root / "agents"

    @property
    def experiments_dir(self) -> Path:
        return self.root / "experiments"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def config_file(self) -> Path:
        """Workspace defaults for ``design``/``evaluate`` (written by ``init --dataset``)."""
        return self.root / "config.toml"

    @property
    def prompts_dir(self) -> Path:
        return self.root / "prompts"

    @property
    def families_dir(self) -> Path:
        return self.root / "templates" / "agents"

    def experiment_dir(self, experiment_id: int) -> Path:
        return self.experiments_dir / f"{experiment_id:06d}"

    def has_experiment_folders(self) -> bool:
        return self.experiments_dir.is_dir() and any(p.name.isdigit() for p in self.experiments_dir.iterdir())

    def archive_foreign_experiments(self, newest_id: int | None) -> Path | None:
        """Move away experiment folders the knowledge base has no row for (ids above
        ``newest_id``, the newest experiment it holds): after the KB was rebuilt or replaced,
        new ids start again at 1 and must never reuse a folder with stale artifacts.

        Returns the archive folder ``experiments-archive/<UTC time>/``, or None if nothing
        was moved. Raises ``WorkspaceError`` if the folders cannot be moved.
        """
        if not self.experiments_dir.is_dir():
            return None
        foreign = sorted(p for p in self.experiments_dir.iterdir()
                         if p.name.isdigit() and int(p.name) > (newest_id or 0))
        if not foreign:
            return None
        archive = self.root / ARCHIVE / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            archive.mkdir(parents=True)
            for folder in foreign:
                folder.rename(archive / folder.name)
        except OSError as e:
            raise _not_writable(self.root, e) from e
        log.warning("moved %d experiment folder(s) the knowledge base does not know to %s", len(foreign), archive)
        return archive

    @staticmethod
    def default_db_url(root: Path) -> str:
        return f"sqlite:///{(root / 'knowledge.db').resolve()}"

    @classmethod
    def create(cls, root: Path, db_url: str | None = None) -> "Workspace":
        """Create (or re-open) the folders and the marker. Safe to call twice.

        A URL given here is remembered in the marker unless it carries a password,
        which is only ever read from ``--db``/``AGENTICRS_DB``.
        """
        root = root.resolve()
        try:
            for folder in (root, root / "experiments", root / "cache"):
                folder.mkdir(parents=True, exist_ok=True)
            marker = root / MARKER
            previous = json.loads(marker.read_text()) if marker.exists() else {}
            url = db_url or os.environ.get("AGENTICRS_DB") or previous.get("db_url") or cls.default_db_url(root)
            stored = url if safe_url(url) == url else previous.get("db_url", "")
            marker.write_text(json.dumps({"db_url": stored, "version": 1}, indent=2) + "\n")
        except OSError as e:
            raise _not_writable(root, e) from e
        return cls(root=root, db_url=url)

    @classmethod
    def open(cls, root: Path, db_url: str | None = None) -> "Workspace":
        """Open an existing workspace. Raises ``WorkspaceError`` saying how to create one."""
        root = root.resolve()
        marker = root / MARKER
        if not marker.is_file():
            if (root.parent / MARKER).is_file():   # e.g. the default ./runs, typed inside runs/
                raise WorkspaceError(
                    f"no workspace at {root}, but you are inside the workspace {root.parent}: pass "
                    f"--workspace {root.parent} (or run the command from {root.parent.parent})"
                )
            raise WorkspaceError(
                f"no workspace at {root}: run `agenticrs init --workspace {root}` "
                "(or set AGENTICRS_WORKSPACE to an existing one)"
            )
        stored = json.loads(marker.read_text()).get("db_url") or ""
        url = db_url or os.environ.get("AGENTICRS_DB") or stored
        if not url:
            raise WorkspaceError(
                f"the workspace at {root} uses a database whose URL holds a password: "
                "pass it with --db or AGENTICRS_DB"
            )
        return cls(root=root, db_url=url)


def _not_writable(root: Path, error: OSError) -> WorkspaceError:
    where = f" ({error.filename})" if error.filename else ""
    return WorkspaceError(
        f"cannot write the workspace at {root}: {error.strerror or error}{where}; choose a folder "
        "you can write with --workspace DIR (or AGENTICRS_WORKSPACE), or free space / fix its permissions"
    )
