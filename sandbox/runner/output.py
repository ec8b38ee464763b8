"""Reading what the candidate wrote, without trusting it.

The candidate controls every byte of its output folder: files may be symlinks to the
sealed labels, FIFOs, pickles, headers that claim 10^9 rows, floats full of NaN, sparse
files of terabytes, trees deeper than PATH_MAX. Nothing here follows a link, blocks on a
special file, allocates before the header is checked, walks a tree or copies more than
the harness reads (``recommendations.npy``, size-checked first).
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np
from numpy.lib import format as npformat

from sandbox.runner.errors import InvalidOutputError

RECOMMENDATIONS = "recommendations.npy"
_HEADER_SLACK = 1 << 16  # .npy headers are < 64 KiB
_SCAN_ENTRIES = 4096
_HEADER_READERS = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}


def _open_nofollow(folder: Path, name: str) -> int:
    """fd of ``folder/name`` opened without following links at either level."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        dir_fd = os.open(folder, flags | os.O_DIRECTORY)
    except OSError as exc:
        raise InvalidOutputError(f"output folder {folder} unusable: {exc}") from exc
    try:
        return os.open(name, flags | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError as exc:
        raise InvalidOutputError(f"{name} missing: the candidate wrote no recommendations") from exc
    except OSError as exc:  # ELOOP: a symlink
        raise InvalidOutputError(f"{name} is not a plain file (symlink?): {exc}") from exc
    finally:
        os.close(dir_fd)


def _check_header(f, n_rows: int, k: int) -> np.dtype:
    try:
        version = npformat.read_magic(f)
        if version not in _HEADER_READERS:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = _HEADER_READERS[version](f, max_header_size=_HEADER_SLACK)
    except (ValueError, OSError, SyntaxError, EOFError) as exc:
        raise InvalidOutputError(f"{RECOMMENDATIONS} is not a valid .npy file: {exc}") from exc
    if dtype.hasobject:
        raise InvalidOutputError(f"{RECOMMENDATIONS} holds Python objects (a pickle); "
                                 "save an int64 array with allow_pickle=False")
    if dtype.kind not in "iu":
        raise InvalidOutputError(f"{RECOMMENDATIONS} has dtype {dtype} (NaN/float?); "
                                 "recommend() must return integer item ids")
    if tuple(shape) != (n_rows, k):
        raise InvalidOutputError(f"{RECOMMENDATIONS} has shape {tuple(shape)}, expected ({n_rows}, {k})")
    return dtype


def read_recommendations(output: Path, n_rows: int, k: int, n_items: int) -> np.ndarray:
    """Validated recommendations from ``output/recommendations.npy`` as int64 (n_rows, k).

    Ids must lie in ``[-1, n_items)``; -1 pads rows with fewer than ``k`` items. Opens
    without following links, requires a regular file no larger than the expected array
    plus a header, checks the header before reading any data and never unpickles.
    Raises ``InvalidOutputError`` with a message fit for the candidate's author.
    """
    fd = _open_nofollow(Path(output), RECOMMENDATIONS)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InvalidOutputError(f"{RECOMMENDATIONS} is not a regular file")
        _check_header(f, n_rows, k)      # first: a wrong shape is named as such, not as a byte count
        if st.st_size > recommendations_cap(n_rows, k):
            raise InvalidOutputError(f"{RECOMMENDATIONS} is {st.st_size} bytes, too large "
                                     f"for ({n_rows}, {k}) ids")
        f.seek(0)
        try:
            recs = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InvalidOutputError(f"{RECOMMENDATIONS} is truncated or corrupt: {exc}") from exc
    return _check_ids(recs, n_items)


def _check_ids(recs: np.ndarray, n_items: int) -> np.ndarray:
    if recs.size and (recs.min() < -1 or recs.max() >= n_items):
        raise InvalidOutputError(f"item ids must lie in [-1, {n_items}); got "
                                 f"[{recs.min()}, {recs.max()}]")
    return recs.astype(np.int64, copy=False)


def recommendations_cap(n_rows: int, k: int) -> int:
    """Largest acceptable ``recommendations.npy`` (apparent size) for ``(n_rows, k)`` int64 ids."""
    return n_rows * k * 8 + _HEADER_SLACK


@dataclass(frozen=True)
class OutputScan:
    """The top level of an output folder, as seen without descending into it.

    ``apparent_bytes`` sums ``st_size`` of its regular files (a sparse file counts at its
    full size, as a copy would write it). ``surprises`` names the entries the harness
    does not read, whatever their type (an expected name that is no regular file is for
    ``read_recommendations`` to reject, with a clearer message).
    """

    apparent_bytes: int
    surprises: tuple[str, ...]


def scan_output(folder: Path, expected: Collection[str]) -> OutputScan:
    """Scan only the top level of ``folder``: candidate-made trees are never walked.

    At most ``_SCAN_ENTRIES`` entries are looked at; more is itself a surprise.
    """
    total, surprises = 0, []
    with os.scandir(folder) as entries:
        for index, entry in enumerate(entries):
            if index >= _SCAN_ENTRIES:
                surprises.append(f"(more than {_SCAN_ENTRIES} entries)")
                break
            if entry.name not in expected:
                surprises.append(entry.name)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return OutputScan(total, tuple(surprises))


def copy_expected(src: Path, dst: Path, name: str, max_bytes: int) -> bool:
    """Copy the regular file ``src/name`` to ``dst/name`` if its apparent size <= ``max_bytes``.

    Opens without following links or blocking, checks the size *before* copying and
    copies at most that many bytes; returns False (copying nothing) otherwise.
    """
    try:
        fd = _open_nofollow(src, name)
    except InvalidOutputError:
        return False
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return False
        out = os.open(dst / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(out, "wb") as g:
            shutil.copyfileobj(_Bounded(f, st.st_size), g)
    return True


class _Bounded:
    """A reader that stops after ``limit`` bytes (the file may have grown since fstat)."""

    def __init__(self, f, limit: int) -> None:
        self.f, self.left = f, limit

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data
