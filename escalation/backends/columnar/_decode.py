"""Decoding a batch's event columns for :mod:`._facts` straight from the Arrow
buffers: the same arrays as the decoders they replaced (``_codes``,
``_labels``, ``_is``: kept in ``tests/_column_reference.py`` as the tests'
references) and ``is_null``, with fewer passes.

* Null masks come from the validity bitmaps (``np.unpackbits``: one pass over
  an eighth of the bytes) instead of ``is_null()`` and a conversion.
* Dictionary indices are read as the int32 buffer they are; a value's code is
  ``np.take(table, index, mode="clip")``: with an int32 index and
  ``mode="raise"`` numpy casts the index to a fresh intp array first, which
  costs more than the look-up itself (every index is in range here, so
  clipping changes nothing).
* The index of a null slot is whatever the buffer holds there: such slots
  are masked afterwards, never trusted."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation.backends.columnar._column import _money, _sets

__all__ = ["codes", "is_word", "labels", "money_at", "nulls", "sets", "true_values"]


def _valid(chunk: pa.Array) -> np.ndarray | None:
    """Where ``chunk`` holds a value (``None``: everywhere)."""
    if not chunk.null_count:
        return None
    bitmap = chunk.buffers()[0]
    n, offset = len(chunk), chunk.offset
    bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), count=n + offset, bitorder="little")
    valid: np.ndarray = bits[offset:].view(bool)
    return valid


def _indices(chunk: pa.DictionaryArray) -> np.ndarray:
    """A dictionary chunk's indices as the integers in its buffer (any value at a null)."""
    indices = chunk.indices
    width = indices.type.bit_width // 8
    dtype = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}[width]
    raw: np.ndarray = np.frombuffer(indices.buffers()[1], dtype, count=len(indices) + indices.offset)
    return raw[indices.offset :]


def nulls(column: pa.ChunkedArray) -> np.ndarray:
    """Where the value is null (``~np.asarray(column.is_null())``'s complement)."""
    n = len(column)
    if not column.null_count:
        return np.zeros(n, bool)
    if column.null_count == n:
        return np.ones(n, bool)
    out = np.ones(n, bool)
    start = 0
    for chunk in column.chunks:
        valid = _valid(chunk)
        end = start + len(chunk)
        if valid is None:
            out[start:end] = False
        else:
            np.logical_not(valid, out=out[start:end])
        start = end
    return out


def true_values(column: pa.ChunkedArray) -> np.ndarray:
    """A boolean column's values, null as false (``fill_null(False)``)."""
    out = np.zeros(len(column), bool)
    start = 0
    for chunk in column.chunks:
        end = start + len(chunk)
        if len(chunk):
            offset = chunk.offset
            bits = np.unpackbits(
                np.frombuffer(chunk.buffers()[1], np.uint8), count=len(chunk) + offset, bitorder="little"
            )
            out[start:end] = bits[offset:].view(bool)
            valid = _valid(chunk)
            if valid is not None:
                out[start:end] &= valid
        start = end
    return out


def codes(column: pa.ChunkedArray, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index of each value in ``vocabulary`` (-1 when null), and where a value is
    unknown: the reference ``_codes``."""
    value_set = pa.array(vocabulary, pa.string())
    total = len(column)
    out = np.empty(total, np.int64)
    bad = np.zeros(total, bool)
    start = 0
    for chunk in column.chunks:
        end = start + len(chunk)
        if pa.types.is_dictionary(chunk.type) and len(chunk):
            words = chunk.dictionary
            lut = np.asarray(pc.index_in(words, value_set=value_set).fill_null(-1), np.int64)
            odd = (lut < 0) & ~np.asarray(words.is_null(), dtype=bool)
            lut, odd = np.append(lut, -1), np.append(odd, False)  # never empty: a null-only chunk
            index = _indices(chunk)
            part = out[start:end]
            np.take(lut, index, out=part, mode="clip")
            valid = _valid(chunk)
            if odd.any():  # a dictionary of known words only (the common case) marks nothing
                bad[start:end] = np.take(odd, index, mode="clip")
                if valid is not None:
                    bad[start:end] &= valid
            if valid is not None:  # (code + 1) × valid − 1: -1 at a null, in place
                part += 1
                part *= valid
                part -= 1
        elif len(chunk):
            if pa.types.is_dictionary(chunk.type):  # pragma: no cover - empty chunks only
                chunk = chunk.cast(chunk.type.value_type)
            found = np.asarray(pc.index_in(chunk, value_set=value_set).fill_null(-1), dtype=np.int64)
            out[start:end] = found
            bad[start:end] = (found < 0) & ~np.asarray(chunk.is_null(), dtype=bool)
        start = end
    return out, bad


def is_word(column: pa.ChunkedArray, word: str) -> np.ndarray:
    """Where the value is ``word`` (the reference ``_is``)."""
    out = np.zeros(len(column), bool)
    start = 0
    for chunk in column.chunks:
        end = start + len(chunk)
        if pa.types.is_dictionary(chunk.type) and len(chunk):
            lut = np.append(np.asarray(pc.equal(chunk.dictionary, word).fill_null(False), dtype=bool), False)
            np.take(lut, _indices(chunk), out=out[start:end], mode="clip")
            valid = _valid(chunk)
            if valid is not None:
                out[start:end] &= valid
        elif len(chunk):
            out[start:end] = np.asarray(pc.equal(chunk, word).fill_null(False), dtype=bool)
        start = end
    return out


def labels(column: pa.ChunkedArray) -> np.ndarray:
    """A number per value (-1 when null), equal for equal values: the reference ``_labels``."""
    if not column.num_chunks:
        return np.zeros(0, np.int64)
    if not pa.types.is_dictionary(column.type):
        encoded = pc.dictionary_encode(column.combine_chunks()).indices
        return np.asarray(encoded.fill_null(-1), dtype=np.int64)
    out = np.empty(len(column), np.int64)
    start = 0
    for chunk in column.unify_dictionaries().chunks:
        end = start + len(chunk)
        part = out[start:end]
        np.copyto(part, _indices(chunk))
        valid = _valid(chunk)
        if valid is not None:  # (index + 1) × valid − 1: -1 at a null, in place
            part += 1
            part *= valid
            part -= 1
        start = end
    return out


def money_at(column: pa.ChunkedArray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`._column._money` of the values at positions ``at``; a column of
    nulls only (the common case: events without amounts) is not taken at all
    (taking from a chunked array concatenates its chunks first)."""
    if not len(at) or column.null_count == len(column):
        return np.zeros(len(at), np.int64), np.zeros(len(at), bool)
    return _money(column.take(pa.array(at)))


def sets(column: pa.ChunkedArray) -> np.ndarray:
    """:func:`._column._sets` (each row's list as a ``frozenset``, empty where
    null) with only the rows that hold a list decoded: most accounts have no
    flags and no opt-outs."""
    arr = column.combine_chunks()
    n = len(arr)
    if 2 * arr.null_count < n:
        return _sets(column)
    out = np.empty(n, dtype=object)
    out[:] = [frozenset()]
    if arr.null_count < n:
        rows = np.flatnonzero(~nulls(pa.chunked_array([arr])))
        out[rows] = _sets(pa.chunked_array([arr.take(pa.array(rows))]))
    return out
