"""`design` checks every flag before any work: one line, exit 2, nothing loaded or run."""
from __future__ import annotations

import pytest

from tests.integration.clirun import cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("flags, says", [
    (["--sampler", "bogus"], "--sampler 'bogus' is not one of: tpe, cmaes, random"),
    (["--proposer", "bogus"], "--proposer 'bogus' is not one of: search, llm, mixed"),
    (["--prices", "abc"], "--prices must be 'IN,OUT'"),
    (["--parent-policy", "worst"], "--parent-policy 'worst' is not one of: best, epsilon"),
    (["--executor", "spark"], "--executor 'spark' is not one of: local, ray"),
    (["--proposer", "mixed"], "--proposer mixed needs --model"),
])
def test_bad_flags_fail_before_loading_data(tmp_path, flags, says):
    ws = tmp_path / "ws"
    cli(ws, "init")
    result = cli(ws, "design", "--agent", "recommender", "--iterations", "1", *flags, check=False)
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr
    assert "loading" not in result.stderr                      # before the data set
    assert cli(ws, "history", "--json").stdout.strip() == "[]"  # nothing ran


def test_version_prints_the_installed_version(tmp_path):
    from importlib.metadata import version
    result = cli(tmp_path / "ws", "--version")
    assert result.stdout.strip() == f"agenticrs {version('agenticrs')}"
    assert not (tmp_path / "ws").exists()                      # nothing created
