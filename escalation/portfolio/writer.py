"""Portfolio output: decision rows written as JSONL or Parquet (in row groups)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Literal

from escalation.decision import Decision

__all__ = ["DECISION_FIELDS", "DecisionWriter", "decision_row", "decision_schema"]

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
    what :meth:`DecisionWriter.write` writes for each row (no per-row Python)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return b""
    table = table.combine_chunks()
    parts: list[Any] = []
    for name in DECISION_FIELDS:
        column = table.column(name).chunk(0) if table.column(name).num_chunks else table.column(name)
        if name == "severity":
            value = pc.cast(column, pa.string()).fill_null("null")
        elif name == "blocked_guards":
            offsets = np.asarray(column.offsets, dtype=np.int32)
            items = _json_text_few(pc.list_flatten(column))
            lists = pa.ListArray.from_arrays(pa.array(offsets - offsets[0]), items)
            value = pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")
        elif name in _FEW_VALUES:
            value = _json_text_few(column)
        else:
            value = _json_text(column)
        parts += [("{" if not parts else ",") + json.dumps(name) + ":", value]
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    buffers = lines.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(buffers[2])[int(offsets[0]) : int(offsets[-1])].tobytes()


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
        if self._text is not None:
            self._text.write(jsonl_bytes(table))
            return
        self._flush()
        import pyarrow.parquet as pq

        table = table.cast(decision_schema())
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        self._parquet.write_table(table)

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
