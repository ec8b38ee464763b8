"""The designer's exception tree. Messages say what to do next."""
from __future__ import annotations


class DesignerError(Exception):
    """Root of errors a user of the designer can hit."""


class WorkspaceError(DesignerError):
    """The workspace is missing or unusable."""


class UsageError(DesignerError):
    """A command was called with arguments that cannot work (CLI exit code 2)."""


class VersionError(DesignerError):
    """The agents repository and the knowledge base disagree, or a version is missing."""
