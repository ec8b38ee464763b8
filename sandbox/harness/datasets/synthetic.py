"""The embedded ``synthetic`` data set: a small generative model in which recency matters.

The model, all draws from one ``numpy.random.Generator(PCG64(seed))``:

1. **Topics and items.** ``n_topics`` topics sit on a ring. Every item has a primary topic
   (uniform) and, with probability 0.5, a secondary one (half the time a ring neighbour
   of the primary, so that neighbouring topics share items). Its membership vector
   (1.0 primary, 0.5 secondary) plus N(0, 0.05) noise is ``item_features`` (float32,
   ``(n_items, n_topics)``, "latent genres"). Base popularity is Zipf-like:
   ``b_i = rank_i ** -zipf`` over a random permutation of ranks (long tail).
2. **Users.** Each user belongs to a segment: cold-start (30%, 3 + Poisson(3)
   interactions), medium (45%, log-normal around 30) or heavy (25%, 60 + Lomax(1.5)
   x 60, a heavy tail), capped at 40% of the catalogue. Long-term taste ``pi_u`` is
   Dirichlet(0.3) over topics (a few favourite topics); ``user_features`` is ``pi_u``
   plus N(0, 0.05) noise (an "onboarding questionnaire").
3. **Drifting tastes.** A user's history is a chain of phases; each interaction starts a
   new phase with probability ``switch``. A phase's topic is either drawn afresh from
   ``pi_u`` (probability ``fresh`` = 0.2, and always for the first phase) or a step of +/-1 on the
   ring from the previous phase's topic (drift). So the latest interactions predict the
   next ones much better than old ones: recency-aware and sequential models beat
   popularity and plain matrix factorisation.
4. **Items within a phase.** With probability 0.15 a "mainstream" draw from ``b``; else an
   item of the phase topic, ``p(i | g) ~ b_i ** 0.8 * membership[i, g]``. Repeated
   (user, item) pairs are dropped (first occurrence kept); users are over-sampled so that
   they still reach their activity (heavy users of a narrow taste may end slightly short).
5. **Time and ratings.** Each user starts at a uniform time in the first 60% of a two-year
   window and then interacts at exponential gaps (>= 1 s): timestamps strictly increase
   per user. Ratings (1..5, float32) rise with the item's membership of the phase topic.

Defaults: 3000 users, 1500 items, ~150k interactions, generated in about a second.
"""
from __future__ import annotations

import numpy as np

from sandbox.harness.data import DatasetError, Interactions

__all__ = ["generate_synthetic"]

_EPOCH = 1_600_000_000           # 2020-09-13, so that timestamps look like unix seconds
_SPAN = 2 * 365 * 24 * 3600      # two years


def generate_synthetic(n_users: int = 3000, n_items: int = 1500, *, seed: int = 0,
                       n_topics: int = 20, switch: float = 0.07, fresh: float = 0.2,
                       zipf: float = 1.0) -> Interactions:
    """Generate the ``synthetic`` data set (see the module docstring for the model).

    Deterministic in all arguments. Raises ``DatasetError`` if the sizes are too small to
    give every user at least three distinct items.
    """
    if n_users < 1 or n_items < 20:
        raise DatasetError(f"synthetic needs n_users >= 1 and n_items >= 20; got {n_users}, {n_items}")
    rng = np.random.default_rng(seed)
    membership, popularity = _items(rng, n_items, n_topics, zipf)
    taste = rng.dirichlet(np.full(n_topics, 0.3), size=n_users)
    activity = _activity(rng, n_users, cap=max(3, int(0.4 * n_items)))
    user, item, affinity = _draw_items(rng, activity, taste, membership, popularity, switch, fresh)
    timestamp = _timestamps(rng, user, n_users)
    rating = np.clip(np.rint(2.0 + 2.4 * affinity + rng.normal(0.0, 0.8, len(user))), 1, 5)
    item_features = membership + rng.normal(0.0, 0.05, membership.shape)
    user_features = taste + rng.normal(0.0, 0.05, taste.shape)
    return Interactions(user, item, timestamp, rating.astype(np.float32), n_users, n_items,
                        item_features=item_features, user_features=user_features,
                        name=f"synthetic(seed={seed},n_users={n_users},n_items={n_items})")


