"""The runner's exception tree (one shallow tree, like httpx).

Failures of *candidate code* are never exceptions: they are ``RunResult.outcome`` values.
These exceptions are for the caller: a misconfigured machine, a bad request, an output
file that does not pass validation.
"""
from __future__ import annotations

from sandbox.errors import SandboxError   # the package's root (re-exported by sandbox.runner)


class InsecureSandboxError(SandboxError):
    """The best available tier cannot isolate the network or the sealed labels.

    Raised by ``make_runner`` unless ``allow_insecure=True`` (CLI: ``--allow-insecure-sandbox``).
    """


class SandboxSetupError(SandboxError):
    """The machine lacks something a tier needs (cgroup, bwrap, sandbox Python, root)."""


class InvalidRequestError(SandboxError):
    """A ``RunRequest`` points to missing, unreadable or non-empty paths."""


class InvalidOutputError(SandboxError):
    """``recommendations.npy`` is missing, not a regular file, or not a valid id matrix."""
