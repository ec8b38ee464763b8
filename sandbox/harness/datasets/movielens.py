"""MovieLens 100K (``ml-100k``): read from a folder, or download, verify and cache the archive.

The files are never shipped with the project (the licence forbids redistribution).
Dense ids follow the order of ``u.user`` / ``u.item``; ``user_ids`` / ``item_ids`` keep
the raw GroupLens ids.

- ``item_features``: the 19 binary genre columns of ``u.item`` (float32).
- ``user_features``: ``[age / 100, is_male, one-hot occupation (sorted names)]`` (float32).
- ``item_names``: the titles (``u.item`` is Latin-1).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from sandbox.harness.data import DatasetError, Interactions, check_unique_pairs

__all__ = ["ML100K_MD5", "ML100K_URL", "default_cache_dir", "download_ml100k", "load_ml100k"]

log = logging.getLogger(__name__)

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_MD5 = "0e33842e24a9c977be4e0107933c0723"
_FILES = ("u.data", "u.item", "u.user")
_N_GENRES = 19


def default_cache_dir() -> Path:
    """``$AGENTICRS_CACHE_DIR`` if set, else ``~/.cache/agenticrs``."""
    return Path(os.environ.get("AGENTICRS_CACHE_DIR") or Path.home() / ".cache" / "agenticrs")


def load_ml100k(data_dir=None, *, cache_dir=None, url: str = ML100K_URL,
                md5: str = ML100K_MD5) -> Interactions:
    """Load ml-100k from ``data_dir`` (the unzipped folder), or download it into the cache.

    Raises ``DatasetError`` when the folder lacks a file, a download fails or its checksum
    does not match.
    """
    if data_dir is None:
        folder = download_ml100k(cache_dir or default_cache_dir(), url=url, md5=md5)
    else:
        folder = Path(data_dir)
    _check_folder(folder)
    users, user_features = _read_users(folder / "u.user")
    items, names, item_features = _read_items(folder / "u.item")
    user, item, rating, timestamp = _read_ratings(folder / "u.data", users, items)
    check_unique_pairs(user, item, user_ids=users, item_ids=items, source=str(folder / "u.data"))
    return Interactions(user, item, timestamp, rating, len(users), len(items),
                        item_features=item_features, user_features=user_features,
                        name="ml-100k", item_names=names, user_ids=users, item_ids=items)


def _check_folder(folder: Path) -> None:
    missing = [name for name in _FILES if not (folder / name).is_file()]
    if missing:
        where = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        raise DatasetError(
            f"ml-100k folder {folder} {where}: it must contain {', '.join(_FILES)}; "
            f"--data-dir must point to the unzipped ml-100k folder (or omit it to download "
            f"the archive from GroupLens)")


def _read_users(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split("|") for line in path.read_text(encoding="latin-1").splitlines() if line]
    try:
        ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
        age = np.array([float(r[1]) for r in rows]) / 100.0
    except (ValueError, IndexError) as e:
        raise DatasetError(f"{path} is not a MovieLens u.user file (id|age|gender|occupation|zip)") from e
    male = np.array([r[2] == "M" for r in rows], dtype=np.float64)
    occupations = sorted({r[3] for r in rows})
    onehot = np.zeros((len(rows), len(occupations)))
    onehot[np.arange(len(rows)), [occupations.index(r[3]) for r in rows]] = 1.0
    return ids, np.column_stack([age, male, onehot]).astype(np.float32)


def _read_items(path: Path) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    rows = [line.split("|") for line in path.read_text(encoding="latin-1").splitlines() if line]
    try:
        ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
        genres = np.array([[float(v) for v in r[-_N_GENRES:]] for r in rows], dtype=np.float32)
    except (ValueError, IndexError) as e:
        raise DatasetError(f"{path} is not a MovieLens u.item file (id|title|...|19 genre flags)") from e
    return ids, tuple(r[1] for r in rows), genres


def _read_ratings(path: Path, users: np.ndarray, items: np.ndarray):
    try:
        raw = np.loadtxt(path, dtype=np.int64, delimiter="\t", ndmin=2)
    except ValueError as e:
        raise DatasetError(f"{path} must hold tab-separated integers: user, item, rating, timestamp") from e
    if raw.shape[0] == 0 or raw.shape[1] != 4:
        raise DatasetError(f"{path} is empty or not 4 columns (user, item, rating, timestamp)")
    user, item = _dense(raw[:, 0], users, "user", path), _dense(raw[:, 1], items, "item", path)
    return user, item, raw[:, 2].astype(np.float32), raw[:, 3]


def _dense(raw: np.ndarray, vocabulary: np.ndarray, what: str, path: Path) -> np.ndarray:
    order = np.argsort(vocabulary)
    pos = np.searchsorted(vocabulary[order], raw).clip(0, len(vocabulary) - 1)
    unknown = vocabulary[order][pos] != raw
    if unknown.any():
        raise DatasetError(f"{path} names {what} {raw[unknown][0]} that is not in u.{what}; "
                           f"is the folder a complete, unmodified ml-100k?")
    return order[pos].astype(np.int64)


def download_ml100k(cache_dir, *, url: str = ML100K_URL, md5: str = ML100K_MD5) -> Path:
    """Return ``cache_dir/ml-100k``, downloading and extracting the archive if needed.

    The archive is verified against ``md5`` before extraction; on a mismatch it is removed
    and ``DatasetError`` is raised. A complete extracted folder is reused without network.
    """
    cache_dir = Path(cache_dir)
    folder = cache_dir / "ml-100k"
    if all((folder / name).is_file() for name in _FILES):
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    archive = cache_dir / "ml-100k.zip"
    if not archive.is_file():
        _fetch(url, archive)
    digest = _md5(archive)
    if digest != md5:
        archive.unlink()
        raise DatasetError(f"checksum mismatch for {url}: md5 {digest}, expected {md5}; the file "
                           f"was removed. Retry, or download and unzip it yourself and pass --data-dir")
    _extract(archive, folder)
    return folder


def _fetch(url: str, target: Path) -> None:
    log.info("downloading %s to %s", url, target)
    partial = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as e:
        partial.unlink(missing_ok=True)
        raise DatasetError(f"could not download {url} ({e}); check the network, or download and "
                           f"unzip it yourself and pass --data-dir") from e
    os.replace(partial, target)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _extract(archive: Path, folder: Path) -> None:
    """Extract the data files (whatever folder the zip puts them in) into ``folder``."""
    tmp = folder.with_name(folder.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as z:
            members = {Path(n).name: n for n in z.namelist() if Path(n).name in _FILES}
            missing = [name for name in _FILES if name not in members]
            if missing:
                raise DatasetError(f"{archive} lacks {', '.join(missing)}; delete it and retry")
            for name, member in members.items():
                (tmp / name).write_bytes(z.read(member))
    except zipfile.BadZipFile as e:
        raise DatasetError(f"{archive} is not a zip archive; delete it and retry") from e
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
