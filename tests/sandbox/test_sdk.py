"""agent_sdk: top-k helpers keep the recommendation contract (including -1 padding) in bounded memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from sandbox.sdk import agent_sdk
from sandbox.sdk.agent_sdk import topk_unseen, topk_unseen_blocks


def _seen(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    user = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    item = np.array([i for r in rows for i in r], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(item)), (user, item)), shape=(len(rows), n_items))


def test_fewer_than_k_unseen_items_are_padded_with_minus_one_not_seen_items():
    seen = _seen([[0, 1, 2, 3], [], [0, 1, 2, 3, 4, 5]], n_items=6)
    scores = np.tile(np.arange(6, 0, -1, dtype=float), (3, 1))  # item 0 best
    recs = topk_unseen(scores, seen, np.arange(3), 4)
    assert recs.dtype == np.int64 and recs.shape == (3, 4)
    assert recs.tolist() == [[4, 5, -1, -1], [0, 1, 2, 3], [-1, -1, -1, -1]]


def test_k_larger_than_the_catalogue_still_gives_k_columns():
    recs = topk_unseen(np.array([[0.1, 0.3, 0.2]]), _seen([[1]], 3), np.array([0]), 5)
    assert recs.tolist() == [[2, 0, -1, -1, -1]]


def test_minus_inf_and_nan_scores_are_never_recommended():
    scores = np.array([[np.nan, -np.inf, 1.0, 2.0, np.inf]])
    recs = topk_unseen(scores, _seen([[]], 5), np.array([0]), 4)
    assert recs.tolist() == [[4, 3, 2, -1]]


def test_scores_are_not_modified_and_integer_scores_work():
    scores = np.array([[3, 1, 2]])
    assert topk_unseen(scores, _seen([[0]], 3), np.array([0]), 2).tolist() == [[2, 1]]
    assert scores.tolist() == [[3, 1, 2]]


def test_blocks_give_the_same_lists_as_one_dense_matrix():
    rng = np.random.default_rng(0)
    n_users, n_items = 57, 40
    seen = sp.random(n_users, n_items, density=0.3, format="csr", random_state=1)
    scores = rng.random((n_users, n_items))
    users = rng.permutation(n_users)
    dense = topk_unseen(scores[users], seen, users, 10)
    calls = []

    def score(block):
        calls.append(len(block))
        return scores[block]
    blocked = topk_unseen_blocks(score, seen, users, 10, rows=8)
    assert np.array_equal(blocked, dense)
    assert max(calls) == 8 and sum(calls) == n_users
    sparse = topk_unseen_blocks(lambda b: sp.csr_matrix(scores[b]), seen, users, 10)
    assert np.array_equal(sparse, dense)


def test_block_rows_follow_the_byte_budget():
    assert agent_sdk.block_rows(10_700) == agent_sdk.BLOCK_BYTES // (10_700 * 8)
    assert agent_sdk.block_rows(10**9) == 1


def test_score_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        topk_unseen_blocks(lambda b: np.zeros((len(b), 3)), _seen([[]] * 4, 5), np.arange(4), 2)


@pytest.mark.parametrize("use_blocks", [False, True])
def test_memory_is_bounded_by_the_block_not_by_the_number_of_users(monkeypatch, use_blocks):
    """20k users x 1k items would be 160 MB as float64; a 1 MB block keeps the peak small."""
    monkeypatch.setattr(agent_sdk, "BLOCK_BYTES", 2**20)
    n_users, n_items = 20_000, 1_000
    popularity = np.random.default_rng(0).random(n_items)
    seen = sp.csr_matrix((np.ones(n_users), (np.arange(n_users), np.arange(n_users) % n_items)),
                         shape=(n_users, n_items))
    users = np.arange(n_users)
    tracemalloc.start()
    if use_blocks:
        recs = topk_unseen_blocks(lambda b: np.broadcast_to(popularity, (len(b), n_items)), seen, users, 10)
    else:
        recs = topk_unseen(np.broadcast_to(popularity, (n_users, n_items)), seen, users, 10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert recs.shape == (n_users, 10) and (recs >= 0).all()


def _binary(n_users: int, n_items: int, density: float, seed: int = 0) -> sp.csr_matrix:
    X = sp.random(n_users, n_items, density=density, format="csr", random_state=seed)
    X.data[:] = 1.0
    return X


def test_item_gram_in_column_blocks_equals_the_sparse_product():
    X = _binary(200, 90, 0.1)
    assert np.allclose(agent_sdk.item_gram(X, columns=7), (X.T @ X).toarray())


def test_ease_weights_match_the_textbook_inverse():
    X = _binary(300, 120, 0.1)
    P = np.linalg.inv((X.T @ X).toarray() + 5.0 * np.eye(120))
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    assert np.allclose(agent_sdk.ease_weights(X, 5.0), B, atol=1e-12)


def test_ease_weights_hold_one_items_by_items_matrix_not_three():
    """gram + inverse + B would be 3 dense matrices; the in-place Cholesky keeps one."""
    n_items = 800
    X = _binary(2000, n_items, 0.02)
    dense = n_items * n_items * 8
    agent_sdk.ease_weights(_binary(20, 5, 0.5), 1.0)  # first call imports scipy.linalg
    tracemalloc.start()
    agent_sdk.ease_weights(X, 10.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1.5 * dense, f"peak {peak / dense:.2f} x one dense matrix"


def test_ease_weights_say_when_the_gram_matrix_is_singular():
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        agent_sdk.ease_weights(sp.csr_matrix((3, 4)), 0.0)


def test_ease_weights_in_float32_are_the_float64_solution_rounded():
    X = _binary(300, 120, 0.1)
    B32 = agent_sdk.ease_weights(X, 5.0, dtype=np.float32)
    assert B32.dtype == np.float32
    assert np.allclose(B32, agent_sdk.ease_weights(X, 5.0), atol=1e-6)
