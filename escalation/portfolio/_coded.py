"""Dictionary codes of a decided batch's columns, for the dry-run's fold: each
column hashed once per batch (:func:`codes_of`, :func:`list_codes`) and shared
by the JSON-lines encoder (:mod:`~escalation.portfolio._jsonl`) and the tallies
(:mod:`~escalation.portfolio._fold`), which group rows by several codes at once
in one pass (:func:`combos`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Codes", "codes_of", "combos", "interleaved", "list_codes", "single"]


@dataclass(frozen=True)
class Codes:
    """A number per row (``codes``; equal values, equal numbers) and the value
    each number stands for (``values``; ``None`` for null)."""

    codes: np.ndarray
    values: list[Any]


def single(column: Any) -> Any:
    """A column as one Arrow array (a table's column may come in chunks)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def codes_of(column: Any) -> Codes:
    """The codes of a column of scalars (nulls get a code of their own): strings
    numbered in order of first appearance (the order a guard's blocks are
    counted in), small integers by value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = single(column)
    n = len(column)
    if column.null_count == n:  # (a column of nulls, e.g. reasons not rendered: nothing to hash)
        return Codes(np.zeros(n, np.int32), [None])
    if pa.types.is_integer(column.type):
        low, high = pc.min_max(column).values()
        if high.as_py() - low.as_py() < 4 * n + 4096:  # small integers: numbered by value, no hashing
            low_value = low.as_py()
            dtype = np.dtype(column.type.to_pandas_dtype())
            data = np.frombuffer(column.buffers()[1], dtype, n, column.offset * dtype.itemsize)
            codes = data.astype(np.int64) - (low_value - 1)
            if column.null_count:  # (a null slot's data is undefined)
                codes *= np.asarray(pc.is_valid(column))
            return Codes(codes, [None, *range(low_value, high.as_py() + 1)])
    elif not column.null_count and column[0] == column[n - 1] and pc.all(pc.equal(column, column[0])).as_py():
        return Codes(np.zeros(n, np.int32), [column[0].as_py()])  # one value (a policy's fingerprint)
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return Codes(np.asarray(encoded.indices), encoded.dictionary.to_pylist())


def interleaved(first: Codes, second: Codes, picks: Any) -> Codes:
    """The codes of two equally long columns laid end to end, then rows ``picks``
    taken (an experiment's candidate table: each row from its arm's table); a
    value both have keeps one code."""
    index: dict[Any, int] = {}
    for value in first.values + second.values:
        index.setdefault(value, len(index))
    remap = [np.array([index[v] for v in c.values], np.int64) for c in (first, second)]
    both = np.concatenate([remap[0][first.codes], remap[1][second.codes]])
    return Codes(both[picks], list(index))


def list_codes(column: Any) -> tuple[Codes, Codes]:
    """The codes of a list column (equal lists, equal codes; each value a
    Python list, ``None`` for a null list) and of its items (flattened, rows
    in order)."""
    import pyarrow.compute as pc

    column = single(column)
    items = codes_of(pc.list_flatten(column))
    lengths = np.asarray(pc.list_value_length(column).fill_null(-1), dtype=np.int64)
    codes = (lengths < 0).astype(np.int64)  # 0: the empty list, 1: null
    values: list[Any] = [[], None]
    full = np.flatnonzero(lengths > 0)
    if not len(full):
        return Codes(codes, values), items
    counts = lengths[full]
    starts = np.cumsum(counts) - counts  # where each full row's items begin
    base = len(items.values) + 1
    if base ** int(counts.max()) < 2**62:  # a list as a number: its item codes + 1 as digits
        position = np.arange(int(counts.sum())) - np.repeat(starts, counts)
        power = np.repeat(counts, counts) - 1 - position
        digits = (items.codes.astype(np.int64) + 1) * np.power(base, power, dtype=np.int64)
        keys = np.add.reduceat(digits, starts)
        _, holder, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:  # (lists too long to number: rare) by their tuples of item codes
        seen: dict[tuple[int, ...], int] = {}
        tuples = [tuple(items.codes[s : s + c].tolist()) for s, c in zip(starts, counts, strict=True)]
        inverse = np.array([seen.setdefault(t, len(seen)) for t in tuples], np.int64)
        holder = np.array([tuples.index(t) for t in seen], np.int64)
    codes[full] = 2 + inverse.reshape(-1)
    for row in holder.tolist():
        values.append(
            [items.values[c] for c in items.codes[starts[row] : starts[row] + counts[row]].tolist()]
        )
    return Codes(codes, values), items


def combos(keys: list[tuple[Any, int]], units: Any) -> tuple[Any, list[int], list[int]]:
    """Rows grouped by several codes at once (``keys``: each a number per row
    and how many numbers it can take): each group's first row, rows and sum
    of ``units`` (exact: numpy int64, as a group-by's), groups in order of
    first appearance."""
    n = len(units)
    combined = np.zeros(n, np.int64)
    size = 1
    for codes, width in keys:
        if size * width > 4 * n + 4096:  # keep the numbers small: renumber the combinations so far
            _, combined = np.unique(combined, return_inverse=True)
            combined = combined.reshape(-1).astype(np.int64)
            size = int(combined.max()) + 1 if n else 1
        combined = combined * width + codes
        size *= width
    if size > 4 * n + 4096:
        _, combined = np.unique(combined, return_inverse=True)
        combined = combined.reshape(-1).astype(np.int64)
        size = int(combined.max()) + 1 if n else 1
    counts = np.bincount(combined, minlength=size)
    sums = np.zeros(size, np.int64)
    np.add.at(sums, combined, np.asarray(units, np.int64))
    first = np.full(size, n, np.int64)
    np.minimum.at(first, combined, np.arange(n, dtype=np.int64))
    present = np.flatnonzero(counts)
    present = present[np.argsort(first[present], kind="stable")]
    return first[present], counts[present].tolist(), sums[present].tolist()
