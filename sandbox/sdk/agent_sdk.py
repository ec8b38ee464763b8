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

import numpy as np
import scipy.sparse as sp

__all__ = ["TrainData", "fidelity", "topk", "topk_unseen"]


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

    def sequences(self) -> list[np.ndarray]:
        """Each user's items in time order (stable: ties keep input order); index = user id."""
        order = np.lexsort((np.arange(len(self.user)), self.timestamp, self.user))
        users, items = self.user[order], self.item[order]
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]


def fidelity() -> float:
    """Evaluation fidelity in (0, 1]: the cheap cascade stage runs below 1.0.

    Iterative agents should scale their epochs/iterations by it; others may ignore it.
    """
    try:
        return min(1.0, max(0.05, float(os.environ.get("AGENTICRS_FIDELITY", "1.0"))))
    except ValueError:
        return 1.0


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores per row, best first (int64, shape (rows, k))."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def topk_unseen(scores: np.ndarray, seen: sp.csr_matrix, users: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` items per row of ``scores`` (rows align with ``users``), excluding seen items.

    ``seen`` is a users x items CSR matrix (e.g. ``train.matrix()``). ``scores`` is not
    modified. Rows are padded with the best remaining items if fewer than ``k`` are unseen.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    sub = seen[np.asarray(users, dtype=np.int64)]
    rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf
    return topk(scores, k)
