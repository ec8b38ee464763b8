"""The data set registry: one entry point, ``load_dataset``.

Names: ``synthetic`` (embedded, the default), ``ml-100k`` (a folder, or a verified
download), or a path to an interactions file ending in ``.csv``, ``.tsv`` or ``.parquet``.
"""
from __future__ import annotations

from sandbox.harness.data import DatasetError, Interactions
from sandbox.harness.datasets.cache import cached_generate
from sandbox.harness.datasets.files import SUFFIXES, load_interactions_file
from sandbox.harness.datasets.movielens import ML100K_MD5, ML100K_URL, load_ml100k
from sandbox.harness.datasets.synthetic import generate_synthetic

__all__ = ["DATASETS", "DEFAULT_DATASET", "load_dataset"]

DEFAULT_DATASET = "synthetic"
DATASETS = ("synthetic", "ml-100k")


def load_dataset(name: str = DEFAULT_DATASET, *, data_dir=None, cache_dir=None, seed: int = 0,
                 n_users: int | None = None, n_items: int | None = None,
                 columns: dict | None = None, download_url: str | None = None,
                 download_md5: str | None = None) -> Interactions:
    """Load a data set by name; deterministic for equal arguments.

    - ``synthetic``: uses ``seed``, ``n_users`` (default 3000), ``n_items`` (default 1500);
      generated once per ``cache_dir`` (when given) and read back afterwards.
    - ``ml-100k``: reads ``data_dir`` (the unzipped folder) or, when it is None, downloads
      ``download_url`` (default GroupLens) into ``cache_dir`` (default
      ``~/.cache/agenticrs``) and checks ``download_md5`` (default the published MD5).
    - a ``.csv`` / ``.tsv`` / ``.parquet`` path: uses ``columns`` (role -> column name).

    Arguments that do not apply to the chosen data set are ignored. Raises ``DatasetError``
    for an unknown name and for every loading problem, with what to do about it.
    """
    if name == "synthetic":
        sizes = {k: v for k, v in (("n_users", n_users), ("n_items", n_items)) if v is not None}
        if cache_dir is None:
            return generate_synthetic(seed=seed, **sizes)
        return cached_generate(generate_synthetic, cache_dir, seed=seed, **sizes)
    if name == "ml-100k":
        return load_ml100k(data_dir, cache_dir=cache_dir, url=download_url or ML100K_URL,
                           md5=download_md5 or ML100K_MD5)
    if str(name).lower().endswith(SUFFIXES):
        return load_interactions_file(name, columns)
    raise DatasetError(f"unknown data set {name!r}: use one of {', '.join(DATASETS)} or a path "
                       f"ending in {', '.join(SUFFIXES)}")
