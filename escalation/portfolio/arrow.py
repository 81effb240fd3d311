"""The typed portfolio layout: an accounts table and a flat events table, in
Arrow (and on disk as a folder holding ``accounts.parquet`` and
``events.parquet``).

Today's JSONL/CSV/Parquet inputs hold strings that are parsed and validated
per record; the typed layout holds the hot fields as Arrow types (money as
``decimal128(38, 4)``, dates as ``date32``, instants as UTC ``timestamp[us]``,
lists of strings), so the columnar evaluator reads them without decoding.

* ``accounts``: one row per input row. ``row`` is the row number in the
  original input; ``raw`` holds the original record as JSON when it could not
  be typed (a record error, an unusual shape) — such a row is decided, or
  turned into its error row, by the reference engine; ``rest`` holds, as JSON,
  the record's fields that have no column (notices, attributes, …).
* ``events``: one row per history event, ``account`` being the index of its
  account's row in the accounts table (events of an account are contiguous,
  accounts in order).

Instants are kept as UTC instants: the same instant, not the same offset text
(decisions do not depend on the offset a record wrote an instant in).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from escalation.errors import RecordError
from escalation.portfolio._typed_records import decoded, record_of, records_of
from escalation.portfolio._typed_writer import ROW_GROUP, TypedWriter
from escalation.record import parse_account

__all__ = [
    "ACCOUNTS",
    "ENCODED",
    "EVENTS",
    "TypedBatch",
    "convert",
    "is_typed",
    "read_typed",
    "record_of",
    "records_of",
    "to_batch",
    "write_typed",
]

MONEY = pa.decimal128(38, 4)
_TS = pa.timestamp("us", tz="UTC")
_TEXT = pa.string()
_LIST = pa.list_(pa.string())

#: The accounts table's columns.
ACCOUNTS = pa.schema(
    [
        ("row", pa.int64()),
        ("id", _TEXT),
        ("currency", _TEXT),
        ("amount_overdue", MONEY),
        ("balance", MONEY),
        ("days_overdue", pa.int32()),
        ("overdue_since", pa.date32()),
        ("due_date", pa.date32()),
        ("timezone", _TEXT),
        ("timezones", _LIST),
        ("jurisdiction", _TEXT),
        ("product", _TEXT),
        ("segment", _TEXT),
        ("flags", _LIST),
        ("opt_out", _LIST),
        ("promise_amount", MONEY),
        ("promise_due_date", pa.date32()),
        ("promise_made_at", _TS),
        ("plan_status", _TEXT),
        ("plan_next_due_date", pa.date32()),
        ("last_payment_at", pa.date32()),
        ("actor_type", _TEXT),
        ("validation_notice_sent_at", _TS),
        ("rest", _TEXT),
        ("raw", _TEXT),
    ]
)
#: The events table's columns.
EVENTS = pa.schema(
    [
        ("account", pa.int64()),
        ("at", _TS),
        ("action", _TEXT),
        ("channel", _TEXT),
        ("outcome", _TEXT),
        ("direction", _TEXT),
        ("address", _TEXT),
        ("consent_until", _TS),
        ("misdirected", pa.bool_()),
        ("amount", MONEY),
        ("offer", _TEXT),
        ("actor", _TEXT),
    ]
)
_TYPED = set(ACCOUNTS.names) - {"row", "rest", "raw"} | {"promise_to_pay", "payment_plan", "history"}
_EVENT_FIELDS = {"at", "action", "channel", "outcome", "direction", "address", "consent_until"}
_EVENT_FIELDS |= {"misdirected", "amount", "offer", "actor"}
_SCALE = Decimal("0.0001")
#: Event text columns of few distinct values: read dictionary-encoded.
ENCODED = ("action", "channel", "outcome", "direction", "address")


class TypedBatch:
    """One batch of the typed layout: accounts and their events (``account``
    indexes ``accounts`` rows from 0).

    ``events`` has the :data:`EVENTS` columns; ``encoded_events`` is the table
    as read, where the text columns of few values (:data:`ENCODED`) may be
    dictionary-encoded — what the columnar evaluator reads, so a dry-run never
    spells those strings out (``events`` decodes them on first use)."""

    __slots__ = ("_events", "_plain", "accounts", "source")
    _events: pa.Table
    _plain: pa.Table | None

    def __init__(self, accounts: pa.Table, events: pa.Table, source: str = "") -> None:
        self.accounts = accounts
        self.events = events
        self.source = source

    @property
    def events(self) -> pa.Table:
        if self._plain is None:
            self._plain = decoded(self._events)
        return self._plain

    @events.setter
    def events(self, events: pa.Table) -> None:
        self._events = events
        self._plain = None

    @property
    def encoded_events(self) -> pa.Table:
        return self._events

    def __len__(self) -> int:
        return int(self.accounts.num_rows)


def _money(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if value != value.quantize(_SCALE) or abs(value) >= Decimal(10) ** 30:
        raise ValueError("not representable")
    return value


def _typed_row(row: int, record: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The typed columns of a record that validates on its own; ``None`` when
    it must travel raw (a record error, or a value the columns cannot hold)."""
    try:
        account = parse_account(record)
        promise, plan = account.promise_to_pay, account.payment_plan
        out: dict[str, Any] = {
            "row": row,
            "id": account.id,
            "currency": account.currency,
            "amount_overdue": _money(account.amount_overdue),
            "balance": _money(account.balance),
            "days_overdue": account.days_overdue,
            "overdue_since": account.overdue_since,
            "due_date": account.due_date,
            "timezone": account.timezone,
            "timezones": list(account.timezones) if "timezones" in record else None,
            "jurisdiction": account.jurisdiction,
            "product": account.product,
            "segment": account.segment,
            "flags": sorted(account.flags) if "flags" in record else None,
            "opt_out": sorted(c.value for c in account.opt_out) if "opt_out" in record else None,
            "promise_amount": _money(promise.amount) if promise else None,
            "promise_due_date": promise.due_date if promise else None,
            "promise_made_at": promise.made_at if promise else None,
            "plan_status": plan.status.value if plan else None,
            "plan_next_due_date": plan.next_due_date if plan else None,
            "last_payment_at": account.last_payment_at,
            "actor_type": account.actor_type.value if account.actor_type else None,
            "validation_notice_sent_at": account.validation_notice_sent_at,
            "raw": None,
        }
        if isinstance(record.get("payment_plan"), dict) and set(record["payment_plan"]) - {
            "status",
            "next_due_date",
        }:
            return None
        if any(event.offer is not None or event.channel == "agency" for event in account.history):
            return None  # offers made, placements: decided by the reference engine
        rest = {k: v for k, v in record.items() if k not in _TYPED}
        out["rest"] = json.dumps(rest, ensure_ascii=False, sort_keys=True) if rest else None
        events = []
        for event in account.history:
            events.append(
                {
                    "at": event.at,
                    "action": event.action,
                    "channel": event.channel.value if event.channel else None,
                    "outcome": event.outcome.value if event.outcome else None,
                    "direction": event.direction.value,
                    "address": event.address,
                    "consent_until": event.consent_until,
                    "misdirected": event.misdirected,
                    "amount": _money(event.amount),
                    "offer": None,
                    "actor": event.actor,
                }
            )
        return out, events
    except (RecordError, ValueError, TypeError, AttributeError):
        return None


