"""Interactions: the immutable in-memory form of a data set, shared by loaders, splits and metrics.

Ids are dense and 0-based (``0 <= user < n_users``, ``0 <= item < n_items``); loaders remap
raw ids and keep the mapping in ``user_ids`` / ``item_ids`` (raw id per dense id).
Arrays are stored read-only so that a split or a report can never be changed behind the
harness's back; ``to_train_data`` hands candidates their own writable copies.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from sandbox.errors import SandboxError
from sandbox.sdk.agent_sdk import TrainData

__all__ = ["DatasetError", "Interactions", "check_unique_pairs", "dense_ids"]

_FINGERPRINT_VERSION = b"interactions-v1"


class DatasetError(SandboxError, ValueError):
    """A data set cannot be loaded or is malformed; the message says what to do."""


def _frozen(array, dtype) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=dtype)
    if out is array and not out.flags.writeable:
        return out  # already one of ours (or read-only anyway): share it
    if out is array or out.base is not None or not out.flags.owndata:
        out = out.copy()
    out.setflags(write=False)
    return out


def _features(value, rows: int, what: str) -> np.ndarray | None:
    if value is None:
        return None
    out = _frozen(value, np.float32)
    if out.ndim != 2 or out.shape[0] != rows:
        raise DatasetError(f"{what} must have shape ({rows}, d); got {out.shape}")
    return out


@dataclass(frozen=True, eq=False)
class Interactions:
    """One set of interactions with dense ids.

    Invariants (checked at construction, ``DatasetError`` otherwise): ``user``, ``item``,
    ``timestamp`` (int64) and ``rating`` (float32) have equal length; ids lie in
    ``[0, n_users)`` / ``[0, n_items)``; ``item_features`` is float32 ``(n_items, d)`` or
    None, ``user_features`` float32 ``(n_users, d)`` or None. Row order is meaningful
    (it breaks timestamp ties in splits) and is preserved by ``subset``.
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    rating: np.ndarray
    n_users: int
    n_items: int
    item_features: np.ndarray | None = None
    user_features: np.ndarray | None = None
    name: str = ""
    item_names: tuple[str, ...] | None = None
    user_ids: np.ndarray | None = field(default=None, repr=False)
    item_ids: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        for key, dtype in (("user", np.int64), ("item", np.int64),
                           ("timestamp", np.int64), ("rating", np.float32)):
            put(self, key, _frozen(getattr(self, key), dtype))
        put(self, "n_users", int(self.n_users))
        put(self, "n_items", int(self.n_items))
        put(self, "item_features", _features(self.item_features, self.n_items, "item_features"))
        put(self, "user_features", _features(self.user_features, self.n_users, "user_features"))
        if self.item_names is not None:
            put(self, "item_names", tuple(str(n) for n in self.item_names))
        self._check()

    def _check(self) -> None:
        n = len(self.user)
        if not (len(self.item) == len(self.timestamp) == len(self.rating) == n):
            raise DatasetError("user, item, timestamp and rating must have equal length")
        for ids, bound, what in ((self.user, self.n_users, "user"), (self.item, self.n_items, "item")):
            if n and (ids.min() < 0 or ids.max() >= bound):
                raise DatasetError(f"{what} ids must lie in [0, {bound}); remap raw ids with dense_ids()")
        if self.item_names is not None and len(self.item_names) != self.n_items:
            raise DatasetError(f"item_names has {len(self.item_names)} names for {self.n_items} items")

    def __len__(self) -> int:
        return len(self.user)

    def __repr__(self) -> str:
        return (f"Interactions(name={self.name!r}, rows={len(self)}, n_users={self.n_users}, "
                f"n_items={self.n_items})")

    def fingerprint(self) -> str:
        """sha256 hex digest of the content (ids, timestamps, ratings, sizes, features).

        ``name``, ``item_names`` and raw-id mappings do not enter it: two data sets with the
        same content share splits and caches. Computed once per object.
        """
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        h = hashlib.sha256(_FINGERPRINT_VERSION)
        h.update(np.array([self.n_users, self.n_items], dtype=np.int64).tobytes())
        for key in ("user", "item", "timestamp", "rating", "item_features", "user_features"):
            value = getattr(self, key)
            h.update(key.encode())
            if value is None:
                h.update(b"none")
                continue
            h.update(f"{value.dtype.str}{value.shape}".encode())
            h.update(value.tobytes())
        return h.hexdigest()

    def subset(self, mask) -> "Interactions":
        """The rows selected by ``mask`` (boolean of length ``len(self)`` or integer indices).

        Row order is kept; sizes, features, names and id mappings are shared.
        """
        mask = np.asarray(mask)
        if mask.dtype == bool and mask.shape != (len(self),):
            raise DatasetError(f"boolean mask must have shape ({len(self)},); got {mask.shape}")
        return Interactions(
            self.user[mask], self.item[mask], self.timestamp[mask], self.rating[mask],
            self.n_users, self.n_items, self.item_features, self.user_features,
            self.name, self.item_names, self.user_ids, self.item_ids)

    def to_train_data(self) -> TrainData:
        """A ``TrainData`` (the object candidates receive) holding writable copies."""
        copy = (lambda a: None if a is None else np.array(a, copy=True))
        return TrainData(self.user.copy(), self.item.copy(), self.timestamp.copy(),
                         self.rating.copy(), self.n_users, self.n_items,
                         copy(self.item_features), copy(self.user_features))

    def user_counts(self) -> np.ndarray:
        """Interactions per user, int64 of length ``n_users``."""
        return np.bincount(self.user, minlength=self.n_users).astype(np.int64)

    def item_counts(self) -> np.ndarray:
        """Interactions per item, int64 of length ``n_items`` (the popularity used by metrics)."""
        return np.bincount(self.item, minlength=self.n_items).astype(np.int64)


def dense_ids(raw) -> tuple[np.ndarray, np.ndarray]:
    """Map raw ids (ints or strings) to dense 0-based ids.

    Returns ``(dense, vocabulary)`` with ``vocabulary[dense] == raw``; the vocabulary is
    sorted, so the mapping is deterministic and independent of row order.
    """
    vocabulary, dense = np.unique(np.asarray(raw), return_inverse=True)
    return dense.astype(np.int64).reshape(-1), vocabulary


def check_unique_pairs(user: np.ndarray, item: np.ndarray, *, user_ids=None, item_ids=None,
                       source: str = "the data") -> None:
    """Raise ``DatasetError`` if a (user, item) pair occurs more than once.

    The message gives the number of repeated rows and one example (raw ids when given,
    and the two row numbers, 0-based, in input order).
    """
    if len(user) < 2:
        return
    key = np.asarray(user, np.int64) * (int(np.max(item)) + 1) + np.asarray(item, np.int64)
    order = np.argsort(key, kind="stable")
    repeat = np.flatnonzero(key[order][1:] == key[order][:-1])
    if len(repeat) == 0:
        return
    first, second = order[repeat[0]], order[repeat[0] + 1]
    u, i = int(user[first]), int(item[first])
    u_raw = np.asarray(user_ids)[u].tolist() if user_ids is not None else u
    i_raw = np.asarray(item_ids)[i].tolist() if item_ids is not None else i
    raise DatasetError(
        f"{source} has {len(repeat)} duplicate rows (repeated user/item pairs), e.g. user "
        f"{u_raw!r}, item {i_raw!r} at rows {first} and {second}; keep one row per pair "
        f"(e.g. the latest) before loading")
