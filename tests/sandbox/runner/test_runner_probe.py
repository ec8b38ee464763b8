"""Tier probing and the fail-closed policy of make_runner."""
from __future__ import annotations

import logging
import os

import pytest

from conftest import ORDER, best_tier, require_tier, run
from sandbox.outcome import Outcome
from sandbox.runner import (InsecureSandboxError, IsolationTier, Runner, SandboxError,
                            make_runner, probe_tier)

pytestmark = pytest.mark.sandbox


def test_probe_reports_a_tier_and_why_it_is_degraded():
    tier, reasons = probe_tier()
    assert isinstance(tier, IsolationTier)
    assert (reasons == []) == (tier is IsolationTier.A)
    if os.environ.get("CI") == "true":
        assert tier is IsolationTier.A, reasons


def test_forced_insecure_tier_is_refused_without_the_flag():
    with pytest.raises(InsecureSandboxError, match="--allow-insecure-sandbox") as info:
        make_runner(force_tier=IsolationTier.C)
    assert isinstance(info.value, SandboxError)


def test_forced_insecure_tier_warns_and_is_recorded(workspace, caplog):
    with caplog.at_level(logging.WARNING, logger="sandbox.runner"):
        runner = make_runner(force_tier=IsolationTier.C, allow_insecure=True)
    assert isinstance(runner, Runner) and runner.tier is IsolationTier.C
    assert any("INSECURE" in r.getMessage() for r in caplog.records)
    result, _, _ = run(IsolationTier.C, workspace, "popularity.py")
    assert result.tier is IsolationTier.C and result.outcome is Outcome.COMPLETED


@pytest.mark.parametrize("tier", ORDER[1:], ids=["tierB", "tierC"])
def test_degraded_tiers_warn(tier, caplog):
    require_tier(tier)
    with caplog.at_level(logging.WARNING, logger="sandbox.runner"):
        make_runner(force_tier=tier, allow_insecure=True)
    assert any(f"tier {tier.value}" in r.getMessage() for r in caplog.records)


def test_default_runner_uses_the_best_tier():
    best, _ = best_tier()
    if not best.secure:
        pytest.skip("best tier is insecure here; make_runner() refuses by design")
    assert make_runner().tier is best
