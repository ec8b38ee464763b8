"""Splits: the user_temporal and global_temporal protocols, determinism and the cache."""
from __future__ import annotations

import numpy as np
import pytest

from sandbox.harness.data import DatasetError, Interactions
from sandbox.harness.datasets import load_dataset
from sandbox.harness.splits import holdout_size, split_interactions


def _one_user(timestamps) -> Interactions:
    n = len(timestamps)
    return Interactions(np.zeros(n), np.arange(n), timestamps, np.ones(n), 1, n)


@pytest.mark.parametrize("n, h", [(1, 0), (2, 0), (3, 1), (14, 1), (15, 2), (24, 2),
                                  (25, 3), (35, 4), (45, 5), (100, 10)])
def test_holdout_size_rounds_half_up(n, h):
    assert holdout_size(np.array([n]))[0] == h


def test_user_temporal_takes_the_latest_and_keeps_file_order_on_ties():
    timestamps = np.array([50, 10, 10, 40, 10, 30, 20, 60, 70, 80, 90, 95, 99, 100, 101])
    split = split_interactions(_one_user(timestamps))          # n = 15 -> 2 + 2
    assert split.test.item.tolist() == [13, 14]
    assert split.validation.item.tolist() == [11, 12]
    order = np.argsort(timestamps, kind="stable")
    assert order[:3].tolist() == [1, 2, 4]                    # ties keep file order ...
    ties = _one_user(np.array([5, 1, 1, 1, 1]))               # ... and decide the parts
    tied = split_interactions(ties)
    assert tied.test.item.tolist() == [0] and tied.validation.item.tolist() == [4]
    assert tied.train.item.tolist() == [1, 2, 3]


def test_users_with_fewer_than_three_interactions_stay_in_train():
    data = Interactions([0, 0, 1, 1, 1], [0, 1, 0, 1, 2], [1, 2, 1, 2, 3], np.ones(5), 2, 3)
    split = split_interactions(data)
    assert split.train.user.tolist() == [0, 0, 1]
    assert split.validation.item.tolist() == [1] and split.test.item.tolist() == [2]


def test_user_temporal_on_synthetic_is_a_partition_in_time():
    data = load_dataset("synthetic", n_users=500, n_items=300)
    split = split_interactions(data)
    assert len(split.train) + len(split.validation) + len(split.test) == len(data)
    last_train = np.full(data.n_users, -1)
    np.maximum.at(last_train, split.train.user, split.train.timestamp)
    first_val = np.full(data.n_users, 2**62)
    np.minimum.at(first_val, split.validation.user, split.validation.timestamp)
    assert (last_train <= first_val).all()
    counts = data.user_counts()
    np.testing.assert_array_equal(split.test.user_counts(), holdout_size(counts))
    np.testing.assert_array_equal(split.validation.user_counts(), holdout_size(counts))
    assert split.train_plus_validation().fingerprint() == data.subset(split.assignment < 2).fingerprint()
    assert split.train.n_items == data.n_items and split.test.item_features is data.item_features


def test_global_temporal_is_80_10_10_by_time():
    data = load_dataset("synthetic", n_users=300, n_items=200)
    split = split_interactions(data, "global_temporal")
    n = len(data)
    assert (len(split.train), len(split.validation)) == ((8 * n + 5) // 10, (9 * n + 5) // 10 - (8 * n + 5) // 10)
    assert split.train.timestamp.max() <= split.validation.timestamp.min()
    assert split.validation.timestamp.max() <= split.test.timestamp.min()


def test_split_is_deterministic_and_cached(tmp_path):
    data = load_dataset("synthetic", n_users=300, n_items=200)
    first = split_interactions(data, cache_dir=tmp_path)
    files = list(tmp_path.glob("split-*.npz"))
    assert [f.name for f in files] == [f"split-{first.fingerprint}.npz"]
    second = split_interactions(data, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.assignment, second.assignment)
    assert first.fingerprint != split_interactions(data, "global_temporal").fingerprint


def test_corrupt_cache_is_ignored(tmp_path):
    data = load_dataset("synthetic", n_users=100, n_items=100)
    split = split_interactions(data, cache_dir=tmp_path)
    (tmp_path / f"split-{split.fingerprint}.npz").write_bytes(b"garbage")
    again = split_interactions(data, cache_dir=tmp_path)
    np.testing.assert_array_equal(split.assignment, again.assignment)


def test_unknown_method_and_part():
    data = load_dataset("synthetic", n_users=50, n_items=50)
    with pytest.raises(DatasetError, match="user_temporal, global_temporal"):
        split_interactions(data, "random")
    with pytest.raises(DatasetError, match="train, validation, test, confirm_train, confirm"):
        split_interactions(data).part("dev")
