"""Scoring stays sparse: memory grows with users x k, never with users x items."""
from __future__ import annotations

import tracemalloc

import numpy as np

from sandbox.harness import Interactions, relevant_matrix, score_recommendations


def test_scoring_many_users_never_builds_a_users_by_items_matrix():
    rng = np.random.default_rng(0)
    n_users, n_items, per_user = 20_000, 5_000, 8
    user = np.repeat(np.arange(n_users), per_user)
    item = rng.integers(0, n_items, len(user))
    keep = np.unique(user * n_items + item, return_index=True)[1]
    train = Interactions(user[keep], item[keep], np.arange(len(keep)), np.ones(len(keep)), n_users,
                         n_items, item_features=rng.random((n_items, 8)))
    target = Interactions(np.arange(n_users), rng.integers(0, n_items, n_users), np.zeros(n_users),
                          np.ones(n_users), n_users, n_items)
    users = np.arange(n_users)
    recs = np.argsort(rng.random((n_users, 50)), axis=1)[:, :10] + n_items - 50  # tail items
    tracemalloc.start()
    report = score_recommendations(recs, relevant_matrix(target, users), users=users, train=train,
                                   k=10, checked=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dense_bool = n_users * n_items  # 100 MB: even one boolean users x items matrix
    assert peak < dense_bool / 3, f"peak {peak / 2**20:.0f} MB"
    assert len(report.per_user["ndcg@10"]) == n_users