def _raw_row(row: int, record: object) -> dict[str, Any]:
    ident = record.get("id") if isinstance(record, dict) else None
    return {
        "row": row,
        "id": ident if isinstance(ident, str) else None,
        "raw": json.dumps(record, ensure_ascii=False, default=str),
    }


def to_batch(rows: Iterable[tuple[int, dict[str, Any]]], source: str = "") -> TypedBatch:
    """Type ``(row number, record)`` pairs into one :class:`TypedBatch`."""
    accounts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for row, record in rows:
        typed = _typed_row(row, record) if isinstance(record, dict) else None
        index = len(accounts)
        if typed is None:
            accounts.append(_raw_row(row, record))
            continue
        accounts.append(typed[0])
        for event in typed[1]:
            event["account"] = index
            events.append(event)
    return TypedBatch(
        pa.Table.from_pylist(accounts, schema=ACCOUNTS), pa.Table.from_pylist(events, schema=EVENTS), source
    )


def is_typed(path: str | Path) -> bool:
    """Whether ``path`` is a typed portfolio folder."""
    folder = Path(path)
    return (
        folder.is_dir() and (folder / "accounts.parquet").is_file() and (folder / "events.parquet").is_file()
    )


class _Writer:
    """Batches written one after another (options and row groups: :mod:`._typed_writer`)."""

    def __init__(self, folder: Path, group: int = ROW_GROUP) -> None:
        self.out = TypedWriter(folder, ACCOUNTS, EVENTS, group)
        self.offset = 0

    def write(self, batch: TypedBatch) -> None:
        events = batch.events
        shifted = pa.array(events.column("account").to_numpy() + self.offset, pa.int64())
        self.out.write(batch.accounts, events.set_column(0, "account", shifted))
        self.offset += len(batch)

    def close(self) -> None:
        self.out.close()


