"""The ranker's user-item affinity features mean what CandidateSet documents, and on the
ranker window they are computed from the prefix only (a window label never feeds them)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox" / "sdk"))
import agent_pipeline  # noqa: E402
from agent_pipeline import _Context, candidate_features  # noqa: E402
from agent_sdk import TrainData  # noqa: E402

# Items 0 and 1 are always seen together (users 0-3); item 2 with item 3 (users 4-7); user 8
# has seen item 0 only. Genres: items 0, 1 are "A", items 2, 3 are "B".
ROWS = [(u, i, t) for u in range(4) for i, t in ((0, 10 + u), (1, 20 + u))] + \
       [(u, i, t) for u in range(4, 8) for i, t in ((2, 10 + u), (3, 60 + u))] + [(8, 0, 30)]
GENRES = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)


def train_data(rows=ROWS, genres=GENRES) -> TrainData:
    users, items, times = (np.array(c) for c in zip(*rows))
    return TrainData(users, items, times, np.ones(len(rows)), n_users=9, n_items=4, item_features=genres)


def features_of(train, user: int, candidates: list[int]) -> dict:
    lists = [np.array([candidates], dtype=np.int64)]
    items, features = candidate_features(np.array([user]), lists, [len(candidates)], _Context(train))
    order = {int(item): c for c, item in enumerate(items[0])}
    return {name: {item: float(value[0, order[item]]) for item in candidates} for name, value in features.items()}


def test_an_item_seen_with_the_users_items_is_more_similar_than_one_never_seen_with_them():
    f = features_of(train_data(), user=8, candidates=[1, 2, 3])
    assert f["sim_recent"][1] > 0.5 > f["sim_recent"][2] == f["sim_recent"][3] == 0.0
    assert f["sim_profile"][1] == pytest.approx(f["sim_recent"][1])   # one item: recent == all
    assert f["genre_match"][1] == pytest.approx(1.0) and f["genre_match"][2] == pytest.approx(0.0)


def test_item_age_is_negative_for_an_item_first_seen_after_the_users_last_interaction():
    f = features_of(train_data(), user=0, candidates=[2, 3])      # user 0's last interaction: t=20
    assert f["item_age"][2] > 0 > f["item_age"][3]                # item 2 from t=14, item 3 from t=64


def test_pop_gap_is_the_candidates_popularity_above_the_users_mean():
    f = features_of(train_data(), user=8, candidates=[1, 2])      # item 0 (user 8's) has 5 users, item 1 has 4
    assert f["pop_gap"][1] < 0 and f["pop_gap"][1] == pytest.approx(f["pop_gap"][2])


def test_without_item_features_genre_match_is_zero():
    f = features_of(train_data(genres=None), user=8, candidates=[1, 2])
    assert f["genre_match"] == {1: 0.0, 2: 0.0}


def test_above_the_exact_size_the_factorised_similarity_ranks_items_alike(monkeypatch):
    exact = features_of(train_data(), user=8, candidates=[1, 2])["sim_recent"]
    monkeypatch.setattr(agent_pipeline, "EXACT_SIMILARITY_ITEMS", 2)
    approx = features_of(train_data(), user=8, candidates=[1, 2])["sim_recent"]
    assert approx[1] > approx[2] and exact[1] > exact[2]


def test_a_held_out_window_item_does_not_feed_the_features_of_its_own_candidates():
    # user 8 later sees item 2: with that row in the data, item 3 (seen with item 2) becomes
    # similar to user 8; built from the prefix (the row held out), it is not.
    later = ROWS + [(8, 2, 90)]
    full = features_of(train_data(later), user=8, candidates=[3])
    prefix = features_of(train_data(later).subset(np.arange(len(later)) < len(ROWS)), user=8, candidates=[3])
    assert full["sim_profile"][3] > 0 and prefix["sim_profile"][3] == 0.0
