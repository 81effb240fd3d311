"""One fact over a batch of accounts (a leaf module: :mod:`._facts` and its helpers share it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "Column",
    "_days",
    "_in",
    "_instants",
    "_members",
    "_money",
    "_objects",
    "_sets",
    "_words",
]

_SEP = "\x1f"  # joins a list's strings into one key (lists holding it take the slow path)


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


def _words(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each value's index in a list of the distinct values (-1 where null), and that list."""
    if column.null_count == len(column):  # a field no record has: nothing to encode
        return np.full(len(column), -1, np.int64), []
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    encoded = pc.dictionary_encode(column.combine_chunks())
    indices = encoded.indices
    codes = np.asarray(indices.fill_null(-1) if indices.null_count else indices, dtype=np.int64)
    return codes, encoded.dictionary.to_pylist()


def _objects(codes: np.ndarray, words: list[str]) -> np.ndarray:
    """``words[code]`` per row as an object array (``None`` where the code is -1)."""
    table = np.empty(len(words) + 1, dtype=object)  # the last slot (index -1): null
    table[: len(words)] = words
    out: np.ndarray = table[codes]
    return out


def _days(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    if not arr.null_count:  # no validity pass, no fill
        return np.asarray(arr.cast(pa.int32()), dtype=np.int64), np.ones(len(arr), bool)
    known = ~np.asarray(arr.is_null(), dtype=bool)
    values = np.asarray(arr.cast(pa.int32()).fill_null(0), dtype=np.int64)
    return values, known


def _instants(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    if not arr.null_count:
        return np.asarray(arr.cast(pa.int64()), dtype=np.int64), np.ones(len(arr), bool)
    known = ~np.asarray(arr.is_null(), dtype=bool)
    values = np.asarray(arr.cast(pa.int64()).fill_null(0), dtype=np.int64)
    return values, known


def _in(codes: np.ndarray, members: list[int], size: int) -> np.ndarray:
    """``np.isin(codes, members)`` for codes in ``-1..size-1`` (-1 never a member), by table look-up."""
    table = np.zeros(size + 1, bool)
    table[[m for m in members if 0 <= m < size]] = True
    found: np.ndarray = table[codes]
    return found


def _sets(column: pa.ChunkedArray) -> np.ndarray:
    """Each row's list as a ``frozenset`` (empty where null): one set per distinct list."""
    arr = column.combine_chunks()
    n = len(arr)
    out = np.empty(n, dtype=object)
    flat = pc.list_flatten(arr)
    awkward = flat.null_count > 0 or (
        len(flat) > 0 and bool(pc.any(pc.or_(pc.match_substring(flat, _SEP), pc.equal(flat, ""))).as_py())
    )
    if awkward:  # a null, an empty string or the separator inside a list: one row at a time
        out[:] = [frozenset(v) if v else frozenset() for v in arr.to_pylist()]
        return out
    if arr.null_count == n:  # no row has the field: every set is empty
        out[:] = [frozenset()]
        return out
    encoded = pc.dictionary_encode(pc.binary_join(arr, _SEP))
    keys = encoded.dictionary.to_pylist()
    sets = np.empty(len(keys) + 1, dtype=object)
    sets[:] = [frozenset(k.split(_SEP)) if k else frozenset() for k in keys] + [frozenset()]
    out[:] = sets[np.asarray(encoded.indices.fill_null(len(keys)), dtype=np.int64)]
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
