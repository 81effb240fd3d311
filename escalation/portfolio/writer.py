"""Portfolio output: decision rows written as JSONL or Parquet (in row groups)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import IO, Any, Literal

from escalation.decision import Decision
from escalation.portfolio._spool import SPLICE_METHODS, Spooled, splice, spooled_table

__all__ = ["DECISION_FIELDS", "DecisionWriter", "decision_row", "decision_schema", "decisions_file", "encode"]

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


def jsonl_bytes(table: Any) -> bytes:
    """The rows of an Arrow table of decision rows as JSON lines, byte for byte
    what :meth:`DecisionWriter.write` writes for each row (no per-row Python:
    :mod:`~escalation.portfolio._jsonl`)."""
    from escalation.portfolio._jsonl import jsonl_bytes as encoded

    return encoded(table)


def encode(table: Any, fmt: str, coded: dict[str, Any] | None = None) -> Any:
    """An Arrow table of decision rows ready to append to a decisions file of
    format ``fmt``: its JSON lines (an Arrow buffer; ``coded``: the dictionary
    codes of some of its columns, :mod:`~escalation.portfolio._coded`, if the
    caller has them), or the table in :func:`decision_schema`."""
    if fmt != "jsonl":
        return table.cast(decision_schema())
    from escalation.portfolio._jsonl import jsonl_buffer

    return jsonl_buffer(table, coded)


def decisions_file(folder: Path, name: str, fmt: str) -> Path:
    """Where a dry-run writes one policy's decisions (``name``: ``decisions`` for
    the candidate, ``baseline``): the run's writers and its workers, which place
    their JSON lines in the file themselves, name it alike."""
    return folder / f"{name}.{fmt}"


class DecisionWriter:
    """Writes decision rows as JSONL or Parquet (in row groups), in call order."""

    def __init__(self, path: Path, fmt: Literal["jsonl", "parquet"] = "jsonl", batch: int = 50_000) -> None:
        self.path = path
        self.fmt = fmt
        self._batch = batch
        self._rows: list[dict[str, Any]] = []
        self._text: IO[bytes] | None = None
        self._parquet: Any = None
        self._splice = list(SPLICE_METHODS)  # what copies spooled ranges here (one refused is dropped)
        self._placed = 0  # bytes the workers wrote into this file themselves
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
        (a worker process encodes, the one writing process appends), or the
        range a worker spooled it to (:mod:`~escalation.portfolio._spool`)."""
        if isinstance(payload, Spooled):
            if payload.placed:  # already in the file: check that it is (a lost write fails here)
                self._placed += payload.length
                assert self._text is not None
                if os.fstat(self._text.fileno()).st_size < self._placed:
                    raise OSError(errno.EIO, f"{self.path} ends before the decisions the workers placed")
                return
            if self._text is not None:
                splice(payload, self._text, self._splice)
                return
            payload = spooled_table(payload)
        if self._text is not None:
            self._text.write(payload)  # bytes, or an Arrow buffer as it is
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
