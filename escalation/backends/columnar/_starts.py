"""Local day starts over columns without sorting: the distinct days of a
batch lie in a short range, so they are found with one flag table (not
``np.unique``) and each is looked up once in :func:`._zones.day_start_us`'s cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from escalation.backends.columnar._local import zone_rows
from escalation.backends.columnar._zones import DAY_US, US, day_start_us
from escalation.record import zone

if TYPE_CHECKING:
    from escalation.backends.columnar._facts import Facts

__all__ = ["day_start", "local_clock", "zone_day_starts"]

_RANGE = 1 << 14  # days spanned; wider ranges take the sorting path


def zone_day_starts(name: str, days: np.ndarray) -> np.ndarray:
    """µs of the first instant of each local day ``days`` in zone ``name``
    (what ``day_start_us(name, zone(name), days)`` returns)."""
    if not len(days):
        return np.zeros(days.shape, np.int64)
    low, high = int(days.min()), int(days.max())
    if high - low >= _RANGE:
        return day_start_us(name, zone(name), days)
    present = np.zeros(high - low + 1, bool)
    present[days - low] = True
    wanted = np.flatnonzero(present)
    table = np.zeros(high - low + 1, np.int64)
    table[wanted] = day_start_us(name, zone(name), wanted + low)
    result: np.ndarray = table[days - low]
    return result


def day_start(facts: Facts, days: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """µs of the start of each account's local day ``days`` (rows in ``mask``;
    0 elsewhere) — ``_local.day_start`` without a sort per zone."""
    out = np.zeros(facts.n, np.int64)
    for name, _table, mine in zone_rows(facts):
        rows = mine & mask
        if rows.any():
            out[rows] = zone_day_starts(name, days[rows])
    return out


def local_clock(facts: Facts, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local day, local minute of the day) of each account's instant ``at``
    (``_local.local_days`` and ``_local._local_minutes`` from one offset lookup)."""
    days = np.zeros(facts.n, np.int64)
    minute = np.zeros(facts.n, np.int64)
    for _name, table, mine in zone_rows(facts):
        local = at[mine] + table.offsets(at[mine])
        days[mine] = local // DAY_US
        minute[mine] = (local % DAY_US) // (60 * US)
    return days, minute
