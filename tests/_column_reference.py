"""The typed-column decoders the columnar facts used before they read Arrow's
buffers directly (:mod:`escalation.backends.columnar._decode`): kept here, as
they were, as the references the tests hold the buffer decoders to."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation.backends.columnar._column import _objects, _words


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """The values as an object array of ``str`` (``None`` where null): one Python
    string per distinct value (the columns read this way hold few values)."""
    return _objects(*_words(column))


def _codes(column: pa.ChunkedArray, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index of each value in ``vocabulary`` (-1 when null), and where a value is unknown.
    Dictionary-encoded chunks are looked up once per dictionary entry."""
    value_set = pa.array(vocabulary, pa.string())
    total = len(column)
    codes = np.empty(total, np.int64)  # filled chunk by chunk: no concatenation
    bad = np.zeros(total, bool)
    start = 0
    for chunk in column.chunks:
        end = start + len(chunk)
        if pa.types.is_dictionary(chunk.type):
            words = chunk.dictionary
            lut = np.append(np.asarray(pc.index_in(words, value_set=value_set).fill_null(-1), np.int64), -1)
            odd = np.append((lut[:-1] < 0) & ~np.asarray(words.is_null(), dtype=bool), False)
            indices = chunk.indices
            index = np.asarray(indices.fill_null(len(words)) if indices.null_count else indices)
            np.take(lut, index, out=codes[start:end])
            if odd.any():  # a dictionary of known words only (the common case) marks nothing
                bad[start:end] = np.take(odd, index)
        else:
            found = np.asarray(pc.index_in(chunk, value_set=value_set).fill_null(-1), dtype=np.int64)
            codes[start:end] = found
            bad[start:end] = (found < 0) & ~np.asarray(chunk.is_null(), dtype=bool)
        start = end
    return codes, bad


def _is(column: pa.ChunkedArray, word: str) -> np.ndarray:
    """Where the value is ``word`` (``_codes(column, [word])[0] == 0`` without the codes)."""
    out = np.zeros(len(column), bool)
    start = 0
    for chunk in column.chunks:
        end = start + len(chunk)
        if pa.types.is_dictionary(chunk.type):
            lut = np.append(np.asarray(pc.equal(chunk.dictionary, word).fill_null(False), dtype=bool), False)
            indices = chunk.indices
            index = np.asarray(indices.fill_null(len(lut) - 1) if indices.null_count else indices)
            np.take(lut, index, out=out[start:end])
        else:
            out[start:end] = np.asarray(pc.equal(chunk, word).fill_null(False), dtype=bool)
        start = end
    return out


def _labels(column: pa.ChunkedArray) -> np.ndarray:
    """A number per value (-1 when null): equal numbers for equal values."""
    if not column.num_chunks:
        return np.zeros(0, np.int64)
    if pa.types.is_dictionary(column.type):
        # one dictionary for every chunk, then each chunk's indices in place (no concatenation)
        out = np.empty(len(column), np.int64)
        start = 0
        for chunk in column.unify_dictionaries().chunks:
            indices = chunk.indices
            out[start : start + len(chunk)] = np.asarray(
                indices.fill_null(-1) if indices.null_count else indices
            )
            start += len(chunk)
        return out
    return np.asarray(pc.dictionary_encode(column.combine_chunks()).indices.fill_null(-1), dtype=np.int64)
