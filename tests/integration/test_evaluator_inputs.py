"""What the Evaluator hands the sandbox: fitting rows only, never a held-out interaction.

The runner is replaced by one that records its request, so this checks the host side of
the contract (the input folder, the config) for the real split of a real data set.
"""
from __future__ import annotations

import numpy as np
import pytest

from sandbox.evaluation import EvaluationJob, Evaluator
from sandbox.harness import split_interactions
from sandbox.harness.datasets import load_dataset
from sandbox.limits import Limits
from sandbox.sdk.agent_sdk import TrainData


class Recorded(Exception):
    """Raised by the recording runner once it has the request (nothing runs)."""


class RecordingRunner:
    def __init__(self):
        self.requests = []

    def run(self, request):
        self.requests.append(request)
        raise Recorded


def rows(data) -> set[tuple[int, int, int]]:
    return set(zip(data.user.tolist(), data.item.tolist(), data.timestamp.tolist()))


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    data = load_dataset("synthetic", seed=0, n_users=300, n_items=200,
                        cache_dir=tmp_path_factory.mktemp("datasets"))
    return split_interactions(data, method="user_temporal")


@pytest.mark.parametrize(("stage", "fits_on", "held_out"), [
    ("validation", ("train",), ("validation", "test")),
    ("test", ("train", "validation"), ("test",)),
])
def test_no_held_out_interaction_reaches_the_sandbox(split, tmp_path, stage, fits_on, held_out):
    runner = RecordingRunner()
    evaluator = Evaluator(runner, split, tmp_path / "cache")
    job = EvaluationJob(code="class Agent: pass\n", params={"l2": 1.0}, stage=stage, k=10, seed=0,
                        limits=Limits())
    with pytest.raises(Recorded):
        evaluator.evaluate(job, tmp_path / "run")
    request = runner.requests[0]

    given = TrainData.load(request.inputs)
    seen = rows(given)
    assert seen == set().union(*(rows(split.part(p)) for p in fits_on))
    for part in held_out:
        assert not seen & rows(split.part(part)), f"{part} interactions reached the sandbox"
    target = "validation" if stage == "validation" else "test"
    users = np.load(request.inputs / "users.npy")
    assert np.array_equal(users, np.unique(split.part(target).user))
    assert {p.name for p in request.inputs.iterdir()} <= {"train.npz", "users.npy", "item_features.npy",
                                                          "user_features.npy"}
    assert request.config.model_fields_set == {"k", "params", "fidelity", "seed"}
    assert not any(p.name.startswith(("validation", "test")) for p in (tmp_path / "run").rglob("*"))
