"""Contract suite of the runner, parametrised over every available isolation tier."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ORDER, SMALL, K, N_ITEMS, N_USERS, assert_clean, observed, run
from sandbox.outcome import Outcome
from sandbox.runner import IsolationTier, RunResult, read_recommendations

pytestmark = pytest.mark.sandbox
TIERS = pytest.mark.parametrize("tier", ORDER, ids=lambda t: f"tier{t.value}")


@TIERS
def test_popularity_completes_with_valid_recommendations(tier, workspace):
    result, output, run_id = run(tier, workspace, "popularity.py")
    assert result.outcome is Outcome.COMPLETED, result.message + result.stderr_tail
    assert result.tier is tier and result.exit_code == 0
    recs = read_recommendations(output, N_USERS, K, N_ITEMS)
    assert recs.shape == (N_USERS, K) and recs.dtype == np.int64
    assert result.wall_seconds > 0 and result.cpu_seconds and result.peak_memory_mb
    assert result.fit_seconds is not None and result.recommend_seconds is not None
    assert_clean(run_id, tier)


@TIERS
def test_exception_is_failed_with_traceback(tier, workspace):
    result, _, run_id = run(tier, workspace, mode="no_such_mode")
    assert result.outcome is Outcome.FAILED
    assert result.error_type == "KeyError" and "fit" in result.message
    assert "m_no_such_mode" in result.traceback_tail and "KeyError" in result.stderr_tail
    assert_clean(run_id, tier)


@TIERS
@pytest.mark.parametrize("candidate, error_type", [("syntax_error.py", "SyntaxError"),
                                                    ("import_error.py", "ModuleNotFoundError")])
def test_candidate_that_cannot_import_is_failed(tier, workspace, candidate, error_type):
    result, _, _ = run(tier, workspace, candidate)
    assert result.outcome is Outcome.FAILED and result.error_type == error_type
    assert "import" in result.message


@TIERS
def test_memory_error_is_out_of_memory(tier, workspace):
    result, _, _ = run(tier, workspace, mode="memerror")
    assert result.outcome is Outcome.OUT_OF_MEMORY and result.error_type == "MemoryError"


@TIERS
def test_threads_and_fidelity_are_set_before_candidate_code(tier, workspace):
    result, output, _ = run(tier, workspace, mode="observe_threads")
    assert result.outcome is Outcome.COMPLETED, result.message
    env = observed(result)["env"]
    assert env["OMP_NUM_THREADS"] == "2" and env["AGENTICRS_FIDELITY"] == "0.5"


@TIERS
def test_result_is_a_frozen_value(tier, workspace):
    result, _, _ = run(tier, workspace, "popularity.py")
    assert result.recommendations is not None and result.recommendations.shape[1] == K
    # the lists it read are not serialised: everything else round-trips
    assert RunResult.model_validate(result.model_dump()) == result.model_copy(update={"recommendations": None})
    with pytest.raises(Exception):
        result.outcome = Outcome.FAILED  # type: ignore[misc]


def test_torch_threads_are_set_when_the_candidate_imports_torch(workspace):
    result, output, _ = run(IsolationTier.A, workspace, mode="observe_threads", torch=True,
                            limits=SMALL.model_copy(update={"memory_mb": 1024, "threads": 1}))
    assert result.outcome is Outcome.COMPLETED, result.message + result.stderr_tail
    assert observed(result)["torch_threads"] == 1
