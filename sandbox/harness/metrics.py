"""Top-K metrics, vectorised over users (no per-user Python loop).

Inputs shared by the accuracy metrics:

- ``recs``: int64 ``(n, width)``, each row a user's list best first; ``-1`` pads a list
  that holds fewer items. Rows must not repeat an item (``validate_recommendations`` in
  ``sandbox.harness.report`` checks it). Only the first ``k`` columns count; a list
  narrower than ``k`` (e.g. ``k`` larger than the catalogue) is treated as padded.
- ``relevant``: a CSR matrix ``(n, n_items)``, row ``r`` = the relevant items of the user
  of ``recs[r]`` (any non-zero stored value is relevant: binary relevance).

Every accuracy metric returns float64 ``(n,)``; a user without relevant items scores 0
(the harness evaluates only users with at least one, see ``eval_users``):

- NDCG@K: ``DCG / IDCG`` with gain 1 and discount ``1 / log2(rank + 1)``; the ideal DCG
  places ``min(K, |T|)`` relevant items at the top.
- Recall@K: hits / ``min(K, |T|)`` (ranx and trec_eval divide by ``|T|``; the two agree
  whenever ``|T| <= K``).
- MRR@K: 1 / rank of the first hit, 0 without a hit in the top K.
- HitRate@K: 1 if any of the top K is relevant.
- Precision@K: hits / K (padding counts as a miss).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["ACCURACY_METRICS", "FROM_HITS", "catalogue_coverage", "cut_recs", "head_items", "hit_matrix", "hit_rate_at_k",
           "intra_list_diversity", "mrr_at_k", "ndcg_at_k", "novelty", "precision_at_k",
           "ranking_metrics", "recall_at_k", "tail_share"]

ACCURACY_METRICS = ("ndcg", "recall", "mrr", "hit_rate", "precision")


def cut_recs(recs, k: int | None = None) -> np.ndarray:
    """``recs`` as int64 with exactly ``k`` columns: cut, or padded with -1 on the right."""
    recs = np.asarray(recs)
    if recs.ndim != 2:
        raise ValueError(f"recs must be 2-D (users, k); got shape {recs.shape}")
    recs = recs.astype(np.int64, copy=False)
    k = recs.shape[1] if k is None else int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    if recs.shape[1] >= k:
        return recs[:, :k]
    pad = np.full((recs.shape[0], k - recs.shape[1]), -1, dtype=np.int64)
    return np.hstack([recs, pad])


def _as_relevant(relevant, rows: int) -> sp.csr_matrix:
    relevant = sp.csr_matrix(relevant)
    if relevant.shape[0] != rows:
        raise ValueError(f"relevant has {relevant.shape[0]} rows but recs has {rows}; align them")
    if not relevant.has_canonical_format or (relevant.data == 0).any():
        relevant = relevant.copy()             # never modify the caller's matrix
        relevant.sum_duplicates()
        relevant.eliminate_zeros()
    return relevant


def hit_matrix(recs, relevant, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(hits, n_relevant)``: bool ``(n, k)`` (``recs[r, j]`` is relevant for row ``r``)
    and int64 ``(n,)`` sizes of the relevant sets.

    One ``searchsorted`` of the keys ``row * n_items + item`` into the sorted keys of the
    CSR matrix; padding (-1) and out-of-range items are never hits.
    """
    recs = cut_recs(recs, k)
    relevant = _as_relevant(relevant, recs.shape[0])
    n_items = relevant.shape[1]
    sizes = np.diff(relevant.indptr).astype(np.int64)
    rel_keys = np.repeat(np.arange(recs.shape[0], dtype=np.int64) * n_items, sizes)
    rel_keys += relevant.indices
    valid = (recs >= 0) & (recs < n_items)
    keys = np.arange(recs.shape[0], dtype=np.int64)[:, None] * n_items + recs
    if len(rel_keys) == 0:
        return np.zeros(recs.shape, dtype=bool), sizes
    pos = np.searchsorted(rel_keys, keys).clip(max=len(rel_keys) - 1)
    return valid & (rel_keys[pos] == keys), sizes


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _ndcg(hits: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    discounts = _discounts(k)
    ideal = np.concatenate(([0.0], np.cumsum(discounts)))[np.minimum(sizes, k)]
    return _ratio(hits @ discounts, ideal)


def _recall(hits, sizes):
    return _ratio(hits.sum(axis=1, dtype=np.float64), np.minimum(sizes, hits.shape[1]))


def _mrr(hits, sizes):
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)


def _hit_rate(hits, sizes):
    return hits.any(axis=1).astype(np.float64)


def _precision(hits, sizes):
    return hits.sum(axis=1, dtype=np.float64) / hits.shape[1]


# name -> fn(hits, sizes) -> per-user float64, for callers that already hold a hit matrix
FROM_HITS = {"ndcg": _ndcg, "recall": _recall, "mrr": _mrr,
              "hit_rate": _hit_rate, "precision": _precision}


