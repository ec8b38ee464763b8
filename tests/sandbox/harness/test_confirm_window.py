"""The confirmation window: the validation protocol moved one window back, inside train."""
from __future__ import annotations

import numpy as np

from sandbox.harness.data import Interactions
from sandbox.harness.datasets import load_dataset
from sandbox.harness.report import eval_users
from sandbox.harness.splits import split_interactions


def _one_user(n: int) -> Interactions:
    return Interactions(np.zeros(n), np.arange(n), np.arange(n) * 10, np.ones(n), 1, n)


def test_window_is_the_slice_of_train_just_before_validation():
    split = split_interactions(_one_user(25))                   # 19 train, 3 val, 3 test
    assert split.validation.item.tolist() == [19, 20, 21]
    assert split.confirm.item.tolist() == [16, 17, 18]          # same size, one window back
    assert split.confirm_train.item.tolist() == list(range(16))


def test_a_user_with_no_train_left_before_the_window_is_not_confirmed():
    split = split_interactions(_one_user(3))                    # 1 train, 1 val, 1 test
    assert len(split.confirm) == 0 and split.confirm_train.item.tolist() == [0]


def test_window_never_holds_validation_or_test_rows_and_keeps_user_order():
    split = split_interactions(load_dataset("synthetic", n_users=300, n_items=200))
    rows = np.flatnonzero(split.confirm_assignment == 1)
    assert len(rows) > 0 and set(split.assignment[rows].tolist()) == {0}
    prefix = split.confirm_assignment == 0
    assert np.all(split.assignment[prefix] == 0)
    assert prefix.sum() + len(rows) == len(split.train)
    for user in eval_users(split, "confirm")[:50]:
        last_prefix = split.confirm_train.timestamp[split.confirm_train.user == user].max()
        window = split.confirm.timestamp[split.confirm.user == user]
        first_val = split.validation.timestamp[split.validation.user == user].min()
        assert last_prefix <= window.min() and window.max() <= first_val
        assert len(window) == np.count_nonzero(split.validation.user == user)


def test_global_window_is_the_latest_train_rows():
    data = load_dataset("synthetic", n_users=200, n_items=100)
    split = split_interactions(data, "global_temporal")
    assert len(split.confirm) == len(split.validation)
    assert split.confirm.timestamp.min() >= split.confirm_train.timestamp.max()
