"""Open what a command needs: workspace, knowledge base, agents repository, families."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from designer.families import load_families
from designer.settings import DesignSettings, load_settings
from designer.release import Releaser
from designer.versions import AgentRepository
from designer.workspace import Workspace
from knowledge_base.store import Store


@dataclass
class Options:
    """Global options given before or after the command."""

    workspace: Path
    db: str | None


def archive_foreign_experiments(workspace: Workspace, store: Store) -> Path | None:
    """Move away experiment folders ``store`` has no row for (a rebuilt, replaced or restored
    knowledge base), so that a new experiment never reuses a folder; see ``Workspace``."""
    if not workspace.has_experiment_folders():
        return None
    newest = store.list_experiments(limit=1, newest_first=True)
    return workspace.archive_foreign_experiments(newest[0].id if newest else None)


class Services:
    """Lazily opened collaborators for one CLI invocation."""

    def __init__(self, options: Options, create: bool = False):
        self.options = options
        self.workspace = (Workspace.create(options.workspace, options.db) if create
                          else Workspace.open(options.workspace, options.db))

    def run_settings(self, config: Path | None, *, workers: int = 1, limits: dict[str, Any] | None = None,
                     **flags: Any) -> DesignSettings:
        """The settings of a run: defaults < the TOML file (``--config``, else the workspace's)
        < ``AGENTICRS_*`` < the flags given (None = not given). The limit flags merge into
        ``[limits]`` key by key, validated with the rest; each worker gets a sandbox slot."""
        config = config or (self.workspace.config_file if self.workspace.config_file.is_file() else None)
        settings = load_settings(config, workspace=self.workspace.root, limits=limits or None, **flags)
        if settings.slots < workers:
            settings = settings.model_copy(update={"slots": workers})
        return settings

    @cached_property
    def store(self) -> Store:
        store = Store.open(self.workspace.db_url)
        store.check_schema()
        archive_foreign_experiments(self.workspace, store)
        return store

    @cached_property
    def repo(self) -> AgentRepository:
        return AgentRepository(self.workspace.agents_repo)

    @cached_property
    def releaser(self) -> Releaser:
        return Releaser(self.store, self.repo)

    @cached_property
    def families(self) -> dict[str, Any]:
        override = self.workspace.families_dir
        return load_families(override if override.is_dir() else None)
