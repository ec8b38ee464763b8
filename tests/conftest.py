"""Fixtures shared by every test: a clean environment and the local ml-100k copy.

Every test starts without the user's ``AGENTICRS_*`` settings (a developer's
``AGENTICRS_DB`` or ``AGENTICRS_K`` must not change what a test sees). Two families are
kept because they describe the machine, not a user's choice: ``AGENTICRS_TEST_*`` (where
the test services and data are) and ``AGENTICRS_SANDBOX_*`` (where the sandbox Python and
state live).

``AGENTICRS_TEST_ML100K`` points at a verified MovieLens 100K folder (default
``../shared/data/ml-100k`` next to the project). Without one, tests that need it skip,
except under ``CI=true`` where they fail: CI must not pass by skipping its real data.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

KEPT_PREFIXES = ("AGENTICRS_TEST_", "AGENTICRS_SANDBOX_")
PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_ML100K = PROJECT.parent / "shared" / "data" / "ml-100k"


def user_settings_in_env(environ: dict[str, str] | os._Environ) -> list[str]:
    """The ``AGENTICRS_*`` variables a test must not inherit."""
    return [k for k in environ if k.startswith("AGENTICRS_") and not k.startswith(KEPT_PREFIXES)]


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in user_settings_in_env(os.environ):
        monkeypatch.delenv(name)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def ml100k_path() -> Path:
    """Where the local ml-100k copy is expected (``AGENTICRS_TEST_ML100K`` or the default)."""
    return Path(os.environ.get("AGENTICRS_TEST_ML100K") or DEFAULT_ML100K)


def require_ml100k() -> Path:
    """The ml-100k folder; skips without it, fails under ``CI=true``."""
    path = ml100k_path()
    if (path / "u.data").is_file():
        return path
    reason = f"no ml-100k copy at {path} (set AGENTICRS_TEST_ML100K to a folder holding u.data)"
    if in_ci():
        pytest.fail(reason + " -- CI=true: tests on real data must run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def ml100k_dir() -> Path:
    """The local MovieLens 100K folder (see ``require_ml100k``)."""
    return require_ml100k()
