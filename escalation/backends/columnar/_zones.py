"""Local calendar days over columns: per-zone UTC-offset tables.

A zone's offset changes only at its transitions (DST, law changes). The table
holds every transition inside the span it was built for, each bisected to the
second with ``zoneinfo`` itself, so ``local_day`` agrees with
``instant.astimezone(tz).date()`` on every instant of the span. Changes are
found by sampling the zone once a week and one second either side of every
transition its data file lists (explicit ones, and the yearly DST rule's after
the last of them): two changes less than a week apart are always listed ones,
so no pair of changes falls between two samples. Without the file's list (a
zone not loaded by key) the zone is sampled every six hours, as no zone
changes its offset twice within six hours. Day starts (``start_of_day``) are
taken from the reference helper once per (zone, date)."""

from __future__ import annotations

import datetime as dt
import importlib
import threading
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from escalation._calendar import start_of_day

__all__ = ["ZoneTable", "day_start_us", "table_for"]

US = 1_000_000
DAY_US = 86_400 * US
_STEP = 6 * 3600  # no zone changes its offset twice within six hours
_WEEK = 7 * 86_400  # the step between samples when the zone's transitions are listed
_EPOCH = dt.date(1970, 1, 1)
_lock = threading.Lock()
_tables: dict[str, ZoneTable] = {}
_starts: dict[tuple[str, int], int] = {}


def _offset(tz: ZoneInfo, second: int) -> int:
    moment = dt.datetime.fromtimestamp(second, dt.UTC).astimezone(tz)
    offset = moment.utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def transitions(tz: ZoneInfo, samples: list[int]) -> tuple[list[int], list[int]]:
    """The offset at ``samples[0]`` and every change after it, each at its
    first second (bisected), given ``samples`` (seconds, ascending) between
    two of which the offset changes at most once."""
    offsets = [_offset(tz, s) for s in samples]
    starts, values = [samples[0]], [offsets[0]]
    for i in range(1, len(samples)):
        if offsets[i] == offsets[i - 1]:
            continue
        low, high = samples[i - 1], samples[i]  # offset changes in (low, high]
        while high - low > 1:
            mid = (low + high) // 2
            if _offset(tz, mid) == offsets[i - 1]:
                low = mid
            else:
                high = mid
        starts.append(high)
        values.append(offsets[i])
    return starts, values


def _listed(tz: ZoneInfo, first: int, last: int) -> list[int] | None:
    """The transitions (UTC seconds, ``first..last``) the zone's data file
    lists, read through the pure-Python ``zoneinfo`` (the same file the C one
    reads); ``None`` when they cannot be read. Only where to sample: every
    offset is still taken from ``tz``."""
    try:
        pure: Any = importlib.import_module("zoneinfo._zoneinfo").ZoneInfo.no_cache(tz.key)
        explicit = [int(t) for t in pure._trans_utc]
        out = [t for t in explicit if first <= t <= last]
        after = pure._tz_after
        if hasattr(after, "transitions"):  # a yearly rule after the last listed transition
            since = max(first, explicit[-1]) if explicit else first
            year = _EPOCH.year + since // (365 * 86_400) - 1
            std = int(after.std.utcoff.total_seconds())
            dst = int(after.dst.utcoff.total_seconds())
            while True:
                start, end = after.transitions(year)
                if min(start, end) - max(std, dst) > last:
                    break
                out += [start - std, start - dst, end - std, end - dst]
                year += 1
        return out
    except Exception:  # any surprise in a private layout: sample densely
        return None


class ZoneTable:
    """The offsets of one zone between two instants (seconds since the epoch)."""

    def __init__(self, tz: ZoneInfo, first: int, last: int) -> None:
        self.tz = tz
        self.first, self.last = first, last
        listed = _listed(tz, first - _STEP, last + 2 * _STEP)
        if listed is None:
            grid = range(first - _STEP, last + 2 * _STEP, _STEP)
            samples: list[int] = list(grid)
        else:
            grid = range(first - _STEP, last + 2 * _STEP + _WEEK, _WEEK)
            edges = {t + d for t in listed for d in (-1, 0)}
            samples = sorted({*grid, *(t for t in edges if grid[0] < t < grid[-1])})
        starts, values = transitions(tz, samples)
        self.starts_us = np.asarray(starts, dtype=np.int64) * US
        self.offsets_us = np.asarray(values, dtype=np.int64) * US

    def covers(self, first: int, last: int) -> bool:
        return self.first <= first and last <= self.last

    def offsets(self, instants_us: np.ndarray) -> np.ndarray:
        """The UTC offset (µs) in force at each instant (µs since the epoch)."""
        index = np.searchsorted(self.starts_us, instants_us, side="right") - 1
        return self.offsets_us[np.clip(index, 0, len(self.offsets_us) - 1)]

    def local_day(self, instants_us: np.ndarray) -> np.ndarray:
        """The local calendar day of each instant, as days since 1970-01-01."""
        if len(instants_us) > 64:
            # a batch's instants mostly lie between two transitions (always, in a zone
            # without DST): then one offset for all, not a search per instant
            low, high = np.searchsorted(self.starts_us, [instants_us.min(), instants_us.max()], side="right")
            if low == high:
                same: np.ndarray = instants_us + self.offsets_us[max(int(low) - 1, 0)]
                same //= DAY_US  # in place: one event-length array, not two
                return same
        days: np.ndarray = (instants_us + self.offsets(instants_us)) // DAY_US
        return days


def table_for(name: str, tz: ZoneInfo, first_us: int, last_us: int) -> ZoneTable:
    """A table of ``tz`` covering the instants ``first_us..last_us`` (cached,
    widened when a later batch reaches outside it)."""
    first, last = first_us // US - 86_400, last_us // US + 86_400
    table = _tables.get(name)
    if table is not None and table.covers(first, last):
        return table
    with _lock:
        table = _tables.get(name)
        if table is None or not table.covers(first, last):
            if table is not None:
                first, last = min(first, table.first), max(last, table.last)
            # a little margin either side, so consecutive batches reuse the table
            table = ZoneTable(tz, first - 400 * 86_400, last + 400 * 86_400)
            _tables[name] = table
    return table


def day_start_us(name: str, tz: ZoneInfo, days: np.ndarray) -> np.ndarray:
    """The first instant (µs) of each local day (days since 1970-01-01) in ``tz``."""
    if len(days) == 0:
        return np.zeros(days.shape, np.int64)
    low, high = int(days.min()), int(days.max())
    if high - low <= 4 * len(days) + 4096:  # a span of days: look up by offset, no sort
        present = np.zeros(high - low + 1, bool)
        present[days - low] = True
        unique = np.flatnonzero(present) + low
        slot = np.cumsum(present) - 1
        inverse = slot[days - low]
    else:
        unique, inverse = np.unique(days, return_inverse=True)
    out = np.empty(len(unique), dtype=np.int64)
    for i, day in enumerate(unique.tolist()):
        key = (name, day)
        value = _starts.get(key)
        if value is None:
            start = start_of_day(_EPOCH + dt.timedelta(days=day), tz)
            value = _starts[key] = round(start.timestamp() * US)
        out[i] = value
    result: np.ndarray = out[inverse].reshape(days.shape)
    return result
