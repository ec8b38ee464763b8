"""Scoring a candidate's recommendations: who is evaluated, against what, and the report.

``score_recommendations`` is the one entry point the harness uses; it runs outside the
candidate's process. Metric definitions are in ``sandbox.harness.metrics``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sandbox.harness import metrics as m
from sandbox.errors import SandboxError
from sandbox.harness.data import Interactions
from sandbox.harness.segments import ACTIVITY_SEGMENTS, activity_segments
from sandbox.harness.splits import Split

__all__ = ["InvalidRecommendationsError", "MetricReport", "eval_users", "relevant_matrix",
           "score_recommendations", "validate_recommendations"]

ITEM_GROUPS = ("head", "tail")


class InvalidRecommendationsError(SandboxError, ValueError):
    """Recommendations break the agent contract (shape, ids, repeats or seen items)."""


@dataclass(frozen=True, eq=False)
class MetricReport:
    """Metrics of one list of recommendations.

    ``users``: the evaluated user ids (row order of every per-user array).
    ``per_user``: ``"<metric>@<k>"`` -> float64 array aligned with ``users`` (input of the
    paired significance test). ``summary``: mean per-user metrics plus ``coverage@k``.
    ``segments``: ``cold``/``medium``/``heavy`` (activity terciles in train) -> mean metrics,
    ``coverage@k`` and ``n_users``; ``head``/``tail`` (item popularity groups) ->
    ``exposure@k`` (share of recommended slots), ``hit_share@k`` (share of hits),
    ``recall@k`` and ``ndcg@k`` against the group's relevant items only (over the
    ``n_users`` users that have some).
    """

    k: int
    users: np.ndarray
    per_user: dict[str, np.ndarray]
    summary: dict[str, float]
    segments: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        """JSON-ready ``{"k", "n_users", "summary", "segments"}`` (no per-user arrays)."""
        return {"k": self.k, "n_users": int(len(self.users)),
                "summary": dict(self.summary), "segments": {s: dict(v) for s, v in self.segments.items()}}


def eval_users(split: Split, part: str = "validation") -> np.ndarray:
    """Sorted ids of the users with at least one interaction in ``part`` of ``split``."""
    return np.unique(split.part(part).user)


def relevant_matrix(split_part: Interactions, users) -> sp.csr_matrix:
    """Binary CSR ``(len(users), n_items)``: row ``r`` = items of ``users[r]`` in ``split_part``.

    Every interaction is relevant, whatever its rating (implicit-feedback protocol).
    """
    users = np.asarray(users, dtype=np.int64)
    data = np.ones(len(split_part), dtype=np.float32)
    full = sp.csr_matrix((data, (split_part.user, split_part.item)),
                         shape=(split_part.n_users, split_part.n_items))
    full.sum_duplicates()
    full.data[:] = 1.0
    return full[users]


def validate_recommendations(recs, users, n_items: int, seen: sp.csr_matrix | None = None) -> np.ndarray:
    """Return ``recs`` as int64 if it keeps the contract, else raise ``InvalidRecommendationsError``.

    Contract: 2-D integer array with one row per user; ids in ``[0, n_items)`` or ``-1``
    (padding); no item twice in a row; with ``seen`` (users x items CSR, e.g. train), no
    item the user had.
    """
    recs = np.asarray(recs)
    if recs.ndim != 2 or recs.shape[0] != len(users):
        raise InvalidRecommendationsError(
            f"recommend() must return shape ({len(users)}, k); got {recs.shape}")
    if recs.size and not np.issubdtype(recs.dtype, np.integer):
        raise InvalidRecommendationsError(f"recommend() must return integer item ids; got {recs.dtype}")
    recs = recs.astype(np.int64, copy=False)
    bad = (recs < -1) | (recs >= n_items)
    if bad.any():
        raise InvalidRecommendationsError(
            f"item id {recs[bad][0]} out of range: ids must lie in [0, {n_items}) (-1 = padding)")
    ordered = np.sort(recs, axis=1)
    repeat = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    if repeat.any():
        row = int(np.nonzero(repeat.any(axis=1))[0][0])
        raise InvalidRecommendationsError(
            f"{int(repeat.any(axis=1).sum())} lists repeat an item, e.g. user {users[row]}")
    if seen is not None:
        _check_unseen(recs, users, seen)
    return recs


def _check_unseen(recs: np.ndarray, users, seen: sp.csr_matrix) -> None:
    hits, _ = m.hit_matrix(recs, seen[np.asarray(users, dtype=np.int64)])
    if hits.any():
        row, col = (int(v[0]) for v in np.nonzero(hits))
        raise InvalidRecommendationsError(
            f"{int(hits.any(axis=1).sum())} lists hold items the user had in train, e.g. user "
            f"{users[row]} item {recs[row, col]}; recommend only unseen items (agent_sdk.topk_unseen)")


def score_recommendations(recs, relevant_csr, *, users, train: Interactions, k: int = 10,
                          head_fraction: float = 0.2, checked: bool = False) -> MetricReport:
    """Score ``recs`` (rows aligned with ``users`` and ``relevant_csr``) at cut-off ``k``.

    ``train`` is what the candidate was fitted on: it defines seen items, popularity
    (novelty, head/tail) and activity segments. Diversity is reported only when
    ``train.item_features`` is set. Raises ``InvalidRecommendationsError`` when ``recs``
    breaks the contract; ``checked=True`` says the caller already ran
    ``validate_recommendations`` with ``seen`` = train (the evaluator does), so the lists
    are checked once.
    """
    users = np.asarray(users, dtype=np.int64)
    if not checked:
        recs = validate_recommendations(recs, users, train.n_items,
                                        relevant_matrix(train, np.arange(train.n_users)))
    recs = m.cut_recs(recs, k)
    hits, sizes = m.hit_matrix(recs, relevant_csr, k)
    per_user = _per_user(recs, hits, sizes, train, head_fraction, k)
    summary = {name: float(values.mean()) if len(values) else 0.0 for name, values in per_user.items()}
    summary[f"coverage@{k}"] = m.catalogue_coverage(recs, train.n_items)
    segments = _activity_breakdown(recs, per_user, train, users, k)
    segments.update(_item_breakdown(recs, hits, relevant_csr, train, head_fraction, k))
    return MetricReport(k, users, per_user, summary, segments)


def _per_user(recs, hits, sizes, train: Interactions, head_fraction: float, k: int) -> dict:
    out = {f"{name}@{k}": fn(hits, sizes) for name, fn in m.FROM_HITS.items()}
    counts = train.item_counts()
    out[f"novelty@{k}"] = m.novelty(recs, counts, train.n_users)
    if train.item_features is not None:
        out[f"diversity@{k}"] = m.intra_list_diversity(recs, train.item_features)
    out[f"tail_share@{k}"] = m.tail_share(recs, m.head_items(counts, head_fraction))
    return out


def _activity_breakdown(recs, per_user, train, users, k) -> dict[str, dict[str, float]]:
    labels = activity_segments(train, users)
    out = {}
    for index, segment in enumerate(ACTIVITY_SEGMENTS):
        mask = labels == index
        row = {name: float(v[mask].mean()) if mask.any() else 0.0 for name, v in per_user.items()}
        row[f"coverage@{k}"] = m.catalogue_coverage(recs[mask], train.n_items)
        row["n_users"] = int(mask.sum())
        out[segment] = row
    return out


def _item_breakdown(recs, hits, relevant_csr, train, head_fraction, k) -> dict[str, dict[str, float]]:
    head = m.head_items(train.item_counts(), head_fraction)
    valid = (recs >= 0) & (recs < train.n_items)
    in_head = valid & head[np.where(valid, recs, 0)]
    relevant = sp.csr_matrix(relevant_csr)
    out = {}
    for group, slots in (("head", in_head), ("tail", valid & ~in_head)):
        keep = head if group == "head" else ~head
        restricted = relevant @ sp.diags(keep.astype(np.float32))
        restricted.eliminate_zeros()
        group_hits, group_sizes = hits & slots, np.diff(restricted.indptr)
        has = group_sizes > 0
        out[group] = {
            f"exposure@{k}": _share(slots.sum(), valid.sum()),
            f"hit_share@{k}": _share(group_hits.sum(), hits.sum()),
            f"recall@{k}": float(m.FROM_HITS["recall"](group_hits, group_sizes)[has].mean()) if has.any() else 0.0,
            f"ndcg@{k}": float(m.FROM_HITS["ndcg"](group_hits, group_sizes)[has].mean()) if has.any() else 0.0,
            "n_users": int(has.sum()),
        }
    return out


def _share(part, whole) -> float:
    return float(part) / float(whole) if whole else 0.0
