"""read_recommendations and the bounded log readers, without a sandbox."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from sandbox.runner import InvalidOutputError, read_recommendations
from sandbox.runner.logs import TailReader
from sandbox.runner.output import copy_expected, scan_output

N_ROWS, K, N_ITEMS = 4, 3, 10


def save(folder, arr, **kw):
    np.save(folder / "recommendations.npy", arr, **kw)


def test_valid_ids_with_padding_are_returned_as_int64(tmp_path):
    save(tmp_path, np.array([[0, 1, 2], [9, 8, -1], [3, -1, -1], [4, 5, 6]], dtype=np.int32))
    recs = read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)
    assert recs.dtype == np.int64 and recs.shape == (N_ROWS, K)


@pytest.mark.parametrize("arr, needle", [
    (np.full((N_ROWS, K), 10), "lie in"),
    (np.full((N_ROWS, K), -2), "lie in"),
    (np.zeros((N_ROWS, K + 1), dtype=np.int64), "shape"),
    (np.zeros((N_ROWS, K)), "dtype float64"),
    (np.full((N_ROWS, K), np.nan), "NaN"),
])
def test_bad_arrays_are_rejected(tmp_path, arr, needle):
    save(tmp_path, arr)
    with pytest.raises(InvalidOutputError, match=needle):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)


def test_a_much_larger_array_of_the_wrong_shape_is_named_by_its_shape(tmp_path):
    save(tmp_path, np.zeros((N_ROWS * 5000, K), dtype=np.int64))   # far above the size cap
    with pytest.raises(InvalidOutputError, match=rf"shape \({N_ROWS * 5000}, {K}\), expected \({N_ROWS}, {K}\)"):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)


def test_pickles_are_rejected_without_unpickling(tmp_path):
    save(tmp_path, np.empty((N_ROWS, K), dtype=object), allow_pickle=True)
    with pytest.raises(InvalidOutputError, match="pickle"):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)


def test_symlink_fifo_and_missing_file_are_rejected(tmp_path):
    with pytest.raises(InvalidOutputError, match="missing"):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)
    target = tmp_path / "real.npy"
    np.save(target, np.zeros((N_ROWS, K), dtype=np.int64))
    (tmp_path / "recommendations.npy").symlink_to(target)
    with pytest.raises(InvalidOutputError, match="symlink"):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)
    (tmp_path / "recommendations.npy").unlink()
    os.mkfifo(tmp_path / "recommendations.npy")  # must not block
    with pytest.raises(InvalidOutputError, match="regular file"):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)


def test_header_claiming_1e9_rows_is_rejected_before_allocating(tmp_path):
    with open(tmp_path / "recommendations.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<i8", "fortran_order": False,
                                                 "shape": (10**9, K)})
        f.write(b"\0" * 64)
    with pytest.raises(InvalidOutputError, match="shape"):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)


def test_truncated_and_oversized_files_are_rejected(tmp_path):
    save(tmp_path, np.zeros((N_ROWS, K), dtype=np.int64))
    path = tmp_path / "recommendations.npy"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(InvalidOutputError, match="truncated|corrupt"):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)
    path.write_bytes(path.read_bytes() + b"\0" * (1 << 17))
    with pytest.raises(InvalidOutputError, match="too large"):
        read_recommendations(tmp_path, N_ROWS, K, N_ITEMS)


def test_tail_reader_keeps_only_the_tail_of_a_flood():
    r, w = os.pipe()
    reader = TailReader(r, limit=1000)

    def flood():
        for i in range(2000):
            os.write(w, f"{i:09d}\n".encode() * 100)
        os.close(w)

    writer = threading.Thread(target=flood)
    writer.start()
    writer.join(10)
    assert reader.join(10)
    assert reader.total_bytes == 2000 * 1000 and len(reader.tail()) == 1000
    assert reader.text().endswith("000001999\n")


def _deep_tree(folder, depth=25):
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):  # 25 x 201 chars: deeper than PATH_MAX
        os.mkdir("d" * 200, dir_fd=fd)
        deeper = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(fd)


def test_scan_counts_apparent_sizes_and_never_descends(tmp_path):
    save(tmp_path, np.zeros((N_ROWS, K), dtype=np.int64))
    with open(tmp_path / "sparse.bin", "wb") as f:
        f.truncate(3 * 2**30)  # 3 GiB apparent, no block
    _deep_tree(tmp_path)
    scan = scan_output(tmp_path, {"recommendations.npy"})
    assert scan.apparent_bytes >= 3 * 2**30
    assert sorted(scan.surprises) == sorted(["sparse.bin", "d" * 200])


def test_copy_checks_the_apparent_size_before_copying(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir(), dst.mkdir()
    with open(src / "recommendations.npy", "wb") as f:
        f.truncate(2**30)
    assert not copy_expected(src, dst, "recommendations.npy", max_bytes=2**20)
    assert list(dst.iterdir()) == []
    (src / "recommendations.npy").unlink()
    (src / "recommendations.npy").symlink_to(tmp_path / "elsewhere")
    assert not copy_expected(src, dst, "recommendations.npy", max_bytes=2**20)
    (src / "recommendations.npy").unlink()
    save(src, np.arange(12).reshape(N_ROWS, K))
    assert copy_expected(src, dst, "recommendations.npy", max_bytes=2**20)
    assert (dst / "recommendations.npy").read_bytes() == (src / "recommendations.npy").read_bytes()