def ranking_metrics(recs, relevant, k: int | None = None) -> dict[str, np.ndarray]:
    """All accuracy metrics at ``k`` from one hit matrix: ``{"ndcg": ..., "recall": ...,
    "mrr": ..., "hit_rate": ..., "precision": ...}``, each float64 ``(n,)``."""
    hits, sizes = hit_matrix(recs, relevant, k)
    return {name: fn(hits, sizes) for name, fn in FROM_HITS.items()}


def ndcg_at_k(recs, relevant, k: int | None = None) -> np.ndarray:
    """Per-user NDCG@K (binary relevance; see the module docstring)."""
    return _ndcg(*hit_matrix(recs, relevant, k))


def recall_at_k(recs, relevant, k: int | None = None) -> np.ndarray:
    """Per-user Recall@K with denominator ``min(K, |T|)``."""
    return _recall(*hit_matrix(recs, relevant, k))


def mrr_at_k(recs, relevant, k: int | None = None) -> np.ndarray:
    """Per-user reciprocal rank of the first relevant item within the top K (else 0)."""
    return _mrr(*hit_matrix(recs, relevant, k))


def hit_rate_at_k(recs, relevant, k: int | None = None) -> np.ndarray:
    """Per-user 1.0 if the top K holds a relevant item, else 0.0."""
    return _hit_rate(*hit_matrix(recs, relevant, k))


def precision_at_k(recs, relevant, k: int | None = None) -> np.ndarray:
    """Per-user hits / K (padding and a list shorter than K count as misses)."""
    return _precision(*hit_matrix(recs, relevant, k))


# ---- beyond accuracy ---------------------------------------------------------------------

def _valid(recs: np.ndarray, n_items: int) -> np.ndarray:
    return (recs >= 0) & (recs < n_items)


def catalogue_coverage(recs, n_items: int, k: int | None = None) -> float:
    """Distinct items in the top K of all lists / ``n_items`` (padding ignored)."""
    recs = cut_recs(recs, k)
    items = recs[_valid(recs, n_items)]
    return float(len(np.unique(items)) / n_items) if n_items else 0.0


def novelty(recs, item_counts, n_users: int, k: int | None = None) -> np.ndarray:
    """Per-user mean self-information ``-log2 p(i)`` of the recommended items.

    ``p(i) = (item_counts[i] + 1) / (n_users + 1)``: the share of users who had the item in
    train, smoothed so that unseen items stay finite. Padding is ignored; an empty list
    scores 0.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    recs = cut_recs(recs, k)
    valid = _valid(recs, len(counts))
    info = -np.log2((counts + 1.0) / (n_users + 1.0))
    per_slot = np.where(valid, info[np.where(valid, recs, 0)], 0.0)
    return _ratio(per_slot.sum(axis=1), valid.sum(axis=1).astype(np.float64))


def _list_matrix(recs: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Users x items indicator of the recommended (valid) items."""
    valid = _valid(recs, n_items)
    rows = np.nonzero(valid)[0]
    data = np.ones(len(rows), dtype=np.float64)
    return sp.csr_matrix((data, (rows, recs[valid])), shape=(recs.shape[0], n_items))


def intra_list_diversity(recs, item_features, k: int | None = None) -> np.ndarray:
    """Per-user mean pairwise cosine distance between the recommended items' features.

    Rows of ``item_features`` are L2-normalised (all-zero rows stay zero, i.e. at distance 1
    from everything). With ``s = sum of the m normalised vectors`` and ``q = sum of their
    squared norms``, the mean pairwise similarity is ``(||s||^2 - q) / (m (m - 1))`` and
    ILD = 1 - that. Lists with fewer than two items score 0. Cost O(n k d), one sparse product.
    """
    features = np.asarray(item_features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)
    recs = cut_recs(recs, k)
    lists = _list_matrix(recs, len(features))
    summed = np.asarray(lists @ unit)
    q = lists @ (unit * unit).sum(axis=1)
    m = np.asarray(lists.sum(axis=1)).ravel()
    pairs = m * (m - 1)
    similarity = _ratio((summed * summed).sum(axis=1) - q, pairs)
    return np.where(pairs > 0, 1.0 - similarity, 0.0)


def head_items(item_counts, fraction: float = 0.2) -> np.ndarray:
    """Boolean mask of the head: the ``ceil(fraction * n_items)`` most popular items.

    Popularity = ``item_counts`` (train interactions); ties are broken by item id (lower
    first), so the head has exactly that size and is deterministic. The rest is the tail.
    """
    counts = np.asarray(item_counts)
    size = int(np.ceil(fraction * len(counts)))
    order = np.lexsort((np.arange(len(counts)), -counts))
    mask = np.zeros(len(counts), dtype=bool)
    mask[order[:size]] = True
    return mask


def tail_share(recs, head_mask, k: int | None = None) -> np.ndarray:
    """Per-user share of the (non-padding) recommended slots that hold tail items; 0 for an
    empty list."""
    head_mask = np.asarray(head_mask, dtype=bool)
    recs = cut_recs(recs, k)
    valid = _valid(recs, len(head_mask))
    tail = valid & ~head_mask[np.where(valid, recs, 0)]
    return _ratio(tail.sum(axis=1, dtype=np.float64), valid.sum(axis=1).astype(np.float64))
