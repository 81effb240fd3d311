"""One fact over a batch of accounts (a leaf module: :mod:`._facts` and its helpers share it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Column", "_codes", "_days", "_instants", "_members", "_money", "_sets", "_strings"]


@dataclass
class Column:
    """A fact over the batch: values and where they are known."""

    kind: (
        str  # "num" (int64), "money" (int64, 1/10,000), "str" (object), "bool", "set" (object of frozensets)
    )
    values: np.ndarray
    known: np.ndarray
    lists: Any = None  # "set": the Arrow list column, for membership without per-row Python
    members: dict[str, np.ndarray] = field(default_factory=dict)

    def member(self, item: object) -> np.ndarray:
        """Rows whose set holds ``item`` (kind "set")."""
        found = self.members.get(item) if isinstance(item, str) else None
        if found is None:
            if self.lists is None or not isinstance(item, str):
                found = np.fromiter((item in s for s in self.values), bool, len(self.values))
            else:
                flat = pc.list_flatten(self.lists)
                parents = np.asarray(pc.list_parent_indices(self.lists), dtype=np.int64)
                found = np.zeros(len(self.values), bool)
                found[parents[np.asarray(pc.equal(flat, item).fill_null(False), dtype=bool)]] = True
            if isinstance(item, str):
                self.members[item] = found
        return found


# ------------------------------------------------ decoding typed Arrow columns


def _money(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """decimal128(38, 4) → int64 units of 1/10,000 and a mask of values that fit."""
    arr = column.combine_chunks()
    n = len(arr)
    valid = ~np.asarray(arr.is_null(), dtype=bool) if n else np.zeros(0, bool)
    buffer = arr.buffers()[1]
    if buffer is None or n == 0:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    words = np.frombuffer(buffer, dtype=np.int64, count=2 * (n + arr.offset))[2 * arr.offset :]
    low, high = words[0::2], words[1::2]
    fits = high == (low >> 63)
    return np.where(valid, low, 0), valid & fits


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_pylist(), dtype=object)


def _days(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    known = ~np.asarray(arr.is_null(), dtype=bool)
    values = np.asarray(arr.cast(pa.int32()).fill_null(0), dtype=np.int64)
    return values, known


def _instants(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    known = ~np.asarray(arr.is_null(), dtype=bool)
    values = np.asarray(arr.cast(pa.int64()).fill_null(0), dtype=np.int64)
    return values, known


def _codes(column: pa.ChunkedArray, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index of each value in ``vocabulary`` (-1 when null), and where a value is unknown."""
    arr = column.combine_chunks()
    index = pc.index_in(arr, value_set=pa.array(vocabulary))
    codes = np.asarray(index.fill_null(-1), dtype=np.int64)
    bad = (codes < 0) & ~np.asarray(arr.is_null(), dtype=bool)
    return codes, bad


def _sets(column: pa.ChunkedArray) -> np.ndarray:
    out = np.empty(len(column), dtype=object)
    out[:] = [frozenset(v) if v else frozenset() for v in column.to_pylist()]
    return out


def _members(column: pa.ChunkedArray, names: list[str]) -> dict[str, np.ndarray]:
    """For each of ``names``, the rows whose list holds it (no per-row Python)."""
    arr = column.combine_chunks()
    n = len(arr)
    flat = pc.list_flatten(arr)
    parents = np.asarray(pc.list_parent_indices(arr), dtype=np.int64)
    out = {}
    for name in names:
        mask = np.zeros(n, bool)
        mask[parents[np.asarray(pc.equal(flat, name).fill_null(False), dtype=bool)]] = True
        out[name] = mask
    return out
