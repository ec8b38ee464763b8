"""Generated data sets are cached by arguments and generator source (load+split at scale)."""
from __future__ import annotations

import numpy as np

from sandbox.harness.datasets import load_dataset
from sandbox.harness.datasets import synthetic


def test_synthetic_is_generated_once_per_cache_dir_and_read_back_identical(tmp_path, monkeypatch):
    first = load_dataset("synthetic", cache_dir=tmp_path, n_users=120, n_items=60, seed=3)
    assert len(list(tmp_path.glob("generate_synthetic-*.npz"))) == 1

    def fail(*args):
        raise AssertionError("regenerated although cached")
    monkeypatch.setattr(synthetic, "_draw_items", fail)
    again = load_dataset("synthetic", cache_dir=tmp_path, n_users=120, n_items=60, seed=3)
    assert again.fingerprint() == first.fingerprint() and again.name == first.name
    assert np.array_equal(again.item_features, first.item_features)


def test_other_arguments_or_no_cache_dir_generate_afresh(tmp_path):
    a = load_dataset("synthetic", cache_dir=tmp_path, n_users=120, n_items=60, seed=3)
    b = load_dataset("synthetic", cache_dir=tmp_path, n_users=120, n_items=60, seed=4)
    assert a.fingerprint() != b.fingerprint()
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert load_dataset("synthetic", n_users=120, n_items=60, seed=3).fingerprint() == a.fingerprint()


def test_a_corrupt_cache_entry_is_regenerated(tmp_path):
    a = load_dataset("synthetic", cache_dir=tmp_path, n_users=120, n_items=60)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(b"not a zip file")
    assert load_dataset("synthetic", cache_dir=tmp_path, n_users=120, n_items=60).fingerprint() == a.fingerprint()


def test_an_unwritable_cache_dir_still_loads(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    data = load_dataset("synthetic", cache_dir=blocker / "datasets", n_users=50, n_items=40)
    assert len(data) > 0
