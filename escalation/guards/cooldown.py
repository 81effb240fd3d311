"""``cooldown``: no contact for ``wait`` calendar days after a matching event
(the event's day is day 1)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from escalation._calendar import start_of_day
from escalation._language import CalendarDays, DaysIn, EventFilter
from escalation.guards._base import (
    DAY,
    EventMatcher,
    GuardBase,
    GuardKind,
    GuardVerdict,
    Truth,
    day_of,
    day_zones,
    figures_wanted,
    strictest,
)
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["KIND", "CooldownGuard"]


class CooldownGuard(GuardBase):
    """No contact for ``wait`` calendar days after a matching event (its day is day 1)."""

    kind: Literal["cooldown"]
    after: EventFilter
    wait: CalendarDays
    days_in: DaysIn = "account"


def check(
    rule: GuardRule,
    guard: CooldownGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    m: EventMatcher,
) -> GuardVerdict:
    """Blocked within ``wait`` days of the last matching event, in any zone counted."""
    return strictest([_cooldown_in(rule, guard, sit, at, m, tz) for tz in day_zones(guard.days_in, sit)])


def _cooldown_in(
    rule: GuardRule, guard: CooldownGuard, sit: Situation, at: dt.datetime, m: EventMatcher, tz: ZoneInfo
) -> GuardVerdict:
    day = at.astimezone(tz).date()
    since = start_of_day(day - (guard.wait - 1) * DAY, tz)  # older events have run out
    selected = m.select(guard.after, guard.exclude, before=at, since=since)
    wanted = figures_wanted(sit)
    if not selected:
        if not wanted:
            return GuardVerdict(rule, False)
        return GuardVerdict(rule, False, facts={"last_event": None, "wait_days": guard.wait})
    last = max(day_of(sit, index, tz) for index in selected)
    ends = last + guard.wait * DAY  # the event's day is day 1
    if day >= ends and not wanted:
        return GuardVerdict(rule, False)
    facts: dict[str, Any] = {"last_event": last.isoformat(), "wait_days": guard.wait}
    if tz is not sit.tz:
        facts["zone"] = str(tz)
    if day < ends:
        note = f"within {guard.wait} days of {last.isoformat()} (day 1); ends {ends.isoformat()}"
        return GuardVerdict(rule, True, start_of_day(ends, tz), facts, note)
    return GuardVerdict(rule, False, facts=facts)


KIND = GuardKind("cooldown", CooldownGuard, check, doc="cooldown", filters=("after",))
