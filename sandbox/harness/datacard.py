"""The data card: what a model designer may know about a split before writing code.

Computed from the **train** part and the protocol only. Validation enters through the
list of evaluated users (how many, in which activity segment), never through its items,
timestamps or ratings; the test part never enters. Deterministic; computed once per
split fingerprint and ``k`` (a process-wide cache).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sandbox.harness.data import Interactions
from sandbox.harness.metrics import head_items
from sandbox.harness.segments import ACTIVITY_SEGMENTS, activity_segments, activity_thresholds
from sandbox.harness.splits import Split

__all__ = ["DataCard", "FEATURE_MEANINGS", "data_card"]

FEATURE_MEANINGS: dict[str, tuple[str, str]] = {
    "ml-100k": ("19 binary genre flags per movie (u.item; a movie may have several)",
                "[age / 100, is_male, one-hot occupation (21 sorted names)]"),
    "synthetic": ("noisy topic memberships per item (1.0 primary, 0.5 secondary topic): latent genres",
                  "noisy taste mixture over the same topics (sums to ~1)"),
}
"""Data-set name prefix -> (item feature meaning, user feature meaning)."""

PROTOCOLS = {
    "user_temporal": ("per-user temporal split: each user's interactions in time order, the first "
                      "~80% are train, the next ~10% (at least 1) validation, the last ~10% test; "
                      "a validation user's targets are their NEXT interactions after train"),
    "global_temporal": ("global temporal split: all interactions in time order, the first 80% are "
                        "train, the next 10% validation, the last 10% test; validation users may "
                        "have few or no train interactions"),
}

_QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


@dataclass(frozen=True)
class DataCard:
    """Summary statistics of a split's train part plus the protocol in words."""

    name: str
    split: str
    protocol: str
    k: int
    n_users: int
    n_items: int
    train_interactions: int
    density: float
    days: float
    ratings: str
    user_quantiles: dict[str, float]       # train interactions per user ("min", "p10", ..., "max")
    item_quantiles: dict[str, float]       # train interactions per item
    head_share: float                      # share of train interactions on the top-20% items
    items_without_train: int
    validation_users: int
    segments: dict[str, dict[str, Any]]    # cold/medium/heavy -> train range and evaluated users
    item_features: str
    user_features: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CACHE: dict[tuple[str, int], DataCard] = {}


def data_card(split: Split, k: int) -> DataCard:
    """The data card of ``split`` at cut-off ``k`` (cached by split fingerprint and ``k``)."""
    key = (split.fingerprint, int(k))
    if key not in _CACHE:
        _CACHE[key] = _compute(split, int(k))
    return _CACHE[key]


def _compute(split: Split, k: int) -> DataCard:
    train = split.train
    users = np.unique(split.validation.user)   # who is evaluated; not what they chose
    per_user, per_item = train.user_counts(), train.item_counts()
    total = max(1, len(train))
    head = head_items(per_item)
    item_meaning, user_meaning = _meanings(split.data.name)
    return DataCard(
        name=split.data.name or "interactions file", split=split.method,
        protocol=PROTOCOLS.get(split.method, split.method), k=k,
        n_users=train.n_users, n_items=train.n_items, train_interactions=len(train),
        density=len(train) / max(1, train.n_users * train.n_items),
        days=_days(train), ratings=_ratings(train),
        user_quantiles=_quantiles(per_user[per_user > 0]), item_quantiles=_quantiles(per_item),
        head_share=float(per_item[head].sum() / total),
        items_without_train=int((per_item == 0).sum()), validation_users=int(len(users)),
        segments=_segments(train, users),
        item_features=_features(train.item_features, item_meaning),
        user_features=_features(train.user_features, user_meaning))


def _meanings(name: str) -> tuple[str, str]:
    for prefix, meaning in FEATURE_MEANINGS.items():
        if (name or "").startswith(prefix):
            return meaning
    return "", ""


def _days(train: Interactions) -> float:
    if not len(train):
        return 0.0
    span = float(train.timestamp.max() - train.timestamp.min())
    return span / 86400.0 if span > 10 * 86400 else span  # unix seconds, or an ordinal clock


def _ratings(train: Interactions) -> str:
    values = np.unique(train.rating)
    if len(values) <= 1:
        return "implicit (no ratings)"
    if len(values) <= 10:
        return "explicit, values " + ", ".join(f"{v:g}" for v in values) + " (the metrics ignore them)"
    return f"explicit, {values.min():g} to {values.max():g} (the metrics ignore them)"


def _quantiles(counts: np.ndarray) -> dict[str, float]:
    if not len(counts):
        return {}
    names = ["min", "p10", "p25", "median", "p75", "p90", "max"]
    return {n: float(v) for n, v in zip(names, np.quantile(counts, _QUANTILES))}


def _segments(train: Interactions, users: np.ndarray) -> dict[str, dict[str, Any]]:
    low, high = activity_thresholds(train)
    labels = activity_segments(train, users)
    bounds = {"cold": f"<= {low:g}", "medium": f"{low:g} < n <= {high:g}", "heavy": f"> {high:g}"}
    return {name: {"train_interactions": bounds[name], "users": int((labels == i).sum())}
            for i, name in enumerate(ACTIVITY_SEGMENTS)}


def _features(array: np.ndarray | None, meaning: str) -> str:
    if array is None:
        return "none"
    shape = " x ".join(str(s) for s in array.shape)
    binary = bool(np.isin(array, (0.0, 1.0)).all()) if array.size else False
    kind = "binary" if binary else "float32"
    text = f"{shape} {kind}"
    return f"{text}: {meaning}" if meaning else text
