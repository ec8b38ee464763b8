"""agent_sdk: what a candidate agent receives inside the sandbox.

Candidate modules import only the standard library, numpy, scipy, torch and this module.
It must itself import nothing else (it runs inside the isolation).

Contract (see DESIGN.md)::

    class Agent:
        def __init__(self, **params): ...
        def fit(self, train: TrainData) -> None: ...
        def recommend(self, users: np.ndarray, k: int) -> np.ndarray: ...
            # int64 (len(users), k), best first, no item the user had in ``train``

Input folder format written by the harness (all numpy files, ``allow_pickle=False``)::

    train.npz        arrays user, item, timestamp (int64), rating (float32);
                     scalars n_users, n_items (0-d int64 arrays)
    item_features.npy  optional float32 (n_items, d)
    user_features.npy  optional float32 (n_users, d)
"""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["BLOCK_BYTES", "TrainData", "block_rows", "fidelity", "ranker_window", "topk", "topk_unseen",
           "topk_unseen_blocks"]

# Scores of one block of users: bounded memory whatever the number of users scored.
BLOCK_BYTES = 32 * 2**20


class TrainData:
    """Training interactions with dense 0-based ids.

    Attributes ``user``, ``item``, ``timestamp`` (int64) and ``rating`` (float32) are
    arrays of equal length; ``n_users``/``n_items`` bound the ids; ``item_features`` and
    ``user_features`` are float arrays or None.
    """

    def __init__(self, user, item, timestamp, rating, n_users: int, n_items: int,
                 item_features=None, user_features=None):
        self.user = np.asarray(user, dtype=np.int64)
        self.item = np.asarray(item, dtype=np.int64)
        self.timestamp = np.asarray(timestamp, dtype=np.int64)
        self.rating = np.asarray(rating, dtype=np.float32)
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.item_features = item_features
        self.user_features = user_features
        if not (len(self.user) == len(self.item) == len(self.timestamp) == len(self.rating)):
            raise ValueError("user, item, timestamp and rating must have equal length")

    def __len__(self) -> int:
        return len(self.user)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "TrainData":
        """Read the input folder format documented in this module."""
        folder = Path(folder)
        with np.load(folder / "train.npz", allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
        features = {}
        for name in ("item_features", "user_features"):
            path = folder / f"{name}.npy"
            features[name] = np.load(path, allow_pickle=False) if path.exists() else None
        return cls(arrays["user"], arrays["item"], arrays["timestamp"], arrays["rating"],
                   int(arrays["n_users"]), int(arrays["n_items"]), **features)

    def save(self, folder: str | os.PathLike) -> None:
        """Write the input folder format (used by the harness, outside the sandbox)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "train.npz", user=self.user, item=self.item, timestamp=self.timestamp,
                 rating=self.rating, n_users=np.int64(self.n_users), n_items=np.int64(self.n_items))
        for name in ("item_features", "user_features"):
            value = getattr(self, name)
            if value is not None:
                np.save(folder / f"{name}.npy", np.asarray(value, dtype=np.float32), allow_pickle=False)

    def matrix(self, binary: bool = True) -> sp.csr_matrix:
        """Users x items CSR matrix (1.0 per interaction when ``binary``, else ratings)."""
        return self._binary_matrix.copy() if binary else self._rating_matrix.copy()

    @cached_property
    def _binary_matrix(self) -> sp.csr_matrix:
        data = np.ones(len(self.user), dtype=np.float32)
        m = sp.csr_matrix((data, (self.user, self.item)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @cached_property
    def _rating_matrix(self) -> sp.csr_matrix:
        m = sp.csr_matrix((self.rating, (self.user, self.item)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        return m

    def subset(self, rows: np.ndarray) -> "TrainData":
        """The interactions where boolean ``rows`` is true; same ids, sizes and features."""
        rows = np.asarray(rows, dtype=bool)
        return TrainData(self.user[rows], self.item[rows], self.timestamp[rows], self.rating[rows],
                         self.n_users, self.n_items, self.item_features, self.user_features)

    def sequences(self) -> list[np.ndarray]:
        """Each user's items in time order (stable: ties keep input order); index = user id."""
        order = np.lexsort((np.arange(len(self.user)), self.timestamp, self.user))
        users, items = self.user[order], self.item[order]
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]


