"""The root of the sandbox package's exceptions: ``SandboxError``.

Under it: the runner's (``sandbox.runner.errors``: a misconfigured machine, a bad request,
an output that fails validation), the harness's (``DatasetError``: a data set that cannot
be loaded; ``InvalidRecommendationsError``: lists that break the agent contract) and the
evaluator's (``UnknownRewardError``). Failures of *candidate code* are never exceptions:
they are outcomes of a run.
"""
from __future__ import annotations


class SandboxError(Exception):
    """Root of every error raised by the ``sandbox`` package."""
