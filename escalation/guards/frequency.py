"""``frequency``: at most ``max`` counted events in a window of calendar days
(or the calendar month), the day of the proposed contact included."""

from __future__ import annotations

import bisect
import datetime as dt
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from escalation._calendar import start_of_day
from escalation._language import CalendarDays, DaysIn, EventFilter, Int
from escalation.guards._base import (
    DAY,
    EventMatcher,
    GuardBase,
    GuardKind,
    GuardVerdict,
    Truth,
    address_label,
    day_of,
    day_zones,
    figures_wanted,
    strictest,
)
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["KIND", "FrequencyGuard"]


class FrequencyGuard(GuardBase):
    """At most ``max`` counted events in a window of calendar days (or the
    calendar month), the day of the proposed contact included."""

    kind: Literal["frequency"]
    max: Int = Field(ge=0, le=1000)
    window: CalendarDays | Literal["calendar_month"]
    count: EventFilter = EventFilter()
    per: Literal["account", "address"] = "account"
    days_in: DaysIn = "account"


def _window_days(guard: FrequencyGuard, day: dt.date) -> tuple[dt.date, dt.date]:
    if guard.window == "calendar_month":
        return day.replace(day=1), day
    assert isinstance(guard.window, int)
    return day - (guard.window - 1) * DAY, day


def _release_day(guard: FrequencyGuard, day: dt.date, dates: list[dt.date]) -> dt.date | None:
    """First day after ``day`` whose window holds fewer than ``max`` of ``dates``
    (no new events assumed)."""
    if guard.max == 0:
        return None
    if guard.window == "calendar_month":
        return (day.replace(day=28) + 4 * DAY).replace(day=1)
    assert isinstance(guard.window, int)
    # Sorted once, each window counted by bisection: O(window × log n), never
    # O(window × n) (10,000 events in a 366-day window stay fast).
    ordered = sorted(dates)
    for offset in range(1, guard.window + 1):
        candidate = day + offset * DAY
        first = candidate - (guard.window - 1) * DAY
        if bisect.bisect_right(ordered, candidate) - bisect.bisect_left(ordered, first) < guard.max:
            return candidate
    return day + guard.window * DAY  # pragma: no cover - loop always finds one


def _free(guard: FrequencyGuard, groups: dict[str, list[dt.date]]) -> bool:
    """Whether a group in the window is under the limit (every date in ``groups``
    is inside the window): the guard does not block, whatever other groups add."""
    return guard.max > 0 and any(len(dates) < guard.max for dates in groups.values())


def check(
    rule: GuardRule,
    guard: FrequencyGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    m: EventMatcher,
) -> GuardVerdict:
    """Blocked when the window already holds ``max`` counted events (per
    account, or per address when every address is at its limit)."""
    zones = day_zones(guard.days_in, sit)
    return strictest([_frequency_in(rule, guard, sit, channel, at, m, tz) for tz in zones])


def _frequency_in(
    rule: GuardRule,
    guard: FrequencyGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    m: EventMatcher,
    tz: ZoneInfo,
) -> GuardVerdict:
    day = at.astimezone(tz).date()
    first, last = _window_days(guard, day)
    # Only events inside the window can count, now or on any later day.
    since = start_of_day(first, tz)
    selected = m.select(guard.count, guard.exclude, guard.channels or (channel,), before=at, since=since)
    groups: dict[str, list[dt.date]] = {}
    for index in selected:
        key = address_label(sit, sit.events[index].address) if guard.per == "address" else "account"
        groups.setdefault(key, []).append(day_of(sit, index, tz))
    if guard.per == "account":
        groups.setdefault("account", [])
    elif not _free(guard, groups) or figures_wanted(sit):
        # an address last used before the window is available: it counts 0 (an
        # address already under its limit frees the guard: then only the
        # trace's figures need the others)
        for index in m.select(guard.count, guard.exclude, guard.channels or (channel,), before=at):
            groups.setdefault(address_label(sit, sit.events[index].address), [])
    counts = {}
    for key, dates in groups.items():
        n = 0
        for d in dates:
            if first <= d <= last:
                n += 1
        counts[key] = n
    at_limit = {key for key, n in counts.items() if n >= guard.max}
    free = not groups or at_limit != set(counts)
    if free and guard.max != 0 and not figures_wanted(sit):
        return GuardVerdict(rule, False)  # not blocked: only the trace reads the figures
    window = guard.window if guard.window == "calendar_month" else f"{guard.window}d"
    facts: dict[str, Any] = {"counted": counts, "max": guard.max, "window": f"{first}..{last} ({window})"}
    if tz is not sit.tz:
        facts["zone"] = str(tz)
    if free:
        if guard.max == 0:
            return GuardVerdict(rule, True, None, facts, "no such contact is allowed")
        return GuardVerdict(rule, False, facts=facts)
    releases = [_release_day(guard, day, groups[key]) for key in at_limit]
    known = [r for r in releases if r is not None]
    until = start_of_day(min(known), tz) if known and len(known) == len(releases) else None
    total = max(counts.values())
    note = f"{total} counted in {first}..{last}; the limit is {guard.max}"
    return GuardVerdict(rule, True, until, facts, note)


KIND = GuardKind("frequency", FrequencyGuard, check, doc="frequency", filters=("count",))
