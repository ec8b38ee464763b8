"""Run untrusted candidate code isolated, limited and observable.

Public API::

    tier, reasons = probe_tier()
    runner = make_runner(allow_insecure=False, force_tier=None, slot=0, python=None)
    result = runner.run(RunRequest(candidate=..., inputs=..., output=...,
                                   config=RunConfig(k=10, params={...}), limits=Limits()))
    recs = result.recommendations     # COMPLETED: the checked lists, read once from the output

Failures of candidate code are ``RunResult.outcome`` values, never exceptions; only
``SandboxError`` subclasses are raised (set-up problems, bad requests, invalid output
when calling ``read_recommendations`` directly). See ``docs`` in ``runner.py`` and the
tier descriptions on ``IsolationTier``.
"""
from sandbox.runner.errors import (InsecureSandboxError, InvalidOutputError, InvalidRequestError,
                                   SandboxError, SandboxSetupError)
from sandbox.runner.models import IsolationTier, Runner, RunConfig, RunRequest, RunResult
from sandbox.runner.output import read_recommendations
from sandbox.runner.probe import make_runner, probe_tier
from sandbox.runner.runner import SandboxRunner

__all__ = ["IsolationTier", "RunConfig", "RunRequest", "RunResult", "Runner", "SandboxRunner", "probe_tier",
           "make_runner", "read_recommendations", "SandboxError", "InsecureSandboxError",
           "InvalidOutputError", "InvalidRequestError", "SandboxSetupError"]
