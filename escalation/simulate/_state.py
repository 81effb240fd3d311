"""The simulated book: per-account state in numpy arrays (money in integer
minor units, never floats), and the typed batch the evaluator reads each day.

An account is *active* (in arrears, decided every day), *cured* (paid its
arrears), *written off* or an *error row* (its record could not be decided;
it stays out, reported once)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation._currencies import MINOR_UNITS
from escalation.decision import ErrorRow
from escalation.portfolio.arrow import EVENTS, MONEY, TypedBatch
from escalation.record import zone

__all__ = ["ACTIVE", "CURED", "ERROR", "WRITTEN_OFF", "Book", "money_array", "to_decimal"]

ACTIVE, CURED, WRITTEN_OFF, ERROR = 0, 1, 2, 3
_EPOCH = dt.date(1970, 1, 1)
_TS = pa.timestamp("us", tz="UTC")


def money_array(units: np.ndarray, exponent: int, valid: np.ndarray | None = None) -> pa.Array:
    """decimal128(38, 4) from integer minor units (exact: a scale, no float)."""
    scaled = units.astype(np.int64) * np.int64(10 ** (4 - exponent))
    words = np.empty(2 * len(scaled), np.int64)
    words[0::2] = scaled
    words[1::2] = scaled >> 63
    arr = pa.Array.from_buffers(MONEY, len(scaled), [None, pa.py_buffer(words.tobytes())])
    if valid is not None:
        arr = pc.if_else(pa.array(valid), arr, pa.scalar(None, MONEY))
    return arr


def to_decimal(units: int, exponent: int) -> Decimal:
    """Integer minor units as a Decimal amount."""
    return Decimal(int(units)).scaleb(-exponent)


def _units(column: pa.ChunkedArray, exponent: int) -> tuple[np.ndarray, np.ndarray]:
    """decimal128(38, 4) → integer minor units, and where the value is whole in them."""
    values = column.to_pylist()
    out = np.zeros(len(values), np.int64)
    whole = np.ones(len(values), bool)
    for i, value in enumerate(values):
        if value is None:
            continue
        scaled = value.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            whole[i] = False
        out[i] = int(scaled)
    return out, whole


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - _EPOCH).days


def instant_us(moment: dt.datetime) -> int:
    """Microseconds since the Unix epoch (exact)."""
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


@dataclass
class Book:
    """The state of every account of the portfolio at the start of a day."""

    accounts: pa.Table  # the typed accounts table as read (static columns)
    history: pa.Table  # the records' own events (static)
    ids: list[str]
    exponent: int
    status: np.ndarray
    overdue: np.ndarray  # minor units
    balance: np.ndarray
    since: np.ndarray  # overdue_since, day number (-1: not known; the record has due_date)
    last_payment: np.ndarray  # day number, -1 none
    promise_amount: np.ndarray
    promise_due: np.ndarray  # day number, -1 none
    promise_made: np.ndarray  # µs
    promise_deadline: np.ndarray  # simulation day on which the promise is judged, -1 none
    promise_pays: np.ndarray  # simulation day a kept promise pays; -1 not kept, -2 paid, -3 unknown
    dispute_until: np.ndarray  # simulation day the dispute is lifted, -1 none
    flags: list[list[str] | None]
    segment: np.ndarray  # segment code per account
    segments: list[str]
    phones: dict[int, str] = field(default_factory=dict)  # account → last phone number in its history
    errors: dict[int, ErrorRow] = field(default_factory=dict)
    events: list[pa.Table] = field(default_factory=list)  # simulated events, one table a day
    # the events of the accounts last asked for, sorted by account (record order
    # within one), the account of each, which accounts they cover, and how many
    # of ``events`` are merged in (kept from one day to the next, see `_events_of`)
    _sorted: pa.Table | None = None
    _owners: np.ndarray | None = None
    _covered: np.ndarray | None = None
    _merged: int = 0

    @classmethod
    def start(cls, batch: TypedBatch, currency: str, at: dt.datetime, policy_zone: str) -> Book:
        """The book of a typed batch (the whole portfolio) at the first instant."""
        table = batch.accounts
        n = table.num_rows
        exponent = MINOR_UNITS[currency]
        ids = [
            str(i) if i is not None else f"row {r}"
            for i, r in zip(table.column("id").to_pylist(), table.column("row").to_pylist(), strict=True)
        ]
        status = np.zeros(n, np.int8)
        overdue, whole_o = _units(table.column("amount_overdue"), exponent)
        balance, whole_b = _units(table.column("balance"), exponent)
        since = np.full(n, -1, np.int32)
        raw = table.column("raw").to_pylist()
        currencies = table.column("currency").to_pylist()
        given_since = table.column("overdue_since").to_pylist()
        given_days = table.column("days_overdue").to_pylist()
        zones = table.column("timezone").to_pylist()
        for i in range(n):
            if raw[i] is not None or currencies[i] != currency or not (whole_o[i] and whole_b[i]):
                status[i] = ERROR
            elif given_since[i] is not None:
                since[i] = day_number(given_since[i])
            elif given_days[i] is not None:
                local = at.astimezone(zone(zones[i] or policy_zone)).date()
                since[i] = day_number(local) - given_days[i]
        last = table.column("last_payment_at").to_pylist()
        segment_names = table.column("segment").to_pylist()
        segments = sorted({s for s in segment_names if s is not None})
        codes = {name: k + 1 for k, name in enumerate(segments)}
        promise_amount, _ = _units(table.column("promise_amount"), exponent)
        due = table.column("promise_due_date").to_pylist()
        made = table.column("promise_made_at").to_pylist()
        phones: dict[int, str] = {}
        history = batch.events
        for owner, channel, address in zip(
            history.column("account").to_pylist(),
            history.column("channel").to_pylist(),
            history.column("address").to_pylist(),
            strict=True,
        ):
            if channel == "phone" and address is not None:
                phones[owner] = address
        return cls(
            phones=phones,
            accounts=table,
            history=batch.events,
            ids=ids,
            exponent=exponent,
            status=status,
            overdue=overdue,
            balance=balance,
            since=since,
            last_payment=np.array([day_number(d) if d else -1 for d in last], np.int32),
            promise_amount=promise_amount,
            promise_due=np.array([day_number(d) if d else -1 for d in due], np.int32),
            promise_made=np.array([instant_us(m) if m else 0 for m in made], np.int64),
            promise_deadline=np.full(n, -1, np.int32),
            promise_pays=np.full(n, -3, np.int32),
            dispute_until=np.full(n, -1, np.int32),
            flags=table.column("flags").to_pylist(),
            segment=np.array([codes.get(s, 0) if s else 0 for s in segment_names], np.int32),
            segments=["(none)", *segments],
        )

    def copy(self) -> Book:
        """An independent copy to simulate one policy and run on."""
        arrays = {
            name: getattr(self, name).copy()
            for name in (
                "status",
                "overdue",
                "balance",
                "since",
                "last_payment",
                "promise_amount",
                "promise_due",
                "promise_made",
                "promise_deadline",
                "promise_pays",
                "dispute_until",
            )
        }
        return replace(
            self,
            **arrays,
            errors=dict(self.errors),
            events=[],
            flags=list(self.flags),
            _sorted=None,
            _owners=None,
            _covered=None,
            _merged=0,
        )

    def batches(self, active: np.ndarray, size: int) -> list[tuple[np.ndarray, TypedBatch]]:
        """The active accounts as typed batches of at most ``size`` accounts,
        with their current amounts, promise, flags and whole history."""
        table = self._current(active)
        position = np.full(len(self.status), -1, np.int64)
        position[active] = np.arange(len(active))
        events, owner = self._events_of(active)
        owner = position[owner]
        out = []
        for start in range(0, len(active), size):
            end = min(start + size, len(active))
            lo, hi = np.searchsorted(owner, [start, end])
            part = events.slice(int(lo), int(hi - lo))
            part = part.set_column(0, "account", pa.array(owner[lo:hi] - start, pa.int64()))
            out.append((active[start:end], TypedBatch(table.slice(start, end - start), part, "simulation")))
        return out

    def _events_of(self, active: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        """The events of the ``active`` accounts (ascending), sorted by account,
        each account's in record order (its history, then the simulated days in
        order), and the account of each. The sorted events are kept: the next
        call merges in only the days added since and drops the accounts no
        longer asked for (a day's accounts are a subset of the day before's);
        asked for an account dropped before, it sorts everything again."""
        wanted = np.zeros(len(self.status), bool)
        wanted[active] = True
        if (
            self._sorted is None
            or self._owners is None
            or self._covered is None
            or (~self._covered & wanted).any()
        ):
            events = pa.concat_tables([self.history, *self.events]) if self.events else self.history
            self._merged = len(self.events)
        else:
            events = pa.concat_tables([self._sorted, *self.events[self._merged :]])
            self._merged = len(self.events)
        owner = np.asarray(events.column("account"), dtype=np.int64)
        keep = np.flatnonzero(wanted[owner])
        order = keep[np.argsort(owner[keep], kind="stable")]
        if len(order) != len(owner) or (len(order) and (order != np.arange(len(order))).any()):
            events = events.take(pa.array(order, pa.int64()))
            owner = owner[order]
        self._sorted, self._owners, self._covered = events, owner, wanted
        return events, owner

    def _current(self, active: np.ndarray) -> pa.Table:
        """The ``active`` accounts' rows with today's amounts, promise and flags."""
        e = self.exponent
        t = self.accounts.take(pa.array(active, pa.int64()))
        has_promise = self.promise_due[active] >= 0
        since = self.since[active]
        known_since = since >= 0
        last_payment = self.last_payment[active]
        columns: dict[str, Any] = {
            "amount_overdue": money_array(self.overdue[active], e),
            "balance": money_array(self.balance[active], e),
            "days_overdue": pa.nulls(len(active), pa.int32()),
            "overdue_since": pa.array(since, pa.date32(), mask=~known_since),
            "promise_amount": money_array(self.promise_amount[active], e, has_promise),
            "promise_due_date": pa.array(self.promise_due[active], pa.date32(), mask=~has_promise),
            "promise_made_at": pa.array(self.promise_made[active], _TS, mask=~has_promise),
            "flags": pa.array([self.flags[i] for i in active.tolist()], pa.list_(pa.string())),
            "last_payment_at": pa.array(last_payment, pa.date32(), mask=last_payment < 0),
        }
        for name, values in columns.items():
            index = t.schema.get_field_index(name)
            if name == "days_overdue":
                values = pc.if_else(pa.array(known_since), values, t.column(name))
            t = t.set_column(index, name, values)
        return t

    def add_events(self, rows: dict[str, list[Any]]) -> None:
        """Append one day's simulated events (columns of the events layout); a
        call goes to the account's last known phone number."""
        count = len(rows["account"])
        if not count:
            return
        address = [
            self.phones.get(i) if channel == "phone" else None
            for i, channel in zip(rows["account"], rows["channel"], strict=True)
        ]
        full = {
            **rows,
            "address": address,
            "consent_until": [None] * count,
            "misdirected": [False] * count,
            "actor": [None] * count,
        }
        self.events.append(pa.Table.from_pydict(full, schema=EVENTS))
