"""The typed contact audit's time screens, over columns: local times of
instants in a zone, and for a set of contacts, whether contact hours, a
frequency window or a cooldown *might* block each one (then its account
goes to the per-account path).

Each screen reads what the per-contact screen of :mod:`escalation.contacts._screen`
reads, or a superset of it, so it clears a contact only when that screen
would: the same hours test in every zone; for a window, every earlier event
on the counted channels (and direction) whose instant could lie on the
window's days (an upper bound on the guard's count)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from escalation._calendar import is_holiday
from escalation._language import WEEKDAYS
from escalation.guards import ContactHoursGuard, CooldownGuard, FrequencyGuard

__all__ = ["DIRECT_KEYS", "TIME_KINDS", "Events", "distinct", "local_offsets", "might_block"]

TIME_KINDS = (ContactHoursGuard, FrequencyGuard, CooldownGuard)
_US = 1_000_000
_HOUR_US = 3600 * _US
_DAY_US = 86_400 * _US
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
#: keys (account × instant span) below this use the instant itself, else its rank
DIRECT_KEYS = 2**62


def _offset(tz: ZoneInfo, second: int) -> int:
    off = dt.datetime.fromtimestamp(second, tz).utcoffset()
    assert off is not None
    return int(off.total_seconds())


def local_offsets(tz: ZoneInfo, stamps: np.ndarray) -> np.ndarray:
    """The UTC offset (µs) of ``tz`` at each instant of ``stamps`` (µs since
    the epoch), exactly as ``datetime.astimezone`` finds it: the offset is read
    once per hour the instants fall in, when it is the same at the hour's first
    and last second (tz database transitions are whole seconds, never two in
    one hour), else instant by instant."""
    if not len(stamps):
        return np.zeros(0, np.int64)
    hours, inverse = distinct(stamps // _HOUR_US)
    per_hour = np.empty(len(hours), np.int64)
    mixed = np.zeros(len(hours), bool)
    for k, hour in enumerate(hours.tolist()):
        first, last = _offset(tz, hour * 3600), _offset(tz, hour * 3600 + 3599)
        per_hour[k] = first
        mixed[k] = first != last
    out = per_hour[inverse] * _US
    if mixed.any():
        where = np.flatnonzero(mixed[inverse])
        for i in where.tolist():
            moment = dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=int(stamps[i]))
            off = moment.astimezone(tz).utcoffset()
            assert off is not None
            out[i] = int(off // dt.timedelta(microseconds=1))
    return np.asarray(out, np.int64)


def distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``, by a table when the values span little."""
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span > 4 * len(values) + 65_536:
        found, inverse = np.unique(values, return_inverse=True)
        return found, inverse.reshape(-1)
    seen = np.zeros(span, bool)
    seen[values - low] = True
    found = np.flatnonzero(seen)
    table = np.cumsum(seen) - 1
    return found + low, table[values - low]


class Events:
    """One batch's events in time order per account (ties in record order), as
    arrays: ``acc`` (account row), ``ts`` (µs), ``key`` (account and instant,
    sortable), codes for channel, direction, outcome and action, and per zone
    slot each event's local time (µs, epoch-based) and its zone's largest offset."""

    def __init__(self, arrays: dict[str, np.ndarray], slots: int) -> None:
        ts, acc = arrays["ts"], arrays["acc"]
        # the key orders by account, then instant: the instant itself (µs from the
        # batch's first) when that fits in 63 bits, else its rank among the batch's instants
        self.base = int(ts.min()) if len(ts) else 0
        self.width = (int(ts.max()) - self.base + 2) if len(ts) else 1
        if (int(acc.max()) + 1 if len(acc) else 1) * self.width < DIRECT_KEYS:
            self.instants: np.ndarray | None = None
            key = acc * self.width + (ts - self.base)
        else:
            self.instants, rank = np.unique(ts, return_inverse=True)
            self.width = len(self.instants) + 1
            key = acc * self.width + rank.reshape(-1)
        # an account's events by instant, ties in record order (most histories already are)
        order = np.arange(len(key)) if bool(np.all(key[1:] >= key[:-1])) else np.argsort(key, kind="stable")
        self.key = key[order]
        # each event's first position at its account's instant (the events before it are strictly earlier)
        starts = np.ones(len(key), bool)
        starts[1:] = self.key[1:] != self.key[:-1]
        self.first_same = np.maximum.accumulate(np.where(starts, np.arange(len(key)), 0))
        self.acc = arrays["acc"][order]
        self.ts = arrays["ts"][order]
        self.channel = arrays["channel"][order]
        self.direction = arrays["direction"][order]
        self.outcome = arrays["outcome"][order]
        self.action = arrays["action"][order]
        self.orig = arrays["orig"][order]  # the event's row in the batch's events table
        #: per zone slot: local time (µs) of every event (undefined where the account has no such slot)
        self.local: list[np.ndarray] = [np.zeros(len(self.ts), np.int64) for _ in range(slots)]
        #: per zone slot: the largest offset (µs) of the event's zone in this batch
        self.max_offset: list[np.ndarray] = [np.zeros(len(self.ts), np.int64) for _ in range(slots)]
        #: per zone slot: whether the event's account has that slot
        self.present: list[np.ndarray] = [np.zeros(len(self.ts), bool) for _ in range(slots)]

    def before(self, g: np.ndarray) -> np.ndarray:
        """For events at positions ``g``: the position of the account's first
        event at the same instant (the events before it are strictly earlier)."""
        return np.asarray(self.first_same[g], np.int64)

    def first_at_or_after(self, g: np.ndarray, bound_us: np.ndarray) -> np.ndarray:
        """For events at ``g``: the position of their account's first event at or after ``bound_us``."""
        if self.instants is None:
            rank = np.clip(bound_us - self.base, 0, self.width - 1)
        else:
            rank = np.searchsorted(self.instants, bound_us, side="left")
        return np.asarray(np.searchsorted(self.key, self.acc[g] * self.width + rank, side="left"), np.int64)


