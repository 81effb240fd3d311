"""Accounts in several time zones over columns (helpers of :mod:`._facts` and
:mod:`._guards`).

An account's zones are its own (``timezone``, or the policy's) and each other
zone listed in ``timezones`` — the customer may be in any of them
(:func:`escalation._facts.derive`). Slot 0 is the account's own zone (the one
its calendar days are counted in); slot ``j ≥ 1`` holds its ``j``-th other
zone, ``None`` where it has fewer. The semantics are the guard modules':

* ``contact_hours``: open when open in every zone; it opens next at the
  earliest window opening of any zone (searched 21 days ahead in each) that is
  open in every zone (:func:`escalation.guards.contact_hours.next_open`);
* ``cooldown``/``frequency`` with ``days_in: every_zone``: the strictest of
  the verdicts with days counted in each zone
  (:func:`escalation.guards._base.strictest`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation.backends.columnar._zones import DAY_US, US
from escalation.guards.contact_hours import window_open
from escalation.record import zone

if TYPE_CHECKING:
    from escalation.backends.columnar._facts import Facts
    from escalation.guards import ContactHoursGuard

__all__ = [
    "event_days",
    "next_open_multi",
    "open_in_slots",
    "opening",
    "other_zones",
    "other_zones_at_once",
    "slot_view",
    "strictest",
]

NEVER = -1
_MAX = np.iinfo(np.int64).max
_SEARCH_DAYS = 21  # as contact_hours.next_open
_EPOCH = dt.date(1970, 1, 1)
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# (guard id, zone, day) → (the guard, µs of the window's opening that day, open then in
# that zone); the entry holds its guard, so an id reused by a later guard is not mistaken
# for it (a long-running process may load policies again and again)
_openings: dict[tuple[int, str, int], tuple[ContactHoursGuard, int, bool]] = {}
Holiday = Callable[[str, np.ndarray], np.ndarray]  # (code, local days) → is a holiday


def minutes(clock: str) -> int:
    return int(clock[:2]) * 60 + int(clock[3:])


def opening(guard: ContactHoursGuard, name: str, day: int) -> tuple[int, bool]:
    """The window's opening on local ``day`` as the reference computes it (a wall
    time in a DST gap normalised through UTC), and whether it is open then in
    that zone."""
    key = (id(guard), name, day)
    found = _openings.get(key)
    if found is None or found[0] is not guard:
        if len(_openings) > 100_000:  # bounded: a run asks about few (guard, zone, day)s
            _openings.clear()
        tz = zone(name)
        start = minutes(guard.from_)
        local = dt.datetime.combine(
            _EPOCH + dt.timedelta(days=day), dt.time(start // 60, start % 60), tzinfo=tz
        )
        moment = local.astimezone(dt.UTC)
        us = (moment - _UTC_EPOCH) // dt.timedelta(microseconds=1)
        found = _openings[key] = (guard, us, window_open(guard, moment, (tz,)))
    return found[1], found[2]


def other_zones(names: np.ndarray, extra: pa.ChunkedArray) -> list[np.ndarray]:
    """Slots 1.. of every account: its listed zones other than its own, each
    once, in the order listed (``None`` where an account has fewer)."""
    lists = extra.combine_chunks()
    owners = np.asarray(pc.list_parent_indices(lists), dtype=np.int64)
    if not len(owners):
        return []
    listed = np.asarray(pc.list_flatten(lists).to_numpy(zero_copy_only=False), dtype=object)
    other = listed != names[owners]
    slots: list[np.ndarray] = []
    seen: dict[int, list[str]] = {}
    for i, name in zip(owners[other].tolist(), listed[other].tolist(), strict=True):
        mine = seen.setdefault(i, [])
        if name in mine:
            continue
        mine.append(name)
        if len(slots) < len(mine):
            slots.append(np.full(len(names), None, dtype=object))
        slots[len(mine) - 1][i] = name
    return slots


def other_zones_at_once(names: np.ndarray, extra: pa.ChunkedArray) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`other_zones` without a Python step per listed zone: each listed
    zone other than the account's own, first listings only (by a key per
    (account, zone)), numbered in listing order within its account; and the
    accounts with a slot that is not ``None`` (in several zones)."""
    multi = np.zeros(len(names), bool)
    lists = extra.combine_chunks()
    owners = np.asarray(pc.list_parent_indices(lists), dtype=np.int64)
    if not len(owners):
        return [], multi
    flat = pc.list_flatten(lists)
    listed = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=object)
    other = np.flatnonzero(listed != names[owners])
    if not len(other):
        return [], multi
    encoded = pc.dictionary_encode(flat).indices  # a number per zone name (a null: its own)
    number = np.asarray(encoded.fill_null(-1), dtype=np.int64)[other] + 1
    owner = owners[other]
    key = owner * (int(number.max()) + 1) + number
    _, first = np.unique(key, return_index=True)
    first.sort()  # listing order (owners ascending, as the lists are)
    owner, name = owner[first], listed[other[first]]
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner, "left")
    multi[owner[name != None]] = True  # noqa: E711 - elementwise
    slots = []
    for r in range(int(rank.max()) + 1):
        slot = np.full(len(names), None, dtype=object)
        mine = rank == r
        slot[owner[mine]] = name[mine]
        slots.append(slot)
    return slots, multi


