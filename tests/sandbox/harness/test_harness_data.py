"""Interactions: invariants, fingerprint, subset, TrainData hand-off."""
from __future__ import annotations

import numpy as np
import pytest

from sandbox.harness.data import DatasetError, Interactions, check_unique_pairs, dense_ids
from sandbox.sdk.agent_sdk import TrainData


def _tiny(**overrides) -> Interactions:
    fields = dict(user=[0, 0, 1, 2], item=[1, 2, 0, 2], timestamp=[5, 6, 1, 3],
                  rating=[4, 5, 3, 1], n_users=3, n_items=3,
                  item_features=np.eye(3), name="tiny")
    fields.update(overrides)
    return Interactions(**fields)


def test_arrays_are_typed_and_read_only():
    data = _tiny()
    assert data.user.dtype == np.int64 and data.rating.dtype == np.float32
    assert data.item_features.dtype == np.float32
    with pytest.raises(ValueError):
        data.user[0] = 2


def test_caller_arrays_stay_writable():
    user = np.array([0, 1], dtype=np.int64)
    Interactions(user, [0, 0], [1, 2], [1.0, 1.0], 2, 1)
    user[0] = 1                                   # the dataclass copied, did not freeze ours


@pytest.mark.parametrize("overrides, message", [
    (dict(user=[0, 0, 1, 3]), "user ids must lie in"),
    (dict(item=[0, 1]), "equal length"),
    (dict(item_features=np.eye(2)), "item_features must have shape"),
])
def test_invalid_interactions_raise(overrides, message):
    with pytest.raises(DatasetError, match=message):
        _tiny(**overrides)


def test_fingerprint_depends_on_content_not_name():
    a, b = _tiny(), _tiny(name="other")
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64
    assert _tiny(timestamp=[5, 6, 1, 4]).fingerprint() != a.fingerprint()
    assert _tiny(item_features=None).fingerprint() != a.fingerprint()


def test_subset_keeps_order_sizes_and_features():
    data = _tiny()
    part = data.subset(np.array([True, False, True, True]))
    assert part.user.tolist() == [0, 1, 2] and part.n_items == 3
    assert part.item_features is data.item_features
    assert data.subset([3, 0]).timestamp.tolist() == [3, 5]


def test_to_train_data_gives_writable_copies():
    data = _tiny()
    train = data.to_train_data()
    assert isinstance(train, TrainData) and len(train) == 4
    train.rating[0] = 0.0
    assert data.rating[0] == 4.0
    assert train.matrix().shape == (3, 3)


def test_dense_ids_sorted_vocabulary():
    dense, vocabulary = dense_ids(np.array(["b", "a", "b", "c"]))
    assert dense.tolist() == [1, 0, 1, 2] and vocabulary.tolist() == ["a", "b", "c"]


def test_duplicate_pairs_name_count_and_example():
    with pytest.raises(DatasetError, match=r"2 duplicate rows .* user 'u1', item 'x' at rows 0 and 2"):
        check_unique_pairs(np.array([1, 0, 1, 1]), np.array([0, 0, 0, 0]),
                           user_ids=np.array(["u0", "u1"]), item_ids=np.array(["x"]))
