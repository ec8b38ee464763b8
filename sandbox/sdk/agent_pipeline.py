"""agent_pipeline: the composition runner, executing a pipeline's graph inside one sandbox run.

A pipeline candidate is a generated module whose ``Agent`` subclasses ``Pipeline`` and sets
``spec`` (the resolved plan, a JSON-able dict) and ``components`` (label -> module source of
each ranker, re-ranker and router). The graph::

    users --router--> branch --sources (quotas)--> candidates --ranker--> scores --reranker--> top-k

The recall sources do not run here: the harness ran each one in its own sandbox run (fitted
on the stage's train, and on the ranker window's prefix), validated and cached their
candidate lists, and mounts them read-only under ``<inputs>/sources``::

    meta.json            {"depth": D, "share": s, "sources": [label, ...]}
    window_users.npy     the users of the ranker window (agent_sdk.ranker_window of train)
    target-<label>.npy   int64 (len(users.npy), D): the source's top-D for the scored users
    window-<label>.npy   int64 (len(window_users), D): fitted on the window's prefix

Component contracts (``__init__(**params)`` as for every agent):

- ranker:   ``fit(train, window)``: ``window`` is a ``CandidateSet`` with ``labels`` (1 where
            the candidate is among the user's held-out window items); ``score(users,
            candidates) -> float (len(users), n_candidates)``, higher first.
- reranker: ``fit(train)``; ``rerank(users, candidates, scores, k) -> int64 (len(users), k)``.
- router:   ``fit(train)``; ``route(users) -> int labels`` in ``[0, n_branches)``.

``recommend(users, K)`` is asked for ``K = 2 k`` columns by the harness: the first ``k`` are
the pipeline's lists, the next ``k`` each branch ranker's lists before re-ranking (its inner
reward, NDCG of its ranking of the candidate set). Both halves are checked like any agent's.
"""
from __future__ import annotations

import json
import os
import sys
import types

import numpy as np

import agent_sdk

__all__ = ["CandidateSet", "Pipeline", "candidate_features", "load_component"]


class CandidateSet:
    """Candidates of a batch of users: ``items`` int64 (n, C) with -1 padding; ``features``
    name -> float32 (n, C); ``labels`` float32 (n, C) on the ranker window, else None.

    Features: for each source slot ``j`` of the branch ``rr_j`` = 1 / (1 + rank) in the
    source's list (0 when absent) and ``in_j`` (1 when the source proposed it within its
    quota); ``item_pop`` and ``item_recent`` (log counts over all and the last 10% of the
    time span, scaled to [0, 1]); ``item_pop_now`` (log count in the 5% of the time span
    before the user's last interaction, scaled); ``user_activity`` (log count, scaled);
    ``sim_recent`` and ``sim_profile`` (mean co-occurrence cosine between the candidate and the
    user's last 10 / all items: ``|U_i & U_j| / sqrt(|U_i| |U_j|)`` over the fit data, exact up
    to 4000 items, a rank-64 factorisation of it above); ``pop_gap`` (the candidate's
    ``item_pop`` minus the mean over the user's items); ``item_age`` (time from the item's first
    interaction to the user's last one, over the data's time span; negative when the item
    appeared after it); ``genre_match`` (cosine of the candidate's ``item_features`` and the
    mean over the user's items; 0 without item features); ``valid``.
    """

    def __init__(self, users, items, features, labels=None):
        self.users, self.items, self.features, self.labels = users, items, features, labels

    def matrix(self, names):
        """(n, C, len(names)) float32 stack of the named features."""
        return np.stack([self.features[name] for name in names], axis=-1).astype(np.float32)

    @property
    def valid(self):
        return self.items >= 0


def load_component(code: str, label: str):
    """Execute a component's module source as module ``component_<label>``."""
    name = "component_" + "".join(c if c.isalnum() else "_" for c in label)
    module = types.ModuleType(name)
    module.__file__ = f"<{label}>"
    sys.modules[name] = module
    exec(compile(code, f"<component {label}>", "exec"), module.__dict__)  # noqa: S102 - in the sandbox
    return module


RECENT_ITEMS = 10               # sim_recent: the user's last distinct items
EXACT_SIMILARITY_ITEMS = 4000   # up to this many items the item-item cosine is exact (dense)
SIMILARITY_RANK = 64            # above: its rank-64 factorisation


