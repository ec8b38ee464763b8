"""Reading what the candidate wrote, without trusting it.

The candidate controls every byte of its output folder: files may be symlinks to the
sealed labels, FIFOs, pickles, headers that claim 10^9 rows, floats full of NaN. Nothing
here follows a link, blocks on a special file or allocates before the header is checked.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from sandbox.runner.errors import InvalidOutputError

RECOMMENDATIONS = "recommendations.npy"
_HEADER_SLACK = 1 << 16  # .npy headers are < 64 KiB
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
        if st.st_size > n_rows * k * 8 + _HEADER_SLACK:
            raise InvalidOutputError(f"{RECOMMENDATIONS} is {st.st_size} bytes, too large "
                                     f"for ({n_rows}, {k}) ids")
        _check_header(f, n_rows, k)
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


def folder_bytes(folder: Path) -> int:
    """Total size of the regular files below ``folder`` (links not followed)."""
    total = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def copy_regular_files(src: Path, dst: Path) -> list[str]:
    """Copy the regular files and folders of ``src`` into ``dst``; return what was skipped.

    Symlinks, FIFOs, sockets and devices are never copied nor followed. Used to bring a
    tier-A output out of its size-limited tmpfs.
    """
    skipped = []
    for root, dirs, files in os.walk(src, followlinks=False):
        rel = Path(root).relative_to(src)
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                skipped.append(str(rel / name))
            else:
                (dst / rel / name).mkdir(exist_ok=True)
        for name in files:
            path = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                shutil.copyfile(path, dst / rel / name, follow_symlinks=False)
            else:
                skipped.append(str(rel / name))
    return skipped
