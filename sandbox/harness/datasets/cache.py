"""An on-disk cache of generated data sets: a design run regenerates nothing it made before.

Generating the ML-10M-sized ``synthetic`` (70k users x 10.7k items) takes 4-7 s per
process; reading it back takes a fraction of a second. Entries are keyed by the generator's
arguments and the sha256 of the generator's source, so editing the generator invalidates
them. Writes are atomic (temp file + rename); an unreadable entry is regenerated.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from sandbox.harness.data import Interactions

__all__ = ["cached_generate"]

log = logging.getLogger(__name__)
_ARRAYS = ("user", "item", "timestamp", "rating", "item_features", "user_features")


def cached_generate(generate: Callable[..., Interactions], cache_dir, **kwargs) -> Interactions:
    """``generate(**kwargs)``, read from ``cache_dir`` when an equal call was cached there."""
    source = inspect.getsource(inspect.getmodule(generate))
    key = json.dumps({"fn": generate.__qualname__, "kwargs": kwargs, "source": source}, sort_keys=True)
    path = Path(cache_dir) / f"{generate.__name__}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    data = _read(path)
    if data is None:
        data = generate(**kwargs)
        _write(path, data)
    return data


def _read(path: Path) -> Interactions | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: (z[k] if k in z.files else None) for k in _ARRAYS}
            return Interactions(**arrays, n_users=int(z["n_users"]), n_items=int(z["n_items"]),
                                name=str(z["name"]))
    except (OSError, KeyError, ValueError) as e:
        log.warning("regenerating: unreadable data set cache %s (%s)", path, e)
        return None


def _write(path: Path, data: Interactions) -> None:
    """Store ``data`` at ``path``; a cache that cannot be written costs time, never the run."""
    arrays = {k: getattr(data, k) for k in _ARRAYS if getattr(data, k) is not None}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    except OSError as e:
        log.warning("cannot cache the data set in %s: %s", path.parent, e)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, n_users=np.int64(data.n_users), n_items=np.int64(data.n_items),
                     name=np.array(data.name))
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        log.warning("cannot cache the data set at %s: %s", path, e)
