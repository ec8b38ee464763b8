"""Data sets: synthetic generator, ml-100k (folder and local download), interactions files."""
from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.harness.data import DatasetError
from sandbox.harness.datasets import load_dataset
from tests.conftest import ml100k_path, require_ml100k

ML100K = ml100k_path()
needs_ml100k = pytest.mark.usefixtures("ml100k_dir")   # skips without the copy; fails under CI


# ---- synthetic ------------------------------------------------------------------------

def test_synthetic_is_deterministic_by_seed():
    a = load_dataset("synthetic", n_users=300, n_items=200, seed=3)
    b = load_dataset("synthetic", n_users=300, n_items=200, seed=3)
    c = load_dataset("synthetic", n_users=300, n_items=200, seed=4)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_synthetic_default_shape_and_properties():
    data = load_dataset("synthetic")
    assert (data.n_users, data.n_items) == (3000, 1500)
    assert 120_000 <= len(data) <= 180_000
    key = data.user * data.n_items + data.item
    assert len(np.unique(key)) == len(data), "no duplicate (user, item) pairs"
    order = np.lexsort((data.timestamp, data.user))
    same_user = data.user[order][1:] == data.user[order][:-1]
    assert (np.diff(data.timestamp[order])[same_user] > 0).all(), "timestamps increase per user"
    counts = data.user_counts()
    assert counts.min() >= 3 and np.percentile(counts, 10) <= 8 and counts.max() >= 300
    popularity = np.sort(data.item_counts())[::-1]
    assert popularity[: data.n_items // 5].sum() > 0.45 * len(data), "long tail"
    assert data.item_features.shape == (1500, 20) and data.item_features.dtype == np.float32
    assert set(np.unique(data.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DatasetError, match="synthetic, ml-100k"):
        load_dataset("netflix")


# ---- ml-100k --------------------------------------------------------------------------

@needs_ml100k
def test_ml100k_from_folder():
    data = load_dataset("ml-100k", data_dir=ML100K)
    assert (len(data), data.n_users, data.n_items) == (100_000, 943, 1682)
    assert data.item_features.shape == (1682, 19) and data.user_features.shape[0] == 943
    assert data.item_names[0] == "Toy Story (1995)"
    first = data.user_ids[data.user[0]], data.item_ids[data.item[0]]
    assert first == (196, 242) and data.rating[0] == 3 and data.timestamp[0] == 881250949


def test_ml100k_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(DatasetError, match=r"u\.data, u\.item, u\.user.*--data-dir must point"):
        load_dataset("ml-100k", data_dir=tmp_path / "nowhere")


@pytest.fixture
def served_zip(tmp_path):
    """A zip built from the local ml-100k copy, served on 127.0.0.1; yields (url, md5)."""
    require_ml100k()
    root = tmp_path / "www"
    root.mkdir()
    with zipfile.ZipFile(root / "ml-100k.zip", "w") as z:
        for name in ("u.data", "u.item", "u.user", "README"):
            z.write(ML100K / name, f"ml-100k/{name}")
    md5 = hashlib.md5((root / "ml-100k.zip").read_bytes()).hexdigest()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/ml-100k.zip", md5
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_ml100k_download_verifies_and_caches(served_zip, tmp_path):
    url, md5 = served_zip
    cache = tmp_path / "cache"
    data = load_dataset("ml-100k", cache_dir=cache, download_url=url, download_md5=md5)
    assert len(data) == 100_000 and (cache / "ml-100k" / "u.data").is_file()
    again = load_dataset("ml-100k", cache_dir=cache, download_url="http://127.0.0.1:9/gone.zip",
                         download_md5=md5)            # reused from the cache, no network
    assert again.fingerprint() == data.fingerprint()


def test_ml100k_checksum_mismatch_removes_the_file(served_zip, tmp_path):
    url, _ = served_zip
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="checksum mismatch.*removed"):
        load_dataset("ml-100k", cache_dir=cache, download_url=url, download_md5="0" * 32)
    assert not (cache / "ml-100k.zip").exists() and not (cache / "ml-100k").exists()


def test_ml100k_unreachable_url_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="could not download.*--data-dir"):
        load_dataset("ml-100k", cache_dir=tmp_path, download_url="http://127.0.0.1:9/x.zip")


# ---- interactions files -----------------------------------------------------------------

def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_csv_with_string_ids_and_column_mapping(tmp_path):
    path = _write(tmp_path / "log.csv", "who,what,when\nbob,x,10\nann,y,5\nbob,y,7\n")
    data = load_dataset(path, columns={"user": "who", "item": "what", "timestamp": "when"})
    assert data.user_ids.tolist() == ["ann", "bob"] and data.item_ids.tolist() == ["x", "y"]
    assert data.user.tolist() == [1, 0, 1] and data.rating.tolist() == [1.0, 1.0, 1.0]


def test_tsv_and_parquet_with_ratings(tmp_path):
    tsv = _write(tmp_path / "log.tsv", "user\titem\ttimestamp\trating\n3\t9\t1\t4.5\n1\t9\t2\t2\n")
    assert load_dataset(tsv).rating.tolist() == [4.5, 2.0]
    table = pa.table({"user": [5, 6], "item": ["a", "b"], "timestamp": [1.0, 2.0]})
    pq.write_table(table, tmp_path / "log.parquet")
    assert load_dataset(str(tmp_path / "log.parquet")).timestamp.tolist() == [1, 2]


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("user,item,timestamp\n", "no rows"),
    ("user,item,ts\n1,2,3\n", r"lacks column\(s\) \['timestamp'\]; found \['user', 'item', 'ts'\]"),
    ("user,item,timestamp\n1,2,3\n1,3,yesterday\n", "must be numbers.*'yesterday'"),
    ("user,item,timestamp\n1,2,3\n1,2,4\n2,2,4\n", "1 duplicate rows.*user 1, item 2 at rows 0 and 1"),
])
def test_file_errors_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(_write(tmp_path / "bad.csv", text))


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "none.csv"))