def write_typed(records: Iterable[dict[str, Any]], folder: str | Path, batch: int = ROW_GROUP) -> int:
    """Write records (dicts in the record format) as a typed portfolio folder,
    in row groups of ``batch`` accounts; the count."""
    writer = _Writer(Path(folder), batch)
    count = 0
    pending: list[tuple[int, dict[str, Any]]] = []
    try:
        for record in records:
            count += 1
            pending.append((count, record))
            if len(pending) >= batch:
                writer.write(to_batch(pending))
                pending = []
        writer.write(to_batch(pending))
    finally:
        writer.close()
    return count


def convert(source: str | Path, folder: str | Path, *, history: str | Path | None = None) -> tuple[int, int]:
    """Convert a JSONL/CSV/Parquet portfolio into the typed layout. Returns
    (rows, raw rows). A row that is not a valid record keeps its original
    JSON in ``raw`` (a row the reader could not parse keeps its error), so a
    dry-run of the typed folder reports the same error rows."""
    from escalation.portfolio.io import read_portfolio

    writer = _Writer(Path(folder))
    rows = raw = 0
    pending: list[tuple[int, dict[str, Any]]] = []
    try:
        for item in read_portfolio(source, history=history):
            rows += 1
            if item.error is not None or item.record is None:
                assert item.error is not None
                pending.append((item.row, {"__error__": item.error.model_dump(mode="json")}))
            else:
                pending.append((item.row, item.record))
            if len(pending) >= 20_000:
                batch = to_batch(pending, str(source))
                raw += batch.accounts.column("raw").null_count - len(batch)
                writer.write(batch)
                pending = []
        batch = to_batch(pending, str(source))
        raw += batch.accounts.column("raw").null_count - len(batch)
        writer.write(batch)
    finally:
        writer.close()
    return rows, -raw


def read_typed(folder: str | Path, batch: int = 32_768) -> Iterator[TypedBatch]:
    """Stream a typed portfolio folder in batches of accounts with their events
    (the :data:`ENCODED` columns kept dictionary-encoded: ``encoded_events``)."""
    folder = Path(folder)
    accounts = pq.ParquetFile(folder / "accounts.parquet")
    present = set(pq.read_schema(folder / "events.parquet").names)
    encoded = [name for name in ENCODED if name in present]
    events = pq.ParquetFile(folder / "events.parquet", read_dictionary=encoded)
    event_batches = _by_row_group(events, 262_144)
    empty = _conform(pa.Table.from_batches([], schema=events.schema_arrow))
    parts: list[pa.Table] = []
    last = -1  # the account of the last event held
    start = 0
    for table in _exactly(_by_row_group(accounts, batch), batch):
        end = start + table.num_rows
        while last < end:
            more = next(event_batches, None)
            if more is None:
                break
            if more.num_rows:
                parts.append(_conform(pa.Table.from_batches([more])))
                last = int(more.column(0)[more.num_rows - 1].as_py())
        buffer = pa.concat_tables(parts) if parts else empty
        owners = buffer.column("account").to_numpy()
        cut = int(np.searchsorted(owners, end, side="left"))
        mine, rest = buffer.slice(0, cut), buffer.slice(cut)
        parts = [rest] if rest.num_rows else []
        local = pa.array(owners[:cut] - start, pa.int64())
        yield TypedBatch(table, mine.set_column(0, "account", local), str(folder))
        start = end


def _by_row_group(file: pq.ParquetFile, size: int) -> Iterator[pa.RecordBatch]:
    """``file``'s rows in record batches of at most ``size``, with a fresh reader
    per row group: one reader over the whole file keeps decoded memory as it
    goes (pyarrow 26: Arrow's allocation grew ~3 MiB per 32,768-account batch,
    1.8 GiB peak RSS over a 10M-account dry-run); per row group it stays flat."""
    for group in range(file.num_row_groups):
        yield from file.iter_batches(batch_size=size, row_groups=[group])


def _exactly(parts: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """``parts`` regrouped into tables of exactly ``size`` rows (the last one
    shorter), each in one chunk: batches do not depend on the file's row groups."""
    held: list[pa.RecordBatch] = []
    count = 0
    for part in parts:
        if not part.num_rows:
            continue
        held.append(part)
        count += part.num_rows
        while count >= size:
            table = pa.Table.from_batches(held)
            yield table.slice(0, size).combine_chunks()
            rest = table.slice(size).combine_chunks()
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held).combine_chunks()


def _conform(events: pa.Table) -> pa.Table:
    """Events written before a column existed (``offer``, ``actor``): null there."""
    for name in EVENTS.names:
        if name not in events.column_names:
            events = events.append_column(
                EVENTS.field(name), pa.nulls(events.num_rows, EVENTS.field(name).type)
            )
    return events.select(EVENTS.names)
