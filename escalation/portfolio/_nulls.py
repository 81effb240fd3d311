"""All-null Arrow columns made without allocating: views of one shared zero
buffer (the typed read makes a batch's null-throughout columns — e.g. a
money column no event has — for every batch)."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["nulls"]

_zeros: pa.Buffer = pa.py_buffer(b"")  # grown on demand; immutable, so shared by every null column


def _zero(size: int) -> pa.Buffer:
    """``size`` zero bytes (a slice of the shared buffer)."""
    global _zeros
    if _zeros.size < size:
        # bytes(n) is calloc'ed: pages never read cost no memory
        _zeros = pa.py_buffer(bytes(max(size, 2 * _zeros.size, 1 << 16)))
    return _zeros.slice(0, size)


def nulls(kind: pa.DataType, rows: int) -> pa.Array:
    """``pa.nulls(rows, kind)``, its buffers views of zeros (other types: ``pa.nulls``)."""
    bits = _zero((rows + 7) // 8)
    if pa.types.is_boolean(kind):
        return pa.Array.from_buffers(kind, rows, [bits, bits], null_count=rows)
    if pa.types.is_string(kind):
        return pa.Array.from_buffers(kind, rows, [bits, _zero(4 * (rows + 1)), _zero(0)], null_count=rows)
    if pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
        offsets, child = _zero(4 * (rows + 1)), pa.array([], kind.value_type)
        return pa.Array.from_buffers(kind, rows, [bits, offsets], null_count=rows, children=[child])
    width = kind.bit_width if pa.types.is_primitive(kind) or pa.types.is_decimal(kind) else 0
    if width and width % 8 == 0:  # integers, dates, instants, decimals
        return pa.Array.from_buffers(kind, rows, [bits, _zero(rows * width // 8)], null_count=rows)
    return pa.nulls(rows, kind)