# A time screen over contacts: (events, contact positions, the contact channel's
# code, channel codes by value) -> for each contact, whether the guard might block it.
TimeScreen = Callable[[Events, np.ndarray, int, dict[str, int]], np.ndarray]


def _slots(days_in: str, events: Events) -> range:
    return range(1) if days_in == "account" else range(len(events.local))


def _count_in_window(
    events: Events, g: np.ndarray, keep: np.ndarray, first_day: Callable[[np.ndarray], np.ndarray], slot: int
) -> np.ndarray:
    """For contacts at ``g``: kept events strictly before each one whose instant
    could fall on or after the local day ``first_day(day)`` of its zone in ``slot``."""
    cum = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    local = events.local[slot][g]
    first = first_day(local // _DAY_US)
    # an event on day >= first has ts + offset >= first's midnight, so ts >= midnight - largest offset
    bound = first * _DAY_US - events.max_offset[slot][g]
    hi = events.before(g)
    lo = events.first_at_or_after(g, bound)
    return np.asarray(cum[hi] - cum[np.minimum(lo, hi)], np.int64)


def _hours(guard: ContactHoursGuard) -> TimeScreen:
    opens, closes = _minutes(guard.from_), _minutes(guard.to)
    weekdays = np.asarray([name in guard.days for name in WEEKDAYS], bool)
    holidays = guard.holidays

    def screen(events: Events, g: np.ndarray, channel: int, codes: dict[str, int]) -> np.ndarray:
        blocked = np.zeros(len(g), bool)
        for slot in range(len(events.local)):  # the window must be open in every zone
            present = events.present[slot][g]
            local = events.local[slot][g]
            day = local // _DAY_US
            minute = (local // (60 * _US)) % 1440
            bad = ~weekdays[(day + 3) % 7] | (minute < opens) | (minute >= closes)
            if holidays is not None:
                days, inverse = np.unique(day[present], return_inverse=True)
                free = np.asarray(
                    [is_holiday(holidays, dt.date.fromordinal(d + _EPOCH_ORDINAL)) for d in days.tolist()],
                    bool,
                )
                bad[present] |= free[inverse] if len(days) else False
            blocked |= present & bad
        return blocked

    return screen


def _counted(codes: dict[str, int], values: Any) -> np.ndarray:
    return np.asarray([codes[str(v)] for v in values if str(v) in codes], np.int64)


def _frequency(guard: FrequencyGuard) -> TimeScreen:
    flt = guard.count
    month = guard.window == "calendar_month"
    span = 0 if isinstance(guard.window, str) else guard.window - 1

    def first_day(day: np.ndarray) -> np.ndarray:
        if not month:
            return day - span
        starts = day.astype("datetime64[D]").astype("datetime64[M]").astype("datetime64[D]")
        return np.asarray(starts.astype(np.int64), np.int64)

    def screen(events: Events, g: np.ndarray, channel: int, codes: dict[str, int]) -> np.ndarray:
        if guard.max == 0:
            return np.ones(len(g), bool)
        channels = flt.channels or guard.channels
        wanted = _counted(codes, [c.value for c in channels]) if channels else np.asarray([channel])
        keep = np.isin(events.channel, wanted)
        if flt.direction != "any":
            keep &= events.direction == codes[f"direction:{flt.direction}"]
        blocked = np.zeros(len(g), bool)
        for slot in _slots(guard.days_in, events):
            present = events.present[slot][g]
            blocked |= present & (_count_in_window(events, g, keep, first_day, slot) >= guard.max)
        return blocked

    return screen


def _cooldown(guard: CooldownGuard) -> TimeScreen:
    flt = guard.after
    span = guard.wait - 1

    def screen(events: Events, g: np.ndarray, channel: int, codes: dict[str, int]) -> np.ndarray:
        # necessary conditions of a match: an event failing one cannot start the wait
        keep = np.ones(len(events.ts), bool)
        if flt.direction != "any":
            keep &= events.direction == codes[f"direction:{flt.direction}"]
        if flt.channels:
            keep &= np.isin(events.channel, _counted(codes, [c.value for c in flt.channels]))
        if flt.outcomes:
            keep &= np.isin(events.outcome, _counted(codes, [f"outcome:{o.value}" for o in flt.outcomes]))
        if flt.actions:
            keep &= np.isin(events.action, _counted(codes, [f"action:{a}" for a in flt.actions]))
        blocked = np.zeros(len(g), bool)
        for slot in _slots(guard.days_in, events):
            present = events.present[slot][g]
            blocked |= present & (_count_in_window(events, g, keep, lambda d: d - span, slot) >= 1)
        return blocked

    return screen


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def might_block(model: Any) -> TimeScreen:
    """The column screen of a contact-hours, frequency or cooldown guard."""
    if isinstance(model, ContactHoursGuard):
        return _hours(model)
    if isinstance(model, FrequencyGuard):
        return _frequency(model)
    assert isinstance(model, CooldownGuard)
    return _cooldown(model)