def ranker_window(train: TrainData, share: float = 0.2) -> np.ndarray:
    """The ranker window of ``train``: a boolean mask of the rows held out as labels.

    Each user's interactions sorted by time (stable: ties keep input order); of ``n`` the last
    ``max(1, (n * share))`` rounded half up are held out, for users with ``n >= 2`` (at least
    one interaction stays before the window). A pipeline's sources are fitted on the rest
    (``train.subset(~mask)``) and their candidates for the window's users are labelled by the
    held-out rows: the ranker learns from the past of ``train`` only. The harness and the
    composition runner (``agent_pipeline``) both call this one function.
    """
    n = len(train)
    order = np.lexsort((np.arange(n), train.timestamp, train.user))
    users = train.user[order]
    counts = np.bincount(users, minlength=train.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    from_end = starts[users] + counts[users] - np.arange(n)       # 1 = the user's last
    held = np.maximum(1, (2 * counts * share + 1).astype(np.int64) // 2)
    held = np.where(counts >= 2, np.minimum(held, counts - 1), 0)
    mask = np.zeros(n, dtype=bool)
    mask[order] = from_end <= held[users]
    return mask


def fidelity() -> float:
    """Evaluation fidelity in (0, 1]: the cheap cascade stage runs below 1.0.

    Iterative agents should scale their epochs/iterations by it; others may ignore it.
    """
    try:
        return min(1.0, max(0.05, float(os.environ.get("AGENTICRS_FIDELITY", "1.0"))))
    except ValueError:
        return 1.0


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores per row, best first (int64, shape (rows, min(k, cols))).

    No item is excluded and nothing is padded: use ``topk_unseen`` for recommendations.
    """
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    if k < 1:
        return np.empty((scores.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def block_rows(n_items: int, itemsize: int = 8, budget_bytes: int | None = None) -> int:
    """Users per scoring block so that one ``(rows, n_items)`` block of ``itemsize``-byte
    scores stays within ``budget_bytes`` (default ``BLOCK_BYTES``; at least 1 row)."""
    budget = BLOCK_BYTES if budget_bytes is None else int(budget_bytes)
    return int(max(1, min(65536, budget // max(1, int(n_items) * int(itemsize)))))


def topk_unseen(scores: np.ndarray, seen: sp.csr_matrix, users: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` items per row of ``scores`` (rows align with ``users``), excluding seen items.

    ``seen`` is a users x items CSR matrix (e.g. ``train.matrix()``); ``scores`` is not
    modified. Returns int64 ``(len(users), k)``, best first. **Fewer than k candidates:**
    seen items and items scored ``-inf`` or NaN are never returned; a row with fewer than
    ``k`` other items is padded with ``-1`` on the right (the harness scores -1 as a
    miss). Works in blocks of ``block_rows(n_items)`` rows, so the extra memory is one
    block, whatever ``len(users)``; to avoid building ``scores`` for all users at once,
    use ``topk_unseen_blocks``.
    """
    scores = np.asarray(scores)
    users = np.asarray(users, dtype=np.int64)
    if scores.ndim != 2 or scores.shape[0] != len(users):
        raise ValueError(f"scores must have shape (len(users), n_items) = ({len(users)}, n); "
                         f"got {scores.shape}")
    out = np.empty((len(users), int(k)), dtype=np.int64)
    step = block_rows(scores.shape[1])
    for start in range(0, len(users), step):
        stop = start + step
        out[start:stop] = _topk_unseen_block(scores[start:stop], seen, users[start:stop], k)
    return out


def topk_unseen_blocks(score: Callable[[np.ndarray], np.ndarray], seen: sp.csr_matrix,
                       users: np.ndarray, k: int, rows: int | None = None) -> np.ndarray:
    """``topk_unseen`` for scores computed a block of users at a time.

    ``score(block_users)`` returns the ``(len(block_users), n_items)`` scores of those
    users (dense array, or a sparse matrix); it is called on consecutive blocks of
    ``users`` of ``rows`` users (default ``block_rows(n_items)``, ~32 MB of float64
    scores), so peak memory does not grow with ``len(users)``. Same output and padding
    contract as ``topk_unseen``.
    """
    users = np.asarray(users, dtype=np.int64)
    out = np.empty((len(users), int(k)), dtype=np.int64)
    step = int(rows) if rows else block_rows(seen.shape[1])
    for start in range(0, len(users), step):
        block = users[start:start + step]
        values = score(block)
        values = values.toarray() if sp.issparse(values) else np.asarray(values)
        if values.shape != (len(block), seen.shape[1]):
            raise ValueError(f"score(users) must return shape ({len(block)}, {seen.shape[1]}); "
                             f"got {values.shape}")
        out[start:start + step] = _topk_unseen_block(values, seen, block, k)
    return out


def _topk_unseen_block(scores: np.ndarray, seen: sp.csr_matrix, users: np.ndarray, k: int) -> np.ndarray:
    dtype = scores.dtype if scores.dtype.kind == "f" else np.float64
    neg = np.negative(scores, dtype=dtype)       # our own copy: excluded items become +inf
    neg[np.isnan(neg)] = np.inf
    sub = seen[users]
    rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
    neg[rows, sub.indices] = np.inf
    width = min(int(k), neg.shape[1])
    if width < 1:
        best = np.empty((len(neg), 0), dtype=np.int64)
    else:
        part = np.argpartition(neg, width - 1, axis=1)[:, :width]
        part_neg = np.take_along_axis(neg, part, axis=1)
        order = np.argsort(part_neg, axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1).astype(np.int64)
        best[np.take_along_axis(part_neg, order, axis=1) == np.inf] = -1
    if best.shape[1] < k:  # k larger than the catalogue
        best = np.hstack([best, np.full((len(best), k - best.shape[1]), -1, dtype=np.int64)])
    return best


def item_gram(X: sp.spmatrix, columns: int | None = None) -> np.ndarray:
    """Dense float64 ``X' X`` (items x items) of a users x items sparse matrix.

    Computed ``columns`` items at a time (default: an eighth of them), so the peak is the
    result plus at most ~0.3 of it, not a dense-ish sparse product plus its dense copy (at
    10.7k items ``(X.T @ X).toarray()`` holds a ~1.3 GB sparse matrix and 0.9 GB dense).
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    n = X.shape[1]
    # ~BLOCK_BYTES of sparse product per block, and never more than an eighth of the result
    step = int(columns) if columns else max(1, -(-n // 8))
    left, right = X.T.tocsr(), X.tocsc()
    out = np.empty((n, n), dtype=np.float64)
    for start in range(0, n, step):
        out[:, start:start + step] = (left @ right[:, start:start + step]).toarray()
    return out


def ease_weights(X: sp.spmatrix, l2: float, dtype=np.float64) -> np.ndarray:
    """Closed-form EASE weights ``B = -P / diag(P)``, ``P = (X'X + l2 I)^-1``, ``diag(B) = 0``.

    Solved in float64 and returned as ``dtype``. Memory: one dense ``n_items x n_items``
    float64 matrix (8 n^2 bytes: 0.9 GB at 10.7k items) plus one block, as the Cholesky
    inverse runs in place (``dtype=np.float32`` adds the half-size copy, and halves the
    time of scoring ``X[users] @ B`` with a float32 ``X``, which is memory-bound); time
    ~ n^3 / (BLAS flop rate), about 30 s at 10.7k items on 2 cores. Raises ``numpy.linalg.LinAlgError``
    if ``X'X + l2 I`` is not positive definite (``l2 <= 0`` on a rank-deficient ``X``).
    """
    from scipy.linalg import lapack

    gram = item_gram(X)
    gram[np.diag_indices_from(gram)] += l2
    # gram is symmetric, so its C-order buffer is its own Fortran-order transpose:
    # LAPACK then works in place on the lower triangle of gram.T (= the upper of gram).
    factor, info = lapack.dpotrf(gram.T, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        factor, info = lapack.dpotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"X'X + l2 I is not positive definite (LAPACK info {info})")
    P = factor.T                     # valid upper triangle, C order (the buffer of gram)
    _symmetrize_upper(P)
    P /= -np.diag(P).copy()
    np.fill_diagonal(P, 0.0)
    return P if np.dtype(dtype) == P.dtype else P.astype(dtype)


def _symmetrize_upper(A: np.ndarray) -> None:
    """Copy the upper triangle of square ``A`` onto its lower one, in place, by row blocks."""
    rows = max(1, min(512, A.shape[0] // 8))
    for start in range(0, A.shape[0], rows):
        stop = min(start + rows, A.shape[0])
        block = A[start:stop, :stop]
        upper = A[:stop, start:stop].T            # column block of the upper part, transposed
        keep = np.tril(np.ones((stop - start, stop), dtype=bool), k=start - 1)  # strictly below the diagonal
        block[keep] = upper[keep]
