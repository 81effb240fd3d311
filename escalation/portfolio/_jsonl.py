"""Decision rows as JSON lines from an Arrow table, byte for byte what
:meth:`~escalation.portfolio.writer.DecisionWriter.write` writes for each row,
without per-row Python.

Every field after ``account_id`` takes few distinct values in a batch, so the
rest of each line (``","status":…}\\n``) is rendered by ``json.dumps`` once per
distinct combination of those fields, found from each column's dictionary
codes (:mod:`~escalation.portfolio._coded`: the fold hashes each column once
and passes its codes), and picked per row; the ids are joined in by Arrow."""

from __future__ import annotations

import json
from typing import Any

from escalation.portfolio._coded import Codes, codes_of, list_codes, single
from escalation.portfolio.writer import DECISION_FIELDS as FIELDS

__all__ = ["jsonl_buffer", "jsonl_bytes"]


def jsonl_bytes(table: Any, coded: dict[str, Codes] | None = None) -> bytes:
    """The rows of an Arrow table of decision rows as JSON lines (``coded``:
    codes of some of its columns, already computed)."""
    return bytes(jsonl_buffer(table, coded).to_pybytes())


def jsonl_buffer(table: Any, coded: dict[str, Codes] | None = None) -> Any:
    """:func:`jsonl_bytes` as an Arrow buffer (no copy of the lines into ``bytes``:
    a file writes it as it is)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        return pa.py_buffer(b"")
    coded = dict(coded or {})
    for name in FIELDS[1:]:
        if name not in coded:
            column = table.column(name)
            coded[name] = list_codes(column)[0] if name == "blocked_guards" else codes_of(column)
    number, holders = _numbered([(coded[name].codes, len(coded[name].values)) for name in FIELDS[1:]], n)
    # each value's member text once (``json.dumps`` renders a row's members alike, one by one)
    members = [
        (coded[name].codes, [f',"{name}":' + json.dumps(v, ensure_ascii=False, separators=(",", ":"))
                             for v in coded[name].values])
        for name in FIELDS[1:]
    ]  # fmt: skip
    picks = [[texts[k] for k in codes[holders].tolist()] for codes, texts in members]
    tails = ["".join(texts) + "}\n" for texts in zip(*picks, strict=True)]
    ids = single(table.column("account_id"))
    if _plain(ids):  # the usual case: each id is its JSON text between quotes
        picked = pc.take(pa.array(['"' + tail for tail in tails], pa.string()), pa.array(number))
        lines = pc.binary_join_element_wise('{"account_id":"', ids, picked, "")
    else:
        texts = [json.dumps(v, ensure_ascii=False) if v is not None else "null" for v in ids.to_pylist()]
        picked = pc.take(pa.array(tails, pa.string()), pa.array(number))
        lines = pc.binary_join_element_wise('{"account_id":', pa.array(texts, pa.string()), picked, "")
    buffers = lines.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=lines.offset * 4)
    start = int(offsets[0])
    return buffers[2].slice(start, int(offsets[-1]) - start)


def _numbered(keys: list[tuple[Any, int]], n: int) -> tuple[Any, Any]:
    """Each row's combination of ``keys`` (codes and how many each can take)
    numbered 0, 1, … (equal combinations, equal numbers), and a row holding each."""
    import numpy as np

    key = np.zeros(n, np.int64)
    size = 1
    for codes, width in keys:
        if size * width > 4 * n + 4096:  # keep ``key`` small: number the combinations densely
            key, size, _ = _dense(key, size)
        key = key * width + codes
        size *= width
    number, _, holders = _dense(key, size)
    return number, holders


def _dense(key: Any, size: int) -> tuple[Any, int, Any]:
    """``key`` (each below ``size``) renumbered 0, 1, … in order of value: the
    numbers, how many, and a row holding each."""
    import numpy as np

    if size > 4 * len(key) + 4096:  # (tables of ``size`` entries would cost more than a sort)
        _, holder, number = np.unique(key, return_index=True, return_inverse=True)
        return number.reshape(-1).astype(np.int64), len(holder), holder
    present = np.zeros(size, bool)
    present[key] = True
    numbers = np.cumsum(present) - 1
    rows = np.zeros(size, np.int64)
    rows[key] = np.arange(len(key))  # (any row of a combination will do)
    return numbers[key], int(numbers[-1]) + 1, rows[present]


def _plain(ids: Any) -> bool:
    """Whether no id is null and none holds a byte JSON escapes."""
    import numpy as np

    if ids.null_count:
        return False
    data = ids.buffers()[2]
    if data is None:
        return True
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32, count=len(ids) + 1, offset=ids.offset * 4)
    raw = np.frombuffer(data, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    # the bytes json.dumps(..., ensure_ascii=False) escapes: control characters, `"` and `\\`
    return not ((raw < 32).any() or (raw == ord('"')).any() or (raw == ord("\\")).any())