def event_days(facts: Facts, slot: int) -> np.ndarray:
    """The local day of each event in its account's zone of ``slot`` (0 where none)."""
    if slot == 0:
        return facts.ev_day
    key = ("ev_day", slot)
    days: np.ndarray | None = facts.cache.get(key)
    if days is None:
        days = np.zeros(len(facts.ev_ts), np.int64)
        owner_zone = facts.zone_slots[slot][facts.ev_acc]
        for name in set(facts.zone_slots[slot].tolist()) - {None}:
            mine = owner_zone == name
            days[mine] = facts.cache["tables"][name].local_day(facts.ev_ts[mine])
        facts.cache[key] = days
    return days


def slot_view(facts: Facts, slot: int) -> Facts:
    """``facts`` with slot ``slot``'s zones as the accounts' own (``None``: no
    such zone; such rows' verdicts are to be ignored)."""
    key = ("view", slot)
    view: Facts | None = facts.cache.get(key)
    if view is None:
        cache = {k: v for k, v in facts.cache.items() if k != "zone_rows" and not _per_view(k)}
        view = replace(facts, zone_names=facts.zone_slots[slot], ev_day=event_days(facts, slot), cache=cache)
        facts.cache[key] = view
    return view


def _per_view(key: Any) -> bool:
    return (
        isinstance(key, tuple)
        and len(key) == 2
        and key[0] in ("view", "ev_day", "shared", "subset", "now_days")
    )


def strictest(verdicts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(blocked, until) of one guard counted in several zones: blocked where any
    zone blocks, until the latest release (``NEVER`` if any blocking zone has none)."""
    blocked = np.logical_or.reduce([b for b, _u in verdicts])
    never = np.logical_or.reduce([b & (u == NEVER) for b, u in verdicts])
    latest = np.full(len(blocked), NEVER, np.int64)
    for b, u in verdicts:
        latest = np.where(b, np.maximum(latest, u), latest)
    return blocked, np.where(blocked & ~never, latest, NEVER)


def _open_in(
    facts: Facts, g: ContactHoursGuard, rows: np.ndarray, at: np.ndarray, slot: int, holiday: Holiday
) -> np.ndarray:
    """Whether each instant ``at`` (of accounts ``rows``) is inside the window in
    the account's zone of ``slot`` (true where it has none)."""
    names = facts.zone_slots[slot][rows]
    out = np.ones(len(rows), bool)
    low, high = minutes(g.from_), minutes(g.to)
    allowed = np.asarray([name in g.days for name in _WEEKDAYS], dtype=bool)
    for name in set(names.tolist()) - {None}:
        mine = names == name
        t = at[mine]
        local = t + facts.cache["tables"][name].offsets(t)
        days = local // DAY_US
        minute = (local % DAY_US) // (60 * US)
        inside = (minute >= low) & (minute < high) & allowed[(days + 3) % 7]
        if g.holidays is not None:
            inside &= ~holiday(g.holidays, days)
        out[mine] = inside
    return out


def open_in_slots(
    facts: Facts, g: ContactHoursGuard, rows: np.ndarray, at: np.ndarray, holiday: Holiday, first: int = 0
) -> np.ndarray:
    """Whether each instant ``at`` is inside the window in every zone of slot
    ``first`` and later of the accounts ``rows``."""
    out = np.ones(len(rows), bool)
    for slot in range(first, len(facts.zone_slots)):
        out &= _open_in(facts, g, rows, at, slot, holiday)
    return out


def next_open_multi(
    facts: Facts, g: ContactHoursGuard, rows: np.ndarray, at: np.ndarray, holiday: Holiday
) -> tuple[np.ndarray, np.ndarray]:
    """For accounts ``rows`` shut at ``at``: the first window opening after
    ``at`` (in any zone, up to 21 local days ahead in each) that is open in
    every zone, and where one was found."""
    m = len(rows)
    best = np.full(m, _MAX, np.int64)
    hit = np.full(m, _SEARCH_DAYS + 3, np.int64)  # offset of the first opening found
    slots = [(s, s[rows]) for s in facts.zone_slots]
    firsts = []
    for _slot, names in slots:
        first = np.zeros(m, np.int64)
        for name in set(names.tolist()) - {None}:
            mine = names == name
            first[mine] = facts.cache["tables"][name].local_day(at[mine])
        firsts.append(first)
    for offset in range(_SEARCH_DAYS):
        # an opening `offset` local days on lies more than offset - 2 days after `at`
        # (a DST change or two aside): none is earlier than one found 4 offsets before
        live = offset <= hit + 3
        if not live.any():
            break
        for (_slot, names), first in zip(slots, firsts, strict=True):
            for name in set(names[live].tolist()) - {None}:
                sel = np.flatnonzero(live & (names == name))
                days = first[sel] + offset
                unique, inverse = np.unique(days, return_inverse=True)
                cand = np.asarray([opening(g, name, d)[0] for d in unique.tolist()], np.int64)[inverse]
                later = cand > at[sel]
                sel, cand = sel[later], cand[later]
                good = open_in_slots(facts, g, rows[sel], cand, holiday)
                sel, cand = sel[good], cand[good]
                best[sel] = np.minimum(best[sel], cand)
                hit[sel] = np.minimum(hit[sel], offset)
    found = best < _MAX
    return np.where(found, best, NEVER), found
