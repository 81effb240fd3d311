"""Portfolio output: decision rows written as JSONL or Parquet (in row groups)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Literal

from escalation.decision import Decision

__all__ = ["DECISION_FIELDS", "DecisionWriter", "decision_row", "decision_schema", "encode"]

DECISION_FIELDS = (
    "account_id",
    "status",
    "action",
    "channel",
    "severity",
    "reason",
    "next_eligible_at",
    "hold",
    "blocked_guards",
    "policy_fingerprint",
)


def decision_row(decision: Decision) -> dict[str, Any]:
    """The flat output row of one decision."""
    return {
        "account_id": decision.account_id,
        "status": decision.status,
        "action": decision.action,
        "channel": decision.channel,
        "severity": decision.severity,
        "reason": decision.reason,
        "next_eligible_at": decision.next_eligible_at.isoformat() if decision.next_eligible_at else None,
        "hold": decision.hold,
        "blocked_guards": sorted({b.guard for b in decision.blocked}),
        "policy_fingerprint": decision.policy.fingerprint,
    }


def _json_text(column: Any) -> Any:
    """Each string as JSON text (``json.dumps(..., ensure_ascii=False)``), ``null`` for nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pc.any(pc.match_substring_regex(column, "[\\x00-\\x1f]")).as_py():  # rare: control characters
        return pa.array(
            [json.dumps(v, ensure_ascii=False) if v is not None else "null" for v in column.to_pylist()]
        )
    text = pc.replace_substring(pc.replace_substring(column, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', text, '"', "").fill_null("null")


# columns holding few distinct values (ids from the policy, instants, reasons):
# each distinct value is escaped once
_FEW_VALUES = frozenset(
    {"status", "action", "channel", "reason", "next_eligible_at", "hold", "policy_fingerprint"}
)


def _json_text_few(column: Any) -> Any:
    """:func:`_json_text` of a column with few distinct values: each distinct
    string escaped once, then picked per row."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column)
    return pc.take(_json_text(encoded.dictionary), encoded.indices).fill_null("null")


def jsonl_bytes(table: Any) -> bytes:
    """The rows of an Arrow table of decision rows as JSON lines, byte for byte
    what :meth:`DecisionWriter.write` writes for each row (no per-row Python).

    Every field after ``account_id`` takes few distinct values in a batch, so
    the rest of each line (``,"status":…}\\n``) is rendered once per distinct
    combination of those fields (:func:`_row_text` on one row of each) and
    picked per row; only the ids are escaped row by row."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return b""
    table = table.combine_chunks()
    n = table.num_rows
    key = np.zeros(n, np.int64)
    size = 1  # distinct values ``key`` can take so far
    for name in DECISION_FIELDS[1:]:
        codes, width = _codes(name, _column(table, name))
        if size * width > max(4 * n, 4096):  # keep ``key`` small: number the combinations densely
            key, size, _ = _dense(key, size)
        key = key * width + codes
        size *= width
    number, _, holder = _dense(key, size)  # (any row will do as holder: its combination's rows render alike)
    tails = _row_text(table.take(pa.array(holder)), DECISION_FIELDS[1:], ",")
    ids = _ids_text(_column(table, "account_id"))
    lines = pc.binary_join_element_wise('{"account_id":', ids, pc.take(tails, pa.array(number)), "")
    buffers = lines.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(buffers[2])[int(offsets[0]) : int(offsets[-1])].tobytes()


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
    rows[key] = np.arange(len(key))
    return numbers[key], int(numbers[-1]) + 1, rows[present]


def _codes(name: str, column: Any) -> tuple[Any, int]:
    """A number per row standing for its value of decision field ``name`` (equal
    values, equal numbers; 0 for null) and how many numbers there can be."""
    import numpy as np
    import pyarrow.compute as pc

    if name == "blocked_guards":  # lists: most are empty; the others stand by their rendered text
        full = np.asarray(pc.fill_null(pc.list_value_length(column), -1), dtype=np.int64) != 0
        if not full.any():
            return np.zeros(len(column), np.int64), 1
        rows = np.flatnonzero(full)
        encoded = pc.dictionary_encode(_value_text(name, column.take(rows)))
        codes = np.zeros(len(column), np.int64)
        codes[rows] = np.asarray(encoded.indices.fill_null(-1), dtype=np.int64) + 2  # 1: null list
        return codes, len(encoded.dictionary) + 2
    encoded = pc.dictionary_encode(column)
    return np.asarray(encoded.indices.fill_null(-1), dtype=np.int64) + 1, len(encoded.dictionary) + 1


def _column(table: Any, name: str) -> Any:
    column = table.column(name)
    return column.chunk(0) if column.num_chunks else column


def _ids_text(column: Any) -> Any:
    """:func:`_json_text` of the ids, without the escaping passes when nothing needs escaping."""
    import numpy as np
    import pyarrow.compute as pc

    # the bytes json.dumps(..., ensure_ascii=False) escapes: control characters, `"` and `\\`
    escaped = np.zeros(256, bool)
    escaped[:32] = escaped[ord('"')] = escaped[ord("\\")] = True
    data = column.buffers()[2]
    if data is not None and escaped[np.frombuffer(data, dtype=np.uint8)].any():
        return _json_text(column)
    return pc.binary_join_element_wise('"', column, '"', "").fill_null("null")


def _value_text(name: str, column: Any) -> Any:
    """Each value of decision field ``name`` as JSON text."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if name == "severity":
        return pc.cast(column, pa.string()).fill_null("null")
    if name == "blocked_guards":
        offsets = np.asarray(column.offsets, dtype=np.int32)
        items = _json_text_few(pc.list_flatten(column))
        lists = pa.ListArray.from_arrays(pa.array(offsets - offsets[0]), items)
        return pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")
    if name in _FEW_VALUES:
        return _json_text_few(column)
    return _json_text(column)


def _row_text(table: Any, names: tuple[str, ...], lead: str) -> Any:
    """Each row's fields ``names`` as JSON object members (``lead`` before the
    first), closed with ``}\\n``."""
    import json

    import pyarrow.compute as pc

    parts: list[Any] = []
    for name in names:
        parts += [("," if parts else lead) + json.dumps(name) + ":", _value_text(name, _column(table, name))]
    parts.append("}\n")
    return pc.binary_join_element_wise(*parts, "")


def encode(table: Any, fmt: str) -> Any:
    """An Arrow table of decision rows ready to append to a decisions file of
    format ``fmt``: its JSON lines (bytes), or the table in :func:`decision_schema`."""
    return jsonl_bytes(table) if fmt == "jsonl" else table.cast(decision_schema())


class DecisionWriter:
    """Writes decision rows as JSONL or Parquet (in row groups), in call order."""

    def __init__(self, path: Path, fmt: Literal["jsonl", "parquet"] = "jsonl", batch: int = 50_000) -> None:
        self.path = path
        self.fmt = fmt
        self._batch = batch
        self._rows: list[dict[str, Any]] = []
        self._text: IO[bytes] | None = None
        self._parquet: Any = None
        if fmt == "jsonl":
            self._text = path.open("wb")

    def write(self, row: dict[str, Any]) -> None:
        """Append one row."""
        if self._text is not None:
            line = json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
            self._text.write(line.encode("utf-8"))
            return
        self._rows.append(row)
        if len(self._rows) >= self._batch:
            self._flush()

    def write_table(self, table: Any) -> None:
        """Append the rows of an Arrow table of decision rows (the columnar path)."""
        self.write_encoded(encode(table, self.fmt))

    def write_encoded(self, payload: Any) -> None:
        """Append what :func:`encode` made of a table in this writer's format
        (a worker process encodes, the one writing process appends)."""
        if self._text is not None:
            self._text.write(payload)
            return
        self._flush()
        import pyarrow.parquet as pq

        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, payload.schema)
        self._parquet.write_table(payload)

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._rows:
            return
        schema = decision_schema()
        table = pa.Table.from_pylist(self._rows, schema=schema)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, schema)
        self._parquet.write_table(table)
        self._rows = []

    def close(self) -> None:
        """Flush and close the file."""
        if self._text is not None:
            self._text.close()
        else:
            self._flush()
            if self._parquet is None:  # no rows: still write a valid, empty file
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(
                    pa.table({name: pa.array([], pa.string()) for name in DECISION_FIELDS}), self.path
                )
            else:
                self._parquet.close()

    def __enter__(self) -> DecisionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decision_schema() -> Any:
    """The Arrow schema of a decisions file (Parquet; the columnar path builds its tables in it)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("account_id", pa.string()),
            ("status", pa.string()),
            ("action", pa.string()),
            ("channel", pa.string()),
            ("severity", pa.int16()),
            ("reason", pa.string()),
            ("next_eligible_at", pa.string()),
            ("hold", pa.string()),
            ("blocked_guards", pa.list_(pa.string())),
            ("policy_fingerprint", pa.string()),
        ]
    )
