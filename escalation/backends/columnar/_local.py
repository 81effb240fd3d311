"""Local calendar days and minutes over columns, per account zone (helpers of
:mod:`._guards` and :mod:`._ladder`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from escalation.backends.columnar._history import events_of
from escalation.backends.columnar._zones import DAY_US, US, day_start_us
from escalation.record import zone

if TYPE_CHECKING:
    from escalation.backends.columnar._facts import Facts

__all__ = ["day_start", "event_days", "local_days", "zone_rows"]

_LOW = -(2**62)


def zone_rows(facts: Facts) -> list[tuple[str, Any, np.ndarray]]:
    rows: list[tuple[str, Any, np.ndarray]] | None = facts.cache.get("zone_rows")
    if rows is None:
        rows = facts.cache["zone_rows"] = [
            (name, table, facts.zone_names == name) for name, table in facts.cache["tables"].items()
        ]
    return rows


def event_days(ev_ts: np.ndarray, ev_acc: np.ndarray, zone_code: np.ndarray, tables: list[Any]) -> np.ndarray:
    """The local day of each event in its account's zone (``zone_code``: per
    account, an index into ``tables``, -1 for none: day 0; ``ev_acc`` sorted).
    The commonest zone is looked up over every event at once and the other
    zones' events fixed up: most accounts share a zone, so one pass instead of
    a masked pass per zone; the others' events are found by their accounts."""
    known = zone_code[zone_code >= 0]
    if not len(known) or not len(ev_ts):
        return np.zeros(len(ev_ts), np.int64)
    common = int(np.bincount(known).argmax())  # by accounts: any choice gives the same days
    days: np.ndarray = tables[common].local_day(ev_ts)
    elsewhere = zone_code != common
    if not elsewhere.any():
        return days
    rest = events_of(ev_acc, np.flatnonzero(elsewhere))
    rest_zone = np.take(zone_code, np.take(ev_acc, rest))
    days[rest] = 0
    for z, table in enumerate(tables):
        if z != common:
            mine = rest[rest_zone == z]
            days[mine] = table.local_day(ev_ts[mine])
    return days


def local_days(facts: Facts, at: np.ndarray) -> np.ndarray:
    """The local day (days since 1970-01-01) of each account's instant."""
    out = np.zeros(facts.n, np.int64)
    for _name, table, mine in zone_rows(facts):
        out[mine] = table.local_day(at[mine])
    return out


def _local_minutes(facts: Facts, at: np.ndarray) -> np.ndarray:
    out = np.zeros(facts.n, np.int64)
    for _name, table, mine in zone_rows(facts):
        out[mine] = ((at[mine] + table.offsets(at[mine])) % DAY_US) // (60 * US)
    return out


def day_start(facts: Facts, days: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """µs of the start of each account's local day ``days`` (rows in ``mask``)."""
    out = np.zeros(facts.n, np.int64)
    for name, _table, mine in zone_rows(facts):
        rows = mine & mask
        if rows.any():
            out[rows] = day_start_us(name, zone(name), days[rows])
    return out


def _group_max(acc: np.ndarray, values: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, _LOW, dtype=np.int64)
    np.maximum.at(out, acc[mask], values[mask])
    return out
