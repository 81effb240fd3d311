"""Contact-hours windows over columns (helpers of :mod:`._guards`): whether
each account's instant is inside a window, when the window next opens, and
``_ladder._reopen`` (a time moved forward into every window of a channel).

Each works over the whole batch (``rows=None``: one instant per account) or
over the accounts ``rows`` only (indices; one instant per row asked): the
ladder reopens the few accounts a guard blocks, and a pass over the whole
batch for them would cost as much as the guard's verdict itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from escalation.backends.columnar._local import zone_rows
from escalation.backends.columnar._multizone import minutes, next_open_multi, open_in_slots, opening
from escalation.backends.columnar._starts import local_clock
from escalation.backends.columnar._zones import DAY_US, US
from escalation.guards import ContactHoursGuard

if TYPE_CHECKING:
    from escalation.backends.columnar._facts import Facts
    from escalation.policy import GuardRule

__all__ = ["next_open", "reopen", "shut_and_next", "shut_at_now", "window_open", "zone_groups"]

NEVER = -1
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Holiday = Callable[[str, np.ndarray], np.ndarray]  # (code, local days) → is a holiday


def _zones(facts: Facts, rows: np.ndarray | None) -> list[tuple[str, object, np.ndarray]]:
    """(zone, offset table, which of the rows asked are in it) per zone of the batch."""
    if rows is None:
        return zone_rows(facts)
    return [(name, table, mine[rows]) for name, table, mine in zone_rows(facts)]


def _clock(facts: Facts, at: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(local day, local minute) of each instant (``_starts.local_clock`` at ``rows``)."""
    if rows is None:
        return local_clock(facts, at)
    days = np.zeros(len(rows), np.int64)
    minute = np.zeros(len(rows), np.int64)
    for _name, table, mine in _zones(facts, rows):
        if mine.any():
            local = at[mine] + table.offsets(at[mine])  # type: ignore[attr-defined]
            days[mine] = local // DAY_US
            minute[mine] = (local % DAY_US) // (60 * US)
    return days, minute


