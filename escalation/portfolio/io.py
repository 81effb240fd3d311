"""Portfolio files: read account records from JSONL, CSV or Parquet and write
decisions and error rows, streaming (memory stays bounded by one batch).

Every input row ends up either as a record handed to the engine or as an
:class:`~escalation.decision.ErrorRow` naming the file, the row and what is
wrong with it — nothing is dropped."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

from escalation.decision import Decision, ErrorRow
from escalation.errors import UsageError

__all__ = [
    "MAX_LINE_BYTES",
    "DecisionWriter",
    "InputTooLarge",
    "SourceRow",
    "decision_row",
    "read_accounts",
    "read_portfolio",
]

MAX_LINE_BYTES = 8 * 1024 * 1024
Format = Literal["jsonl", "csv", "parquet"]
# CSV cells holding lists are `;`-separated; these hold JSON objects.
_CSV_LISTS = {"flags", "opt_out", "timezones"}
_CSV_OBJECTS = {"promise_to_pay", "payment_plan", "breathing_space"}


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One input row: a record to decide, or the error that stopped it. A JSONL
    row may instead carry its ``raw`` line, parsed by :meth:`parsed` where it is
    decided (in a worker process, so parsing is spread over the workers too)."""

    source: str
    row: int
    record: dict[str, Any] | None
    error: ErrorRow | None = None
    raw: bytes | None = None

    def parsed(self) -> SourceRow:
        """This row with its raw JSON line parsed (or turned into an error row)."""
        if self.raw is None:
            return self
        return _parse_line(self.source, self.row, self.raw)


def _error(source: str, row: int, code: str, message: str, account_id: str | None = None) -> SourceRow:
    return SourceRow(
        source,
        row,
        None,
        ErrorRow(account_id=account_id, source=source, row=row, code=code, message=message),
    )


class InputTooLarge(UsageError):
    """An input over its size limit (the CLI's single-account input)."""


def read_accounts(source: str | Path, *, limit: int) -> tuple[str, Iterator[SourceRow]]:
    """Account records from a JSON object, a JSON array or JSON lines (``-`` =
    stdin), read whole up to ``limit`` bytes: the reader of ``decide`` and
    ``explain``. Returns the input's name and its rows; a malformed line is an
    error row and the other lines are still read."""
    if str(source) == "-":
        name, raw = "<stdin>", sys.stdin.buffer.read(limit + 1)
    else:
        name = str(source)
        with Path(source).open("rb") as handle:
            raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise InputTooLarge(f"{name}: larger than {limit} bytes")
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError):
        lines = raw.splitlines()
        return name, (
            _parse_line(name, number, line) for number, line in enumerate(lines, start=1) if line.strip()
        )
    items = data if isinstance(data, list) else [data]
    return name, (_row(name, number, item) for number, item in enumerate(items, start=1))


def _row(source: str, number: int, data: Any) -> SourceRow:
    if not isinstance(data, dict):
        return _error(source, number, "invalid-record", f"expected an object, got {type(data).__name__}")
    return SourceRow(source, number, data)


def detect_format(path: Path) -> Format:
    """The format from the file name (``.jsonl``/``.ndjson``, ``.csv``, ``.parquet``)."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(f"{path}: unknown portfolio format `{suffix}` (use .jsonl, .csv or .parquet)")


def read_portfolio(
    path: str | Path, *, history: str | Path | None = None, fmt: Format | None = None, lazy: bool = False
) -> Iterator[SourceRow]:
    """Every row of the portfolio at ``path``, in file order.

    ``history`` is the CSV history file (keyed by ``account_id``) for a CSV
    portfolio; it is held in memory, grouped by account, while the accounts
    file streams. With ``lazy``, JSONL rows carry their raw line, to be parsed
    with :meth:`SourceRow.parsed` by whoever decides them.
    """
    path = Path(path)
    kind = fmt or detect_format(path)
    if kind == "jsonl":
        yield from _read_jsonl(path, lazy)
    elif kind == "csv":
        yield from _read_csv(path, Path(history) if history else None)
    else:
        yield from _read_parquet(path)


def _read_jsonl(path: Path, lazy: bool) -> Iterator[SourceRow]:
    source = str(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            if raw is None:
                yield _error(source, number, "line-too-long", f"longer than {MAX_LINE_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            yield SourceRow(source, number, None, raw=raw) if lazy else _parse_line(source, number, raw)


def _parse_line(source: str, number: int, raw: bytes) -> SourceRow:
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        return _error(source, number, "invalid-json", f"invalid JSON: {reason}")
    return _row(source, number, data)


def _lines(handle: IO[bytes]) -> Iterator[bytes | None]:
    """Lines of a binary file; ``None`` for a line over the size limit (skipped)."""
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield line


def _csv_value(name: str, cell: str) -> Any:
    if name in _CSV_LISTS:
        return [part.strip() for part in cell.split(";") if part.strip()]
    if name in _CSV_OBJECTS:
        return json.loads(cell, parse_float=Decimal)
    return cell


def _read_csv(path: Path, history: Path | None) -> Iterator[SourceRow]:
    source = str(path)
    events: dict[str, list[dict[str, Any]]] = {}
    if history is not None:
        with history.open(newline="", encoding="utf-8") as handle:
            for event in csv.DictReader(handle):
                owner = event.pop("account_id", None) or ""
                events.setdefault(owner, []).append({k: v for k, v in event.items() if v not in ("", None)})
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            if None in row:
                yield _error(source, number, "invalid-csv", "more cells than header columns", row.get("id"))
                continue
            record: dict[str, Any] = {}
            try:
                for name, cell in row.items():
                    if cell not in ("", None):
                        record[name] = _csv_value(name, cell)
            except json.JSONDecodeError as exc:
                yield _error(
                    source, number, "invalid-csv", f"a JSON cell is invalid: {exc.msg}", row.get("id")
                )
                continue
            ident = record.get("id")
            if history is not None and isinstance(ident, str):
                record["history"] = events.get(ident, [])
            yield SourceRow(source, number, record)


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _read_parquet(path: Path) -> Iterator[SourceRow]:
    import pyarrow.parquet as pq

    source = str(path)
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
        for data in batch.to_pylist():
            number += 1
            yield SourceRow(source, number, _strip_none(data))


# ----------------------------------------------------------------- output

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


class DecisionWriter:
    """Writes decision rows as JSONL or Parquet (in row groups), in call order."""

    def __init__(self, path: Path, fmt: Literal["jsonl", "parquet"] = "jsonl", batch: int = 50_000) -> None:
        self.path = path
        self.fmt = fmt
        self._batch = batch
        self._rows: list[dict[str, Any]] = []
        self._text: IO[str] | None = None
        self._parquet: Any = None
        if fmt == "jsonl":
            self._text = path.open("w", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        """Append one row."""
        if self._text is not None:
            self._text.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            return
        self._rows.append(row)
        if len(self._rows) >= self._batch:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._rows:
            return
        schema = pa.schema(
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
