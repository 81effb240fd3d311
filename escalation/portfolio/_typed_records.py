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
    history: dict[int, list[dict[str, Any]]] = {}
    for event in decoded(events.filter(pa.array(wanted[owners]))).to_pylist():
        history.setdefault(event["account"], []).append(event)
    return [record_of(row, history.get(i, [])) for i, row in zip(indices, rows, strict=True)]


def record_of(row: dict[str, Any], events: list[dict[str, Any]]) -> object:
    """The record of one accounts row (as a dict) and its event rows."""
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
    record["history"] = [_event_record(e) for e in events]
    return record


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _event_record(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"at": event["at"].isoformat()}
    for name in ("action", "channel", "outcome", "direction", "address", "offer", "actor"):
        if event.get(name) is not None:
            out[name] = event[name]
    if event["consent_until"] is not None:
        out["consent_until"] = event["consent_until"].isoformat()
    if event["misdirected"]:
        out["misdirected"] = True
    if event["amount"] is not None:
        out["amount"] = _text(event["amount"])
    return out