def _items(rng, n_items: int, n_topics: int, zipf: float) -> tuple[np.ndarray, np.ndarray]:
    """Topic memberships ``(n_items, n_topics)`` and Zipf-like base popularity."""
    membership = np.zeros((n_items, n_topics))
    primary = rng.integers(0, n_topics, n_items)
    membership[np.arange(n_items), primary] = 1.0
    has_second = rng.random(n_items) < 0.5
    neighbour = (primary + rng.choice([-1, 1], n_items)) % n_topics
    second = np.where(rng.random(n_items) < 0.5, neighbour, rng.integers(0, n_topics, n_items))
    rows = np.flatnonzero(has_second & (second != primary))
    membership[rows, second[rows]] = 0.5
    popularity = (rng.permutation(n_items) + 1.0) ** -zipf
    return membership, popularity


def _activity(rng, n_users: int, cap: int) -> np.ndarray:
    """Interactions wanted per user: a cold / medium / heavy mixture with a heavy tail."""
    segment = rng.choice(3, size=n_users, p=[0.30, 0.45, 0.25])
    cold = 3 + rng.poisson(3.0, n_users)
    medium = np.rint(rng.lognormal(np.log(30.0), 0.4, n_users))
    heavy = 60 + np.rint(rng.pareto(1.5, n_users) * 60.0)
    counts = np.choose(segment, [cold, medium, heavy]).astype(np.int64)
    return np.clip(counts, 3, cap)


def _phase_topics(rng, user: np.ndarray, taste: np.ndarray, switch: float, fresh_p: float) -> np.ndarray:
    """Topic of every draw: phases that start afresh from ``taste`` or drift on the ring."""
    n, n_topics = len(user), taste.shape[1]
    first = np.ones(n, dtype=bool)
    first[1:] = user[1:] != user[:-1]
    starts = first | (rng.random(n) < switch)
    phase_user = user[starts]
    fresh = first[starts] | (rng.random(len(phase_user)) < fresh_p)
    cdf = np.cumsum(taste[phase_user], axis=1)
    fresh_topic = (cdf < rng.random((len(phase_user), 1)) * cdf[:, -1:]).sum(axis=1)
    step = np.where(fresh, 0, rng.choice([-1, 1], len(phase_user)))
    group = np.cumsum(fresh) - 1                       # the latest fresh phase of each phase
    walked = np.cumsum(step)
    offset = walked - walked[np.flatnonzero(fresh)][group]
    topic = (fresh_topic[fresh][group] + offset) % n_topics
    return topic[np.cumsum(starts) - 1]


def _draw_items(rng, activity, taste, membership, popularity, switch, fresh):
    """Draw each user's items in time order; returns (user, item, affinity) after de-duplication."""
    n_users, n_items = len(activity), len(popularity)
    tries = np.ceil(activity * 1.6).astype(np.int64) + 5
    user = np.repeat(np.arange(n_users), tries)
    topic = _phase_topics(rng, user, taste, switch, fresh)
    item = np.empty(len(user), dtype=np.int64)
    mainstream = rng.random(len(user)) < 0.15
    item[mainstream] = _sample(rng, popularity, int(mainstream.sum()))
    weights = popularity[:, None] ** 0.8 * membership
    for g in range(membership.shape[1]):
        rows = np.flatnonzero(~mainstream & (topic == g))
        item[rows] = _sample(rng, weights[:, g], len(rows))
    _, first_seen = np.unique(user * n_items + item, return_index=True)
    keep = np.zeros(len(user), dtype=bool)
    keep[first_seen] = True
    user, item, topic = user[keep], item[keep], topic[keep]
    starts = np.searchsorted(user, np.arange(n_users))
    rank = np.arange(len(user)) - starts[user]
    keep = rank < activity[user]
    return user[keep], item[keep], membership[item[keep], topic[keep]]


def _sample(rng, weights: np.ndarray, size: int) -> np.ndarray:
    cdf = np.cumsum(weights)
    picks = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
    return np.minimum(picks, len(weights) - 1)


def _timestamps(rng, user: np.ndarray, n_users: int) -> np.ndarray:
    """Strictly increasing unix-second timestamps per user (rows are grouped by user in order)."""
    counts = np.bincount(user, minlength=n_users)
    start = rng.uniform(0, 0.6 * _SPAN, n_users)
    mean_gap = 0.4 * _SPAN / np.maximum(counts, 1) * rng.uniform(0.2, 1.0, n_users)
    gaps = 1 + np.floor(rng.exponential(1.0, len(user)) * mean_gap[user])
    first = np.ones(len(user), dtype=bool)
    first[1:] = user[1:] != user[:-1]
    gaps[first] = 0
    total = np.cumsum(gaps)
    offset = total - total[np.flatnonzero(first)][np.cumsum(first) - 1]
    return (_EPOCH + np.floor(start[user]) + offset).astype(np.int64)
