"""Train / validation / test splits: deterministic, vectorised, cached by fingerprint.

``user_temporal`` (the default): each user's interactions are sorted by timestamp with a
stable sort (ties keep file order). With ``n`` interactions and ``h = max(1, round(0.1 n))``
the last ``h`` are test, the ``h`` before them validation, the rest train. ``round`` is
**round half up** in exact integer arithmetic, ``h = max(1, (n + 5) // 10)``: 15 -> 2,
25 -> 3, 35 -> 4 (Python's ``round`` would give 2, 2, 4: banker's rounding plus float
error). A user with ``n < 3`` keeps everything in train (no room for three parts), so
such a user is never evaluated; from ``n = 3`` on every part has at least one interaction.

``global_temporal``: all interactions sorted by timestamp (stable); the first
``(8 N + 5) // 10`` are train, up to ``(9 N + 5) // 10`` validation, the rest test
(80/10/10, rounded half up). Users and items may then appear only in later parts.

The **confirmation window** (``confirm_train`` / ``confirm``) is the same protocol moved one
window back in time, inside train: ``user_temporal`` takes each user's last ``h`` train
interactions (``h`` = that user's validation size) as the window when at least one train
interaction stays before it; ``global_temporal`` takes the last ``cut_validation -
cut_train`` train rows by time. Promotion confirms a finalist there: evidence it was not
selected on, and still no validation or test row.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from sandbox.harness.data import DatasetError, Interactions

__all__ = ["MIN_USER_INTERACTIONS", "PROTOCOL_VERSION", "SPLIT_METHODS", "Split", "SplitTooSmallError",
           "holdout_size", "require_validation_users", "split_interactions"]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "1"
SPLIT_METHODS = ("user_temporal", "global_temporal")
TRAIN, VALIDATION, TEST = 0, 1, 2
PARTS = ("train", "validation", "test", "confirm_train", "confirm")
MIN_USER_INTERACTIONS = 3   # user_temporal: one each for train, validation and test
MIN_ROWS = 3                # global_temporal: 80/10/10 rounded half up leaves validation empty below


class SplitTooSmallError(DatasetError):
    """The data set is too small for its split: no user to evaluate on validation.

    The message names the minimum and what to do; callers (``agenticrs evaluate`` and
    ``design``) report it as one line.
    """


@dataclass(frozen=True, eq=False)
class Split:
    """The three parts of one data set; all share ``n_users``, ``n_items`` and features.

    ``assignment[r]`` is 0 (train), 1 (validation) or 2 (test) for row ``r`` of ``data``;
    ``fingerprint`` identifies data + method + protocol version.
    """

    data: Interactions
    assignment: np.ndarray
    method: str
    fingerprint: str
    train: Interactions
    validation: Interactions
    test: Interactions

    def train_plus_validation(self) -> Interactions:
        """Train and validation rows in data order: what sealed-test candidates fit on."""
        return self.data.subset(self.assignment != TEST)

    @cached_property
    def confirm_assignment(self) -> np.ndarray:
        """Per row of ``data``: 0 confirmation train (prefix), 1 confirmation window, -1 not train."""
        return _confirm_window(self)

    @cached_property
    def confirm_train(self) -> Interactions:
        """Train rows before the confirmation window: what confirmation runs fit on."""
        return self.data.subset(self.confirm_assignment == 0)

    @cached_property
    def confirm(self) -> Interactions:
        """The confirmation window: the slice of train just before validation."""
        return self.data.subset(self.confirm_assignment == 1)

    def part(self, name: str) -> Interactions:
        """``train``, ``validation``, ``test``, ``confirm_train`` or ``confirm``;
        ``DatasetError`` for other names."""
        if name not in PARTS:
            raise DatasetError(f"unknown split part {name!r}; use one of {', '.join(PARTS)}")
        return getattr(self, name)


def require_validation_users(split: Split) -> None:
    """Raise ``SplitTooSmallError`` unless the validation part has at least one user.

    ``user_temporal`` evaluates a user only from ``MIN_USER_INTERACTIONS`` (3)
    interactions on; ``global_temporal`` needs ``MIN_ROWS`` (3) interactions in all.
    """
    if len(split.validation):
        return
    data = split.data
    label = data.name or "the data set"
    size = f"{data.n_users} users, {len(data)} interactions"
    if split.method == "user_temporal":
        most = int(data.user_counts().max()) if len(data) else 0
        raise SplitTooSmallError(
            f"{label} is too small for the user_temporal split ({size}): a user is evaluated "
            f"only with at least {MIN_USER_INTERACTIONS} interactions (train, validation, test), "
            f"and the most active user here has {most}. Use data where users have "
            f"{MIN_USER_INTERACTIONS} or more interactions, or --split global_temporal")
    raise SplitTooSmallError(
        f"{label} is too small for the {split.method} split ({size}): it needs at least "
        f"{MIN_ROWS} interactions so that validation is not empty; use a larger data set")


def split_interactions(data: Interactions, method: str = "user_temporal",
                       cache_dir=None) -> Split:
    """Split ``data`` with ``method`` (see the module docstring).

    With ``cache_dir`` the row assignment is stored as ``split-<fingerprint>.npz`` and
    reused. Raises ``DatasetError`` for an unknown method.
    """
    if method not in SPLIT_METHODS:
        raise DatasetError(f"unknown split {method!r}; use one of {', '.join(SPLIT_METHODS)}")
    fingerprint = _split_fingerprint(data, method)
    assignment = _cached(cache_dir, fingerprint, len(data))
    if assignment is None:
        assignment = _ASSIGNERS[method](data)
        if cache_dir is not None:
            _store(cache_dir, fingerprint, assignment)
    assignment.setflags(write=False)
    parts = [data.subset(assignment == p) for p in (TRAIN, VALIDATION, TEST)]
    return Split(data, assignment, method, fingerprint, *parts)


def _split_fingerprint(data: Interactions, method: str) -> str:
    text = f"{data.fingerprint()}|{method}|protocol-{PROTOCOL_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()


def holdout_size(n: np.ndarray) -> np.ndarray:
    """Interactions per user in each of validation and test: ``max(1, round_half_up(n / 10))``,
    and 0 for users with ``n < 3``."""
    n = np.asarray(n, dtype=np.int64)
    return np.where(n < 3, 0, np.maximum(1, (n + 5) // 10))


def _user_temporal(data: Interactions) -> np.ndarray:
    order = np.lexsort((data.timestamp, data.user))       # lexsort is stable: ties keep file order
    users = data.user[order]
    counts = np.bincount(users, minlength=data.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    from_end = starts[users] + counts[users] - np.arange(len(users))   # 1 = the user's last
    h = holdout_size(counts)[users]
    sorted_part = np.where(from_end <= h, TEST, np.where(from_end <= 2 * h, VALIDATION, TRAIN))
    assignment = np.empty(len(data), dtype=np.int8)
    assignment[order] = sorted_part
    return assignment


def _global_temporal(data: Interactions) -> np.ndarray:
    n = len(data)
    order = np.argsort(data.timestamp, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    cut_train, cut_validation = (8 * n + 5) // 10, (9 * n + 5) // 10
    return np.where(rank < cut_train, TRAIN,
                    np.where(rank < cut_validation, VALIDATION, TEST)).astype(np.int8)


def _confirm_window(split: Split) -> np.ndarray:
    data, assignment = split.data, split.assignment
    out = np.full(len(data), -1, dtype=np.int8)
    train_rows = np.flatnonzero(assignment == TRAIN)
    if split.method == "user_temporal":
        rows = train_rows[np.lexsort((data.timestamp[train_rows], data.user[train_rows]))]
        users = data.user[rows]
        counts = np.bincount(users, minlength=data.n_users)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        from_end = starts[users] + counts[users] - np.arange(len(rows))
        h = np.bincount(data.user[assignment == VALIDATION], minlength=data.n_users)[users]
        window = (from_end <= h) & (counts[users] > h)
    else:
        rows = train_rows[np.argsort(data.timestamp[train_rows], kind="stable")]
        width = int(np.count_nonzero(assignment == VALIDATION))
        window = np.arange(len(rows)) >= len(rows) - width
    out[rows] = np.where(window, 1, 0)
    out.setflags(write=False)
    return out


_ASSIGNERS = {"user_temporal": _user_temporal, "global_temporal": _global_temporal}


def _cache_path(cache_dir, fingerprint: str) -> Path:
    return Path(cache_dir) / f"split-{fingerprint}.npz"


def _cached(cache_dir, fingerprint: str, rows: int) -> np.ndarray | None:
    if cache_dir is None:
        return None
    path = _cache_path(cache_dir, fingerprint)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            assignment = z["assignment"].astype(np.int8)
            stored = str(z["fingerprint"])
    except (OSError, KeyError, ValueError) as e:
        log.warning("ignoring unreadable split cache %s: %s", path, e)
        return None
    if stored != fingerprint or assignment.shape != (rows,):
        log.warning("ignoring split cache %s: it does not match the data", path)
        return None
    return assignment


def _store(cache_dir, fingerprint: str, assignment: np.ndarray) -> None:
    """Write atomically (temp file + rename), so a killed process leaves no half file."""
    path = _cache_path(cache_dir, fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, assignment=assignment, fingerprint=np.array(fingerprint))
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
