"""``contact_hours``: contact only inside a daily window, on listed weekdays
and not on public holidays, in every zone the customer may be in."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field, model_validator

from escalation._calendar import check_holiday_code, is_holiday
from escalation._language import WEEKDAYS, ClockTime, Weekday
from escalation.guards._base import DAY, EventMatcher, GuardBase, GuardKind, GuardVerdict, Truth
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["KIND", "ContactHoursGuard", "local_times", "minutes", "next_open", "window_open"]

_SEARCH_DAYS = 21  # how far ahead to look for an open contact window


class ContactHoursGuard(GuardBase):
    """Contact only inside a daily window, in every zone the customer may be in."""

    kind: Literal["contact_hours"]
    from_: ClockTime = Field(alias="from")
    to: ClockTime
    days: tuple[Weekday, ...] = WEEKDAYS
    holidays: str | None = Field(default=None, pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,4})?$")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> ContactHoursGuard:
        if self.from_ >= self.to:
            raise ValueError("`from` must be earlier than `to` (windows over midnight are not supported)")
        if self.holidays is not None:
            check_holiday_code(self.holidays)
        return self


_MINUTES: dict[str, int] = {}


def minutes(clock: str) -> int:
    """Minutes since midnight of an ``HH:MM`` clock time."""
    # parsed once per clock text (validated HH:MM, so at most 1,441 of them): a
    # window is asked about many instants per decision
    found = _MINUTES.get(clock)
    if found is None:
        hours, mins = clock.split(":")
        found = _MINUTES[clock] = int(hours) * 60 + int(mins)
    return found


def _open_in(guard: ContactHoursGuard, instant: dt.datetime, tz: ZoneInfo) -> bool:
    local = instant.astimezone(tz)
    if WEEKDAYS[local.weekday()] not in guard.days:
        return False
    if guard.holidays is not None and is_holiday(guard.holidays, local.date()):
        return False
    minute = local.hour * 60 + local.minute
    return minutes(guard.from_) <= minute < minutes(guard.to)


def window_open(guard: ContactHoursGuard, instant: dt.datetime, zones: tuple[ZoneInfo, ...]) -> bool:
    """Whether ``instant`` is inside the window in every zone."""
    return all(_open_in(guard, instant, tz) for tz in zones)


def next_open(
    guard: ContactHoursGuard, instant: dt.datetime, zones: tuple[ZoneInfo, ...]
) -> dt.datetime | None:
    """The first instant at or after ``instant`` inside the window in every
    zone (the intersection of windows opens when the last of them opens)."""
    if window_open(guard, instant, zones):
        return instant
    opening = minutes(guard.from_)
    candidates = []
    for tz in zones:
        first = instant.astimezone(tz).date()
        for offset in range(_SEARCH_DAYS):
            day = first + offset * DAY
            local = dt.datetime.combine(day, dt.time(opening // 60, opening % 60), tzinfo=tz)
            # normalise through UTC so a wall time in a DST gap lands on a real instant
            candidate = local.astimezone(dt.UTC)
            if candidate > instant:
                candidates.append(candidate)
    for candidate in sorted(candidates):
        if window_open(guard, candidate, zones):
            return candidate.astimezone(instant.tzinfo)
    return None


def local_times(sit: Situation, at: dt.datetime) -> dict[str, str]:
    """The instant's weekday and clock time in each zone, for the trace (one
    dict per instant and decision, shared by every contact-hours guard)."""
    key = ("local_times", at)
    found: dict[str, str] | None = sit.cache.get(key)
    if found is None:
        found = sit.cache[key] = {str(tz): at.astimezone(tz).strftime("%a %H:%M") for tz in sit.zones}
    return found


def check(
    rule: GuardRule,
    guard: ContactHoursGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    matcher: EventMatcher,
) -> GuardVerdict:
    """Blocked outside the window in any zone, until it opens in all of them."""
    if sit.cache.get("trace") is False and window_open(guard, at, sit.zones):
        return GuardVerdict(rule, False)  # the local times are only read by the trace
    local = local_times(sit, at)
    if window_open(guard, at, sit.zones):
        return GuardVerdict(rule, False, facts={"local_time": local})
    opens = next_open(guard, at, sit.zones)
    window = f"{guard.from_}-{guard.to}"
    note = f"outside {window} in " + ", ".join(f"{z} ({t})" for z, t in local.items())
    return GuardVerdict(rule, True, opens, {"local_time": local, "window": window}, note)


KIND = GuardKind("contact_hours", ContactHoursGuard, check, doc="contact_hours")
