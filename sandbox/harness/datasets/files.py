"""Any interactions file: CSV, TSV or Parquet with user, item, timestamp and optional rating.

Columns are found by name (``columns`` maps the roles ``user``, ``item``, ``timestamp``,
``rating`` to the file's column names; unmapped roles use their own name). Raw ids
(strings or integers) are remapped to dense 0-based ids in sorted raw-id order; the
mapping is kept in ``user_ids`` / ``item_ids``. Timestamps may be integers, integral
floats (non-integral ones are floored to whole units), or date-times (converted to unix
seconds). A missing rating column means implicit feedback: every rating is 1.0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from sandbox.harness.data import DatasetError, Interactions, check_unique_pairs, dense_ids

__all__ = ["SUFFIXES", "load_interactions_file"]

SUFFIXES = (".csv", ".tsv", ".parquet")
_ROLES = ("user", "item", "timestamp", "rating")


def load_interactions_file(path, columns: dict | None = None) -> Interactions:
    """Load an interactions file into ``Interactions`` (see the module docstring).

    Raises ``DatasetError`` for a missing or empty file, missing columns (naming the
    columns found), null values, non-numeric timestamps or ratings, and duplicate
    (user, item) pairs.
    """
    path = Path(path)
    names = _column_names(columns)
    table = _read_table(path)
    if table.num_rows == 0:
        raise DatasetError(f"{path} has a header but no rows; it needs at least one interaction")
    required = [names[r] for r in ("user", "item", "timestamp")]
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DatasetError(
            f"{path} lacks column(s) {missing}; found {table.column_names}. Map them with "
            f"columns={{'user': ..., 'item': ..., 'timestamp': ..., 'rating': ...}} "
            f"(or the CLI's column-mapping options)")
    for c in required + [names["rating"]] * (names["rating"] in table.column_names):
        if table.column(c).null_count:
            raise DatasetError(f"{path}: column {c!r} has {table.column(c).null_count} empty values; "
                               f"fill or drop those rows")
    return _build(path, table, names)


def _column_names(columns: dict | None) -> dict[str, str]:
    columns = dict(columns or {})
    unknown = set(columns) - set(_ROLES)
    if unknown:
        raise DatasetError(f"unknown column role(s) {sorted(unknown)}; use {list(_ROLES)}")
    return {role: columns.get(role, role) for role in _ROLES}


def _read_table(path: Path) -> pa.Table:
    if path.suffix.lower() not in SUFFIXES:
        raise DatasetError(f"{path}: unknown file type; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DatasetError(f"interactions file {path} does not exist; check the path")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path} is empty; it needs a header row and at least one interaction")
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        return pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from e


def _build(path: Path, table: pa.Table, names: dict[str, str]) -> Interactions:
    user, user_ids = dense_ids(_ids(table.column(names["user"])))
    item, item_ids = dense_ids(_ids(table.column(names["item"])))
    timestamp = _timestamps(table.column(names["timestamp"]), path, names["timestamp"])
    if names["rating"] in table.column_names:
        rating = _numbers(table.column(names["rating"]), path, names["rating"]).astype(np.float32)
    else:
        rating = np.ones(len(user), dtype=np.float32)
    check_unique_pairs(user, item, user_ids=user_ids, item_ids=item_ids, source=str(path))
    return Interactions(user, item, timestamp, rating, len(user_ids), len(item_ids),
                        name=path.name, user_ids=user_ids, item_ids=item_ids)


def _ids(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_integer(column.type):
        return column.to_numpy()
    return np.asarray(column.cast(pa.string()).to_pylist(), dtype=str)


def _numbers(column: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.to_numpy().astype(np.float64)
    raise DatasetError(f"{path}: column {name!r} must be numeric but holds {column.type} "
                       f"values such as {_first_non_number(column)!r}")


def _timestamps(column: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        seconds = pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64())
        return seconds.to_numpy().astype(np.int64)
    if pa.types.is_integer(column.type):
        return column.to_numpy().astype(np.int64)
    if pa.types.is_floating(column.type):
        values = column.to_numpy()
        if not np.isfinite(values).all():
            raise DatasetError(f"{path}: column {name!r} has non-finite timestamps; fix those rows")
        return np.floor(values).astype(np.int64)
    example = _first_non_number(column)
    raise DatasetError(f"{path}: timestamps in column {name!r} must be numbers (e.g. unix seconds) "
                       f"or ISO date-times; found {column.type} values such as {example!r}")


def _first_non_number(column: pa.ChunkedArray):
    """The first value that does not parse as a number (only used to word an error)."""
    values = column.to_pylist()
    for value in values:
        try:
            float(value)
        except (TypeError, ValueError):
            return value
    return values[0]
