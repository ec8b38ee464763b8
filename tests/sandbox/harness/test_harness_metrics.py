"""Accuracy metrics against ranx (an independent implementation) and by hand on edge cases."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sandbox.harness import metrics as m

ranx = pytest.importorskip("ranx")


def _random_case(seed: int, n_users: int = 400, n_items: int = 60, width: int = 15):
    """Random lists (some padded with -1) and non-empty random relevant sets."""
    rng = np.random.default_rng(seed)
    recs = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :width].astype(np.int64)
    lengths = rng.integers(0, width + 1, n_users)
    recs[np.arange(width)[None, :] >= lengths[:, None]] = -1
    sizes = rng.integers(1, 25, n_users)
    rows = np.repeat(np.arange(n_users), sizes)
    cols = np.concatenate([rng.choice(n_items, s, replace=False) for s in sizes])
    relevant = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    return recs, relevant


def _ranx_scores(recs, relevant, metrics: list[str]) -> dict[str, np.ndarray]:
    """ranx per-user scores; query ids are zero-padded so that ranx's order = row order."""
    qrels, run = {}, {}
    for r in range(recs.shape[0]):
        qid = f"q{r:06d}"
        qrels[qid] = {f"d{i}": 1 for i in relevant[r].indices}
        items = [i for i in recs[r] if i >= 0]
        # ranx drops queries with empty runs: a never-relevant dummy keeps the row
        run[qid] = {f"d{i}": float(len(items) - j) for j, i in enumerate(items)} or {"none": 0.0}
    out = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), metrics, return_mean=False)
    return out if len(metrics) > 1 else {metrics[0]: out}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 10, 15])
def test_ranking_metrics_match_ranx(seed, k):
    recs, relevant = _random_case(seed)
    ours = m.ranking_metrics(recs, relevant, k)
    theirs = _ranx_scores(recs, relevant, [f"ndcg@{k}", f"mrr@{k}", f"hit_rate@{k}",
                                            f"precision@{k}", f"recall@{k}"])
    for name in ("ndcg", "mrr", "hit_rate", "precision"):
        np.testing.assert_allclose(ours[name], theirs[f"{name}@{k}"], rtol=1e-9, atol=1e-12)
    # ranx divides recall by |T|; ours by min(k, |T|): equal where |T| <= k, else scaled
    sizes = np.diff(relevant.indptr)
    expected = theirs[f"recall@{k}"] * sizes / np.minimum(sizes, k)
    np.testing.assert_allclose(ours["recall"], expected, rtol=1e-9, atol=1e-12)
    assert (sizes <= k).any() and (sizes > k).any() or k == 15


def test_single_metric_functions_agree_with_ranking_metrics():
    recs, relevant = _random_case(7)
    together = m.ranking_metrics(recs, relevant, 10)
    for name, fn in [("ndcg", m.ndcg_at_k), ("recall", m.recall_at_k), ("mrr", m.mrr_at_k),
                     ("hit_rate", m.hit_rate_at_k), ("precision", m.precision_at_k)]:
        np.testing.assert_array_equal(fn(recs, relevant, 10), together[name])


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = np.repeat(np.arange(len(rows)), [len(x) for x in rows])
    c = np.array([i for x in rows for i in x], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_one_relevant_item_at_each_rank():
    recs = np.array([[0, 1, 2], [1, 0, 2], [1, 2, 0], [1, 2, 3]])
    relevant = _csr([[0]] * 4, 5)
    out = m.ranking_metrics(recs, relevant, 3)
    np.testing.assert_allclose(out["ndcg"], [1.0, 1 / np.log2(3), 0.5, 0.0])
    np.testing.assert_allclose(out["mrr"], [1.0, 0.5, 1 / 3, 0.0])
    np.testing.assert_allclose(out["recall"], [1, 1, 1, 0])
    np.testing.assert_allclose(out["precision"], [1 / 3, 1 / 3, 1 / 3, 0])


def test_k_larger_than_catalogue_pads_lists():
    recs = np.array([[2, 0, 1]])                  # the whole 3-item catalogue, asked k=10
    relevant = _csr([[0, 1]], 3)
    out = m.ranking_metrics(recs, relevant, 10)
    ideal = 1 + 1 / np.log2(3)
    np.testing.assert_allclose(out["ndcg"], [(1 / np.log2(3) + 0.5) / ideal])
    np.testing.assert_allclose(out["recall"], [1.0])
    np.testing.assert_allclose(out["precision"], [0.2])
    assert m.catalogue_coverage(recs, 3, k=10) == 1.0


def test_empty_lists_and_padding_never_hit():
    recs = np.array([[-1, -1, -1], [4, -1, -1]])
    relevant = _csr([[4], [4]], 5)               # -1 at row 1 would be key 4 of row 0
    out = m.ranking_metrics(recs, relevant)
    np.testing.assert_allclose(out["ndcg"], [0.0, 1.0])
    np.testing.assert_allclose(out["hit_rate"], [0.0, 1.0])
    assert m.novelty(recs, np.ones(5), 10)[0] == 0.0
    assert m.tail_share(recs, np.ones(5, bool))[0] == 0.0


def test_user_without_relevant_items_scores_zero():
    out = m.ranking_metrics(np.array([[0, 1]]), _csr([[]], 3))
    assert all(v[0] == 0.0 for v in out.values())


def test_recs_rows_must_align_with_relevant():
    with pytest.raises(ValueError, match="align"):
        m.ndcg_at_k(np.zeros((2, 3), dtype=np.int64), _csr([[0]], 3))


def test_intra_list_diversity_equals_mean_pairwise_cosine_distance():
    rng = np.random.default_rng(3)
    features = rng.random((30, 6))
    features[5] = 0.0                              # an item without features
    recs = np.argsort(rng.random((50, 30)), axis=1)[:, :7]
    recs[0, 3:] = -1
    recs[1, 1:] = -1                               # one item: no pairs -> 0
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-300)
    expected = []
    for row in recs:
        items = row[row >= 0]
        if len(items) < 2:
            expected.append(0.0)
            continue
        sim = unit[items] @ unit[items].T
        expected.append(1 - (sim.sum() - np.trace(sim)) / (len(items) * (len(items) - 1)))
    np.testing.assert_allclose(m.intra_list_diversity(recs, features), expected, atol=1e-12)


def test_novelty_head_and_tail():
    counts = np.array([9, 3, 0, 1])
    recs = np.array([[0, 2], [1, -1]])
    info = -np.log2((counts + 1) / 11)
    np.testing.assert_allclose(m.novelty(recs, counts, 10), [(info[0] + info[2]) / 2, info[1]])
    head = m.head_items(counts, 0.25)                   # ceil(0.25 * 4) = 1 item: item 0
    np.testing.assert_array_equal(head, [True, False, False, False])
    np.testing.assert_allclose(m.tail_share(recs, head), [0.5, 1.0])
    assert m.catalogue_coverage(recs, 4) == 0.75


def test_head_ties_broken_by_item_id():
    np.testing.assert_array_equal(m.head_items(np.array([2, 5, 5, 1]), 0.25), [False, True, False, False])


def test_relevant_matrix_of_the_caller_is_not_modified():
    relevant = sp.csr_matrix((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    out = m.ranking_metrics(np.array([[1, 0]]), relevant)
    assert relevant.nnz == 2 and out["mrr"][0] == 0.5     # the explicit zero is not relevant