def _diag(values: np.ndarray):
    import scipy.sparse as sp

    return sp.diags(values.astype(np.float32))


def _counts(values: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(values, minlength=size)[:size].astype(np.float64)


def _scaled_log(counts: np.ndarray) -> np.ndarray:
    top = np.log1p(counts.max()) if counts.size and counts.max() > 0 else 1.0
    return (np.log1p(counts) / top).astype(np.float32)


class _Context:
    """Per-data statistics the features use (computed on what the sources were fitted on)."""

    def __init__(self, train):
        self.item_pop = _scaled_log(_counts(train.item, train.n_items))
        if len(train):
            lo, hi = train.timestamp.min(), train.timestamp.max()
            recent = train.timestamp >= hi - 0.1 * (hi - lo)
        else:
            recent = np.zeros(0, dtype=bool)
        self.item_recent = _scaled_log(_counts(train.item[recent], train.n_items))
        self.user_activity = _scaled_log(_counts(train.user, train.n_users))
        # Item popularity around each user's time: interactions in the ``span`` before the
        # user's last one (users' histories end at different times in a temporal split).
        self.user_time = np.full(train.n_users, -np.inf)
        if len(train):
            np.maximum.at(self.user_time, train.user, train.timestamp.astype(np.float64))
            lo, hi = float(train.timestamp.min()), float(train.timestamp.max())
            self.span = max((hi - lo) * 0.05, 1.0)
        else:
            self.span = 1.0
        order = np.lexsort((train.timestamp, train.item))
        self.sorted_items, self.sorted_times = train.item[order], train.timestamp[order].astype(np.float64)
        self.item_start = np.searchsorted(self.sorted_items, np.arange(train.n_items + 1))
        self._pop_scale = np.log1p(max(1.0, float(np.bincount(train.item, minlength=1).max()) if len(train) else 1.0))
        self.time_span = max(float(train.timestamp.max() - train.timestamp.min()), 1.0) if len(train) else 1.0
        self.item_first = np.full(train.n_items, np.inf)
        if len(train):
            np.minimum.at(self.item_first, train.item, train.timestamp.astype(np.float64))
        self._affinity(train)

    def _affinity(self, train) -> None:
        """What the user-item affinity features need: each user's last items, profiles, item vectors."""
        n_users, n_items = train.n_users, train.n_items
        sequences = train.sequences() if len(train) else [np.zeros(0, dtype=np.int64)] * n_users
        counts = _counts(train.item, n_items) if len(train) else np.zeros(n_items)
        self.recent = np.full((n_users, RECENT_ITEMS), -1, dtype=np.int64)
        for u, seq in enumerate(sequences):
            seq = np.unique(seq[::-1], return_index=True)
            last = seq[0][np.argsort(seq[1])][:RECENT_ITEMS]      # distinct, most recent first
            self.recent[u, :len(last)] = last
        matrix = train.matrix()
        self.n_items = n_items
        scale = 1.0 / np.sqrt(np.maximum(counts, 1.0))
        if n_items <= EXACT_SIMILARITY_ITEMS:
            normed = (matrix @ _diag(scale)).tocsc()
            similarity = np.asarray((normed.T @ normed).todense(), dtype=np.float32)
            np.fill_diagonal(similarity, 0.0)
            self.similarity, self.item_vectors = similarity, None
        else:
            from scipy.sparse.linalg import svds

            normed = (matrix @ _diag(scale)).astype(np.float64)
            rank = max(1, min(SIMILARITY_RANK, min(normed.shape) - 1))
            if normed.nnz:
                _, sigma, vt = svds(normed, k=rank, random_state=0)
                self.item_vectors = (vt.T * sigma).astype(np.float32)   # similarity ~ vectors @ vectors.T
            else:
                self.item_vectors = np.zeros((n_items, rank), dtype=np.float32)
        user_sum = np.asarray(matrix.sum(axis=1)).reshape(-1)
        self.user_pop = np.asarray(matrix @ self.item_pop.astype(np.float64)).reshape(-1) / np.maximum(user_sum, 1)
        self.matrix = matrix
        genres = train.item_features
        if genres is not None:
            genres = np.asarray(genres, dtype=np.float32)
            self.genres = genres / np.maximum(np.linalg.norm(genres, axis=1, keepdims=True), 1e-6)
            profile = np.asarray(matrix @ genres, dtype=np.float32)
            self.genre_profile = profile / np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-6)
        else:
            self.genres = self.genre_profile = None

    def _similarity_to(self, own, items: np.ndarray) -> np.ndarray:
        """Mean similarity of each candidate in ``items`` (n, C) to its row's items in ``own``
        (a sparse (n, n_items) 0/1 matrix)."""
        size = np.maximum(np.asarray(own.sum(axis=1)).reshape(-1), 1.0)[:, None]
        safe = np.clip(items, 0, None)
        if self.item_vectors is None:
            summed = np.asarray(own @ self.similarity, dtype=np.float32)
            return np.take_along_axis(summed, safe, axis=1) / size
        mean = np.asarray(own @ self.item_vectors, dtype=np.float32) / size
        return np.einsum("ncd,nd->nc", self.item_vectors[safe], mean)

    def affinity(self, users: np.ndarray, items: np.ndarray) -> dict:
        """The user-item affinity features of ``CandidateSet`` for (n, C) candidate ``items``."""
        import scipy.sparse as sp

        users = np.asarray(users, dtype=np.int64)
        valid = items >= 0
        safe = np.where(valid, items, 0)
        recent = self.recent[users]
        rows, cols = np.nonzero(recent >= 0)
        last = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, recent[rows, cols])),
                             shape=(len(users), self.n_items))
        out = {"sim_recent": self._similarity_to(last, items),
               "sim_profile": self._similarity_to(self.matrix[users], items)}
        out["pop_gap"] = (self.item_pop[safe] - self.user_pop[users][:, None]).astype(np.float32)
        age = (self.user_time[users][:, None] - self.item_first[safe]) / self.time_span
        out["item_age"] = np.nan_to_num(np.clip(age, -1.0, 1.0), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        if self.genres is not None:
            out["genre_match"] = np.einsum("ncd,nd->nc", self.genres[safe], self.genre_profile[users]).astype(np.float32)
        else:
            out["genre_match"] = np.zeros(items.shape, dtype=np.float32)
        return {name: np.where(valid, value, 0).astype(np.float32) for name, value in out.items()}

    def pop_at(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scaled log count of each item's interactions within ``span`` before its user's last one."""
        n_items = len(self.item_start) - 1
        safe = np.clip(items, 0, max(n_items - 1, 0))
        t = np.broadcast_to(self.user_time[users][:, None], items.shape)
        # Per item a sorted run of times: offset the keys so one searchsorted serves all items.
        big = float(self.sorted_times.max() - self.sorted_times.min() + 4 * self.span + 1) if len(self.sorted_times) else 1.0
        base = float(self.sorted_times.min()) if len(self.sorted_times) else 0.0
        keys = (self.sorted_items * big + (self.sorted_times - base + 2 * self.span))
        hi = np.searchsorted(keys, safe * big + np.clip(t - base + 2 * self.span, 0, big - 1), side="right")
        lo = np.searchsorted(keys, safe * big + np.clip(t - self.span - base + 2 * self.span, 0, big - 1), side="left")
        counts = np.where(items >= 0, hi - lo, 0).astype(np.float64)
        return (np.log1p(counts) / self._pop_scale).astype(np.float32)


def _ranks(pool: np.ndarray, lst: np.ndarray) -> np.ndarray:
    """Per cell of ``pool`` (n, C), its 0-based position in the same row of ``lst`` (n, D), or -1.

    One searchsorted over the rows laid end to end (row ``r`` offset by ``r * span``).
    """
    n, depth = lst.shape
    if n == 0 or depth == 0 or pool.shape[1] == 0:
        return np.full(pool.shape, -1, dtype=np.int64)
    span = int(max(lst.max(), pool.max(), 0)) + 2
    offset = (np.arange(n, dtype=np.int64) * span)[:, None]
    order = np.argsort(lst, axis=1, kind="stable")
    flat = (np.take_along_axis(lst, order, axis=1) + offset).ravel()
    keys = pool + offset
    at = np.searchsorted(flat, keys.ravel()).reshape(pool.shape)
    at = np.minimum(at, flat.size - 1)
    found = (flat[at] == keys) & (pool >= 0)
    col = at - (np.arange(n, dtype=np.int64) * depth)[:, None]
    col = np.clip(col, 0, depth - 1)
    return np.where(found, np.take_along_axis(order, col, axis=1), -1)


def candidate_features(users, lists, quotas, context):
    """Union of each source's top-``quota`` items per user, with the features of ``CandidateSet``.

    ``lists``: per source slot, int64 (n, D) candidate lists (-1 padded) of these users.
    Order of the union: by best reciprocal rank over the sources, so candidate 0 is the most
    agreed-upon one. Returns (items (n, C), features).
    """
    n = len(users)
    heads = [lst[:, :q] for lst, q in zip(lists, quotas) if q > 0]
    pool = np.concatenate(heads, axis=1) if heads else np.full((n, 0), -1, dtype=np.int64)
    # Unique per row, keeping -1 last: sort, drop repeats.
    pool = np.sort(np.where(pool < 0, np.iinfo(np.int64).max, pool), axis=1)
    repeat = np.zeros_like(pool, dtype=bool)
    repeat[:, 1:] = pool[:, 1:] == pool[:, :-1]
    pool = np.where(repeat | (pool == np.iinfo(np.int64).max), -1, pool)
    valid = pool >= 0
    features = {}
    best = np.zeros(pool.shape, dtype=np.float32)
    for j, (lst, q) in enumerate(zip(lists, quotas)):
        rank = _ranks(pool, lst)
        hit = (rank >= 0) & valid
        rr = np.where(hit, 1.0 / (1.0 + np.maximum(rank, 0)), 0.0).astype(np.float32)
        inside = (hit & (rank < q)).astype(np.float32)
        features[f"rr_{j}"], features[f"in_{j}"] = rr, inside
        best = np.maximum(best, rr * inside)
    safe = np.where(valid, pool, 0)
    features["item_pop"] = np.where(valid, context.item_pop[safe], 0).astype(np.float32)
    features["item_recent"] = np.where(valid, context.item_recent[safe], 0).astype(np.float32)
    features["item_pop_now"] = np.where(valid, context.pop_at(np.asarray(users, dtype=np.int64), pool), 0).astype(np.float32)
    features["user_activity"] = np.broadcast_to(context.user_activity[users][:, None], pool.shape).astype(np.float32)
    features.update(context.affinity(users, pool))
    features["valid"] = valid.astype(np.float32)
    order = np.argsort(-np.where(valid, best, -1.0), axis=1, kind="stable")
    pool = np.take_along_axis(pool, order, axis=1)
    features = {name: np.take_along_axis(value, order, axis=1) for name, value in features.items()}
    return pool, features


class Pipeline:
    """The ``Agent`` of a pipeline run; subclasses set ``spec`` and ``components``.

    ``spec``: {"k": int, "share": float, "sources": [label], "router": label | None,
    "branches": [{"sources": [label], "quotas": [int], "ranker": label,
    "reranker": label | None, "rerank_depth": int}]}.
    """

    spec: dict = {}
    components: dict = {}

    def __init__(self, **params):
        self.params = params
        self.modules = {}

    def _component(self, label: str, role: str):
        entry = self.components[label]
        if label not in self.modules:
            self.modules[label] = load_component(entry["code"], label)
        try:
            return self.modules[label].Agent(**entry.get("params", {}))
        except Exception as exc:
            raise RuntimeError(f"{role} {label}: Agent(**params) failed: {exc}") from exc

    def _source_lists(self, kind: str):
        folder = os.path.join(os.environ.get("AGENTICRS_INPUTS", "/inputs"), "sources")
        return {label: np.load(os.path.join(folder, f"{kind}-{label}.npy"), allow_pickle=False)
                for label in self.spec["sources"]}

    def fit(self, train) -> None:
        spec = self.spec
        folder = os.path.join(os.environ.get("AGENTICRS_INPUTS", "/inputs"), "sources")
        with open(os.path.join(folder, "meta.json")) as f:
            meta = json.load(f)
        held = agent_sdk.ranker_window(train, float(meta["share"]))
        prefix, window = train.subset(~held), train.subset(held)
        window_users = np.load(os.path.join(folder, "window_users.npy"), allow_pickle=False)
        self.train, self.context = train, _Context(train)
        self.router = None
        if spec.get("router"):
            self.router = self._component(spec["router"], "router")
            self.router.fit(train)
        window_lists = self._source_lists("window")
        self.target_lists = self._source_lists("target")
        labels_of = np.zeros(len(window_users), dtype=np.int64)
        if self.router is not None and len(window_users):
            labels_of = self._route(window_users)
        prefix_context = _Context(prefix)
        position = {int(u): i for i, u in enumerate(window_users)}
        truth = {}
        for u, i in zip(window.user.tolist(), window.item.tolist()):
            truth.setdefault(u, set()).add(i)
        self.rankers, self.rerankers = [], []
        for b, branch in enumerate(spec["branches"]):
            rows = np.flatnonzero(labels_of == b)
            users = window_users[rows]
            items, features = candidate_features(users, [window_lists[s][rows] for s in branch["sources"]],
                                                 branch["quotas"], prefix_context)
            labels = np.zeros(items.shape, dtype=np.float32)
            for r, u in enumerate(users.tolist()):
                got = truth.get(u)
                if got:
                    labels[r] = np.isin(items[r], list(got)) & (items[r] >= 0)
            ranker = self._component(branch["ranker"], "ranker")
            ranker.fit(prefix, CandidateSet(users, items, features, labels))
            self.rankers.append(ranker)
            reranker = None
            if branch.get("reranker"):
                reranker = self._component(branch["reranker"], "reranker")
                reranker.fit(train)
            self.rerankers.append(reranker)
        self._positions = position

    def _route(self, users):
        labels = np.asarray(self.router.route(np.asarray(users, dtype=np.int64))).reshape(-1)
        n = len(self.spec["branches"])
        if labels.shape != (len(users),) or labels.dtype.kind not in "iub":
            raise ValueError(f"router.route must return int labels of shape ({len(users)},), "
                             f"got {labels.dtype} {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= n):
            raise ValueError(f"router.route returned labels in [{labels.min()}, {labels.max()}]; "
                             f"the pipeline has {n} branch(es): labels must lie in [0, {n})")
        return labels.astype(np.int64)

    def recommend(self, users, k):
        users = np.asarray(users, dtype=np.int64)
        k_out = int(self.spec["k"])
        scored = np.load(os.path.join(os.environ.get("AGENTICRS_INPUTS", "/inputs"), "users.npy"),
                         allow_pickle=False)
        where = np.searchsorted(scored, users)
        if len(users) and (where.max() >= len(scored) or not np.array_equal(scored[where], users)):
            raise ValueError("recommend() was asked for users the sources have no candidates for")
        labels = self._route(users) if self.router is not None else np.zeros(len(users), dtype=np.int64)
        final = np.full((len(users), k_out), -1, dtype=np.int64)
        before = np.full((len(users), k_out), -1, dtype=np.int64)
        for b, branch in enumerate(self.spec["branches"]):
            rows = np.flatnonzero(labels == b)
            if not len(rows):
                continue
            step = 4096
            for start in range(0, len(rows), step):
                part = rows[start:start + step]
                lists = [self.target_lists[s][where[part]] for s in branch["sources"]]
                items, features = candidate_features(users[part], lists, branch["quotas"], self.context)
                cands = CandidateSet(users[part], items, features)
                scores = np.asarray(self.rankers[b].score(users[part], cands), dtype=np.float64)
                if scores.shape != items.shape:
                    raise ValueError(f"ranker.score must return shape {items.shape}, got {scores.shape}")
                scores = np.where(items >= 0, np.nan_to_num(scores, nan=-1e30), -np.inf)
                order = np.argsort(-scores, axis=1, kind="stable")
                ranked = np.take_along_axis(items, order, axis=1)
                ranked_scores = np.take_along_axis(scores, order, axis=1)
                width = min(k_out, ranked.shape[1])
                before[part, :width] = ranked[:, :width]
                reranker = self.rerankers[b]
                if reranker is None:
                    final[part, :width] = ranked[:, :width]
                    continue
                depth = max(k_out, min(int(branch.get("rerank_depth", 50)), ranked.shape[1]))
                out = np.asarray(reranker.rerank(users[part], ranked[:, :depth], ranked_scores[:, :depth], k_out))
                if out.shape[0] != len(part) or out.shape[1] < width:
                    raise ValueError(f"reranker.rerank must return ({len(part)}, {k_out}), got {out.shape}")
                final[part, :width] = out[:, :width]
        if k == k_out:
            return final
        return np.concatenate([final, before], axis=1)