def _multi(facts: Facts, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Of the rows asked, the positions of the accounts in several zones, and their batch rows."""
    if rows is None:
        multi: np.ndarray = facts.cache["multi_rows"]
        return multi, multi
    picked = np.flatnonzero(facts.cache["multi"][rows])
    return picked, rows[picked]


def window_open(
    facts: Facts, holiday: Holiday, g: ContactHoursGuard, at: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """Whether each instant is inside the window (weekdays, holidays)."""
    days, minute = _clock(facts, at, rows)
    inside = (minute >= minutes(g.from_)) & (minute < minutes(g.to))
    allowed = np.asarray([name in g.days for name in _WEEKDAYS], dtype=bool)
    inside &= allowed[(days + 3) % 7]
    if g.holidays is not None:
        inside &= ~holiday(g.holidays, days)
    at_, multi = _multi(facts, rows)
    if len(multi):  # open in every zone the customer may be in
        inside[at_] &= open_in_slots(facts, g, multi, at[at_], holiday, first=1)
    return inside


def next_open(
    facts: Facts,
    holiday: Holiday,
    g: ContactHoursGuard,
    at: np.ndarray,
    shut: np.ndarray,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The first instant at or after each instant inside the window
    (``contact_hours.next_open``) and where one was found within its 21-day search."""
    out = np.where(shut, NEVER, at)
    found = ~shut
    multi_flag = facts.cache["multi"] if rows is None else facts.cache["multi"][rows]
    todo = shut & ~multi_flag
    multi = np.flatnonzero(shut & multi_flag)
    if len(multi):
        batch_rows = multi if rows is None else rows[multi]
        out[multi], found[multi] = _next_open_multi(facts, holiday, g, batch_rows, at[multi])
    if not todo.any():
        return out, found
    zones = _zones(facts, rows)
    first = np.zeros(len(at), np.int64)
    for _name, table, mine in zones:
        if mine.any():
            first[mine] = table.local_day(at[mine])  # type: ignore[attr-defined]
    for offset in range(21):
        if not todo.any():
            break
        for name, _table, mine in zones:
            here = np.flatnonzero(todo & mine)
            if not len(here):
                continue
            days = first[here] + offset
            unique, inverse = np.unique(days, return_inverse=True)
            pairs = [opening(g, name, d) for d in unique.tolist()]
            cand = np.asarray([p[0] for p in pairs], np.int64)[inverse]
            ok = np.asarray([p[1] for p in pairs], bool)[inverse] & (cand > at[here])
            hit = here[ok]
            out[hit] = cand[ok]
            found[hit] = True
            todo[hit] = False
    return out, found


def zone_groups(facts: Facts) -> tuple[np.ndarray, np.ndarray]:
    """Per account, its group — the accounts in the same zone, or in the same
    combination of zones, or (the last group) in no zone the batch knows — and
    one account of each group (kept in the batch's cache)."""
    # (keyed by the zones array: a zone view of the batch copies its cache, not its zones)
    key = ("zone groups", id(facts.zone_names))
    kept: tuple[np.ndarray, np.ndarray, np.ndarray] | None = facts.cache.get(key)
    if kept is not None and kept[0] is facts.zone_names:
        return kept[1], kept[2]
    n = facts.n
    multi_flag: np.ndarray = facts.cache["multi"]
    group = np.full(n, -1, np.int64)
    picked: list[int] = []
    for _name, _table, mine in zone_rows(facts):
        here = mine & ~multi_flag
        if here.any():
            group[here] = len(picked)
            picked.append(int(np.argmax(here)))
    multi: np.ndarray = facts.cache["multi_rows"]
    if len(multi):
        index: dict[tuple[object, ...], int] = {}
        zones = (facts.zone_names, *facts.zone_slots)  # (a zone view's own zones are not slot 0's)
        combos = zip(*(names[multi].tolist() for names in zones), strict=True)
        which = np.fromiter((index.setdefault(c, len(index)) for c in combos), np.int64, len(multi))
        group[multi] = which + len(picked)
        picked.extend(multi[np.unique(which, return_index=True)[1]].tolist())
    nowhere = group < 0
    if nowhere.any():
        group[nowhere] = len(picked)
        picked.append(int(np.argmax(nowhere)))
    found = (group, np.asarray(picked, np.int64))
    facts.cache[key] = (facts.zone_names, *found)
    return found


def shut_at_now(
    facts: Facts, holiday: Holiday, g: ContactHoursGuard, now_us: int
) -> tuple[np.ndarray, np.ndarray]:
    """(shut, next opening) of every account at the one instant ``now_us``: both
    depend on nothing of an account but its zones (:func:`zone_groups`), so
    they are worked out for one account per group and spread to the others."""
    group, picked = zone_groups(facts)
    at = np.full(len(picked), now_us, np.int64)
    closed = ~window_open(facts, holiday, g, at, picked)
    opened = next_open(facts, holiday, g, at, closed, picked)[0]
    return closed[group], opened[group]


def shut_and_next(
    facts: Facts, holiday: Holiday, g: ContactHoursGuard, at: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`window_open` (negated: shut) and :func:`next_open` of each instant,
    worked out once per distinct (zone group, instant): the instants asked are
    mostly a few day starts and guards' untils, shared by many accounts."""
    group = zone_groups(facts)[0]
    mine = group if rows is None else group[rows]
    asked = np.arange(len(at)) if rows is None else rows
    k = len(at)
    if k > 16:
        low, high = int(at.min()), int(at.max())
        width = int(mine.max()) + 1
        if (high - low + 1) * width < 2**62:  # one integer key (the usual): one sort
            key = (at - low) * width + mine
            _keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        else:  # pragma: no cover - instants centuries apart
            _keys, first, inverse = np.unique(
                np.stack([mine, at], axis=1), axis=0, return_index=True, return_inverse=True
            )
        if len(first) * 2 < k:
            closed = ~window_open(facts, holiday, g, at[first], asked[first])
            opened, found = next_open(facts, holiday, g, at[first], closed, asked[first])
            inverse = inverse.reshape(-1)
            return closed[inverse], opened[inverse], found[inverse]
    closed = ~window_open(facts, holiday, g, at, rows)
    opened, found = next_open(facts, holiday, g, at, closed, rows)
    return closed, opened, found


def _codes(names: np.ndarray) -> np.ndarray:
    """Small integers standing for the values of an object array (equal values, equal codes)."""
    index: dict[object, int] = {}
    return np.fromiter((index.setdefault(x, len(index)) for x in names.tolist()), np.int64, len(names))


# (guard, zones, instant) → (next opening, found): a dry-run asks the same few questions
# in every batch (at `now`, and at the day starts tiers become due)
_SEARCHES: dict[tuple[str, tuple[object, ...], int], tuple[int, bool]] = {}
_GUARDS: dict[int, tuple[ContactHoursGuard, str]] = {}


def _guard_key(g: ContactHoursGuard) -> str:
    found = _GUARDS.get(id(g))
    if found is None or found[0] is not g:
        if len(_GUARDS) > 4096:  # bounded: policies loaded again and again add guards
            _GUARDS.clear()
        found = _GUARDS[id(g)] = (g, g.model_dump_json())
    return found[1]


def _next_open_multi(
    facts: Facts, holiday: Holiday, g: ContactHoursGuard, rows: np.ndarray, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`._multizone.next_open_multi`, searched once per distinct (guard,
    zones, instant) and remembered: its answer reads nothing else of an account."""
    keys = np.stack([*(_codes(slot[rows]) for slot in facts.zone_slots), at], axis=1)
    _unique, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    guard = _guard_key(g)
    asked = [
        (guard, tuple(slot[r] for slot in facts.zone_slots), t)
        for r, t in zip(rows[first].tolist(), at[first].tolist(), strict=True)
    ]
    answers = [_SEARCHES.get(key) for key in asked]
    todo = [k for k, answer in enumerate(answers) if answer is None]
    if todo:
        if len(_SEARCHES) > 100_000:  # (bounded: a long run's questions are few)
            _SEARCHES.clear()
        picked = first[todo]
        opened, found = next_open_multi(facts, g, rows[picked], at[picked], holiday)
        for k, o, f in zip(todo, opened.tolist(), found.tolist(), strict=True):
            answers[k] = _SEARCHES[asked[k]] = (o, f)
    inverse = inverse.reshape(-1)
    opened_all = np.asarray([a[0] for a in answers if a is not None], np.int64)[inverse]
    found_all = np.asarray([a[1] for a in answers if a is not None], bool)[inverse]
    return opened_all, found_all


def reopen(
    facts: Facts,
    holiday: Holiday,
    rules: tuple[GuardRule, ...],
    times: np.ndarray,
    known: np.ndarray,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``_ladder._reopen`` over columns: each time moved forward into every
    contact-hours window of ``rules`` (``known`` false where none opens)."""
    hours = [r.model for r in rules if isinstance(r.model, ContactHoursGuard)]
    if not hours or not known.any():  # (no row to move: the passes below would change nothing)
        return times, known
    current, ok = times.copy(), known.copy()
    # each row moved on until its time stays put (as the whole pass, which stops when every
    # row's does: a row at rest stays at rest), at most 8 times; only the moving rows again
    active = np.flatnonzero(ok)
    for _ in range(8):
        if not len(active):
            break
        now, still = current[active], ok[active]
        where = active if rows is None else rows[active]
        later = now.copy()
        for g in hours:
            _shut, opened, found = shut_and_next(facts, holiday, g, now, where)
            still &= found
            later = np.where(still, np.maximum(later, opened), later)
        ok[active] = still
        current[active] = later
        active = active[still & (later != now)]
    return current, ok
