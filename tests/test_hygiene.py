"""The test net itself: a clean environment, a default timeout, real data required in CI."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import require_ml100k

ROOT_CONFTEST = Path(__file__).with_name("conftest.py")


def test_a_users_agenticrs_settings_never_reach_a_test(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ROOT_CONFTEST, pytester.path / "conftest.py")
    pytester.makepyfile(test_env="""
        import os

        def test_env():
            assert "AGENTICRS_DB" not in os.environ and "AGENTICRS_K" not in os.environ
            assert os.environ["AGENTICRS_TEST_PG_URL"] == "kept"
            assert os.environ["AGENTICRS_SANDBOX_PYTHON"] == "kept too"
    """)
    monkeypatch.setenv("AGENTICRS_DB", "postgresql+psycopg://someone@prod/kb")
    monkeypatch.setenv("AGENTICRS_K", "3")
    monkeypatch.setenv("AGENTICRS_TEST_PG_URL", "kept")
    monkeypatch.setenv("AGENTICRS_SANDBOX_PYTHON", "kept too")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_every_test_has_a_default_timeout(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) > 0


def test_the_ml100k_location_comes_from_the_env_and_ci_fails_without_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTICRS_TEST_ML100K", str(tmp_path / "missing"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="AGENTICRS_TEST_ML100K"):
        require_ml100k()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_ml100k()
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "u.data").write_text("1\t1\t5\t881250949\n")
    monkeypatch.setenv("AGENTICRS_TEST_ML100K", str(tmp_path / "copy"))
    assert require_ml100k() == tmp_path / "copy"
