"""Records rebuilt from the typed layout's rows, for the reference engine
(re-exported by :mod:`escalation.portfolio.arrow`)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from escalation.portfolio.arrow import TypedBatch

__all__ = ["decoded", "record_of", "records_of"]

_INSTANT = pa.timestamp("us", tz="UTC")
# an event's text fields, in the order its record writes them when given
_OPTIONAL = ("action", "channel", "outcome", "direction", "address", "offer", "actor")


def decoded(events: pa.Table) -> pa.Table:
    """``events`` with its dictionary-encoded columns decoded to their values."""
    for index, kind in enumerate(events.schema.types):
        if pa.types.is_dictionary(kind):
            name = events.schema.names[index]
            events = events.set_column(index, name, events.column(index).cast(kind.value_type))
    return events


def records_of(batch: TypedBatch, indices: list[int]) -> list[object]:
    """The records (dicts in the record format) of accounts rows ``indices``,
    rebuilt for the reference engine."""
    if not indices:  # (the events filter below is a pass over the whole batch)
        return []
    rows = batch.accounts.take(pa.array(indices, pa.int64())).to_pylist()
    events = batch.encoded_events
    owners = np.asarray(events.column("account"), dtype=np.int64)
    wanted = np.zeros(len(batch) + 1, bool)
    wanted[indices] = True
    history = _histories(decoded(events.filter(pa.array(wanted[owners]))))
    return [_record(row, history.get(i, [])) for i, row in zip(indices, rows, strict=True)]


def _histories(events: pa.Table) -> dict[int, list[dict[str, Any]]]:
    """The event records of ``events`` (decoded) by account row, read column
    by column: Arrow's own conversion of an instant to a Python ``datetime``
    costs ~2.4 µs, its ISO text from the integer microseconds far less."""
    history: dict[int, list[dict[str, Any]]] = {}
    at = events.column("at")
    if at.type != _INSTANT or at.null_count:  # not the layout's instants: row by row
        for event in events.to_pylist():
            history.setdefault(event["account"], []).append(_event_record(event))
        return history
    names = [n for n in _OPTIONAL if n in events.column_names]
    columns = [events.column(n).to_pylist() for n in names]
    consent = _iso_instants(events.column("consent_until"))
    misdirected = events.column("misdirected").to_pylist()
    amounts = events.column("amount").to_pylist()
    for k, (owner, when) in enumerate(
        zip(events.column("account").to_pylist(), _iso_instants(at), strict=True)
    ):
        out: dict[str, Any] = {"at": when}
        for name, values in zip(names, columns, strict=True):
            if (value := values[k]) is not None:
                out[name] = value
        if consent[k] is not None:
            out["consent_until"] = consent[k]
        if misdirected[k]:
            out["misdirected"] = True
        if amounts[k] is not None:
            out["amount"] = _text(amounts[k])
        history.setdefault(owner, []).append(out)
    return history


def _iso_instants(column: pa.ChunkedArray) -> list[str | None]:
    """``datetime.isoformat()`` of each UTC instant of ``column`` (microseconds
    only when not zero, offset ``+00:00``); ``None`` for a null."""
    if column.null_count == len(column):
        return [None] * len(column)
    micros = np.asarray(column.cast(pa.int64()).fill_null(0), dtype=np.int64)
    stamps = micros.astype("datetime64[us]")
    text = np.where(
        micros % 1_000_000 == 0,
        np.datetime_as_string(stamps, unit="s"),
        np.datetime_as_string(stamps, unit="us"),
    )
    out: list[str | None] = np.char.add(text, "+00:00").tolist()
    if column.null_count:
        for k in np.flatnonzero(np.asarray(column.is_null())).tolist():
            out[k] = None
    return out


def record_of(row: dict[str, Any], events: list[dict[str, Any]]) -> object:
    """The record of one accounts row (as a dict) and its event rows."""
    return _record(row, [_event_record(e) for e in events])


def _record(row: dict[str, Any], history: list[dict[str, Any]]) -> object:
    """The record of one accounts row (as a dict) and its event records."""
    if row["raw"] is not None:
        return json.loads(row["raw"])
    record: dict[str, Any] = {}
    for name in ("id", "currency", "days_overdue", "timezone", "timezones", "jurisdiction", "product"):
        if row[name] is not None:
            record[name] = row[name]
    for name in ("segment", "flags", "opt_out", "actor_type"):
        if row[name] is not None:
            record[name] = row[name]
    for name in ("amount_overdue", "balance"):
        record[name] = _text(row[name])
    for name in ("overdue_since", "due_date", "last_payment_at", "validation_notice_sent_at"):
        if row[name] is not None:
            record[name] = row[name].isoformat()
    if row["promise_amount"] is not None:
        record["promise_to_pay"] = {
            "amount": _text(row["promise_amount"]),
            "due_date": row["promise_due_date"].isoformat(),
            "made_at": row["promise_made_at"].isoformat(),
        }
    if row["plan_status"] is not None:
        plan: dict[str, Any] = {"status": row["plan_status"]}
        if row["plan_next_due_date"] is not None:
            plan["next_due_date"] = row["plan_next_due_date"].isoformat()
        record["payment_plan"] = plan
    if row["rest"] is not None:
        record.update(json.loads(row["rest"]))
    record["history"] = history
    return record


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _event_record(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"at": event["at"].isoformat()}
    for name in _OPTIONAL:
        if event.get(name) is not None:
            out[name] = event[name]
    if event["consent_until"] is not None:
        out["consent_until"] = event["consent_until"].isoformat()
    if event["misdirected"]:
        out["misdirected"] = True
    if event["amount"] is not None:
        out["amount"] = _text(event["amount"])
    return out
