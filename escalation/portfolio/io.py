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

from escalation.decision import ErrorRow
from escalation.errors import UsageError
from escalation.portfolio.writer import DECISION_FIELDS, DecisionWriter, decision_row

__all__ = [
    "DECISION_FIELDS",
    "MAX_LINE_BYTES",
    "DecisionWriter",
    "InputTooLarge",
    "SourceRow",
    "decision_row",
    "load_json",
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
    if not raw.strip():
        return name, iter([])
    data, problem = load_json(raw)
    if problem is not None:
        lines = raw.splitlines()
        first = next((line.strip() for line in lines if line.strip()), b"")
        if len([line for line in lines if line.strip()]) > 1 and first[:1] == b"{" and first[-1:] == b"}":
            # JSON lines: each line on its own, a bad one an error row
            return name, (
                _parse_line(name, number, line) for number, line in enumerate(lines, start=1) if line.strip()
            )
        return name, iter([_error(name, 1, "invalid-json", f"invalid JSON: {problem}")])
    items = data if isinstance(data, list) else [data]
    return name, (_row(name, number, item) for number, item in enumerate(items, start=1))


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            shown = f"`{key}` " if len(key) <= 64 and key.isprintable() else ""
            raise _DuplicateKey(f"key {shown}appears twice in one object")
        out[key] = value
    return out


def load_json(raw: bytes | str) -> tuple[Any, str | None]:
    """Parse account JSON strictly: a duplicate key is an error (never "last
    wins"), and so are invalid UTF-8, integers too long to read and nesting
    too deep to read. Returns (data, None) or (None, what is wrong)."""
    try:
        return json.loads(raw, parse_float=Decimal, object_pairs_hook=_no_duplicates), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except _DuplicateKey as exc:
        return None, str(exc)
    except RecursionError:
        return None, "nested too deeply"
    except ValueError:  # e.g. an integer over Python's 4300-digit limit
        return None, "a number is too long"


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
    data, problem = load_json(raw)
    if problem is not None:
        return _error(source, number, "invalid-json", f"invalid JSON: {problem}")
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
        data, problem = load_json(cell)
        if problem is not None:
            raise ValueError(problem)
        return data
    return cell


@dataclass(frozen=True, slots=True)
class _CsvLine:
    number: int  # the physical line number in the file
    cells: dict[str, str] | None
    problem: str | None = None
    first_cell: str | None = None  # of a malformed line, read naively


def _csv_rows(path: Path) -> Iterator[_CsvLine]:
    """Each physical line of a CSV file as one row (a record never spans
    lines), so a stray quote costs one row, never the rest of the file, and
    every line is accounted for. Raises ``ValueError`` for a bad header."""
    header: list[str] | None = None
    with path.open("rb") as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            if raw is None:
                yield _CsvLine(number, None, f"longer than {MAX_LINE_BYTES} bytes")
                continue
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                if header is None:
                    raise ValueError(f"{path}: the header line is not UTF-8") from None
                yield _CsvLine(number, None, "not UTF-8", raw.split(b",", 1)[0].decode("utf-8", "replace"))
                continue
            if not text.strip():
                continue
            try:
                cells = next(csv.reader([text], strict=True))
            except csv.Error as exc:
                if header is None:
                    raise ValueError(f"{path}: the header line is malformed ({exc})") from None
                problem = str(exc)
                if "field larger than field limit" in problem:
                    problem = f"a cell is longer than {csv.field_size_limit()} characters"
                elif "unexpected end of data" in problem:
                    problem = "a quoted cell is not closed on its line"
                yield _CsvLine(number, None, problem, text.split(",", 1)[0])
                continue
            if header is None:
                header = [name.strip() for name in cells]
                continue
            if len(cells) > len(header):
                yield _CsvLine(number, None, "more cells than header columns", cells[0])
                continue
            yield _CsvLine(number, dict(zip(header, cells, strict=False)))


def _read_history(
    history: Path,
) -> tuple[dict[str, list[tuple[int, dict[str, Any]]]], list[tuple[int, str, str | None]]]:
    """History events grouped by the account id as validated (surrounding
    spaces removed), with their line numbers; and the malformed lines."""
    events: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    broken: list[tuple[int, str, str | None]] = []
    for line in _csv_rows(history):
        if line.cells is None:
            broken.append((line.number, line.problem or "malformed", (line.first_cell or "").strip() or None))
            continue
        event = dict(line.cells)
        owner = (event.pop("account_id", None) or "").strip()
        events.setdefault(owner, []).append((line.number, {k: v for k, v in event.items() if v != ""}))
    return events, broken


def _read_csv(path: Path, history: Path | None) -> Iterator[SourceRow]:
    source = str(path)
    events: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    broken: list[tuple[int, str, str | None]] = []
    if history is not None:
        events, broken = _read_history(history)
    broken_of: dict[str, list[int]] = {}
    for number, _, owner in broken:
        if owner is not None:
            broken_of.setdefault(owner, []).append(number)
    claimed: set[str] = set()
    for line in _csv_rows(path):
        if line.cells is None:
            yield _error(source, line.number, "invalid-csv", line.problem or "malformed", line.first_cell)
            continue
        record: dict[str, Any] = {}
        try:
            for name, cell in line.cells.items():
                if cell != "":
                    record[name] = _csv_value(name, cell)
        except ValueError as exc:
            why = str(exc)
            yield _error(
                source, line.number, "invalid-csv", f"a JSON cell is invalid: {why}", record.get("id")
            )
            continue
        ident = record.get("id")
        key = ident.strip() if isinstance(ident, str) else None
        if history is not None and key is not None:
            claimed.add(key)
            if key in broken_of:  # fail closed: never decide without part of the history
                lines = ", ".join(str(n) for n in broken_of[key])
                yield _error(
                    source,
                    line.number,
                    "invalid-history",
                    f"history line {lines} of this account is malformed",
                    key,
                )
                continue
            record["history"] = [event for _, event in events.get(key, [])]
        yield SourceRow(source, line.number, record)
    if history is None:
        return
    name = str(history)
    for number, problem, owner in broken:
        if owner is None or owner not in claimed:
            yield _error(name, number, "invalid-history", f"malformed history line: {problem}", owner)
    for owner, rows in events.items():
        if owner not in claimed:
            for number, _ in rows:
                yield _error(
                    name,
                    number,
                    "orphan-history",
                    "history row whose `account_id` matches no account",
                    owner or None,
                )


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
