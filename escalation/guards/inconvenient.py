"""``inconvenient``: no contact at a time or place the consumer said is
inconvenient (the record's ``inconvenient_times`` and ``inconvenient_places``),
except one response, through the same medium, to a communication the consumer
initiated there (Regulation F 1006.6(b)(1); comment 6(b)(1)-2)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from escalation._calendar import start_of_day
from escalation._language import WEEKDAYS, Bool
from escalation.guards._base import DAY, EventMatcher, GuardBase, GuardKind, GuardVerdict, Truth
from escalation.record import Channel, Direction, HistoryEvent, InconvenientTime

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["KIND", "InconvenientGuard"]

_SEARCH_DAYS = 9  # a weekly designation reopens within a week; further ahead: event-driven


class InconvenientGuard(GuardBase):
    """No contact at a time or place the consumer designated as inconvenient."""

    kind: Literal["inconvenient"]
    respond_once: Bool = Field(
        default=True,
        description="allow one response, by the same medium, to a communication the consumer "
        "initiated inside the designated time (or at the designated place) that day",
    )


_MINUTES: dict[str, int] = {}


def _minutes(clock: str) -> int:
    # parsed once per clock text (validated HH:MM, so at most 1,441 of them): a
    # window is asked about many instants per decision
    found = _MINUTES.get(clock)
    if found is None:
        hours, minutes = clock.split(":")
        found = _MINUTES[clock] = int(hours) * 60 + int(minutes)
    return found


def _inside(window: InconvenientTime, instant: dt.datetime, tz: ZoneInfo) -> bool:
    local = instant.astimezone(tz)
    if window.until is not None and local.date() > window.until:
        return False
    if WEEKDAYS[local.weekday()] not in window.days:
        return False
    minute = local.hour * 60 + local.minute
    return _minutes(window.from_) <= minute < _minutes(window.to)


def _covers(channels: tuple[Channel, ...], channel: Channel) -> bool:
    return not channels or channel in channels


def _windows_at(
    sit: Situation, channel: Channel, instant: dt.datetime
) -> list[tuple[InconvenientTime, ZoneInfo]]:
    # the consumer's clock is unknown where several zones are possible: a window open in any blocks
    return [
        (w, tz)
        for w in sit.account.inconvenient_times
        if _covers(w.channels, channel)
        for tz in sit.zones
        if _inside(w, instant, tz)
    ]


def _reopens(sit: Situation, channel: Channel, at: dt.datetime) -> dt.datetime | None:
    """The first instant after ``at`` outside every designated window (in every zone)."""
    candidates = set()
    for window in sit.account.inconvenient_times:
        if not _covers(window.channels, channel):
            continue
        for tz in sit.zones:
            first = at.astimezone(tz).date()
            for offset in range(_SEARCH_DAYS):
                day = first + offset * DAY
                end = start_of_day(day, tz) + dt.timedelta(minutes=_minutes(window.to))
                candidates.add(end.astimezone(dt.UTC))
            if window.until is not None:
                candidates.add(start_of_day(window.until + DAY, tz).astimezone(dt.UTC))
    for candidate in sorted(c for c in candidates if c > at):
        if not _windows_at(sit, channel, candidate):
            return candidate.astimezone(at.tzinfo)
    return None


def _response_allowed(
    sit: Situation, channel: Channel, at: dt.datetime, opened: dt.datetime | None
) -> HistoryEvent | None:
    """The consumer's communication on ``channel`` since ``opened`` (the start of the
    designated window, or of the local day) not yet answered on that channel, if any."""
    inbound = None
    for event in sit.events:
        if event.at > at or event.channel is not channel or (opened is not None and event.at < opened):
            continue
        if event.direction is Direction.INBOUND:
            inbound = inbound or event
        elif inbound is not None:
            return None  # already answered once
    return inbound


def check(
    rule: GuardRule,
    guard: InconvenientGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    matcher: EventMatcher,
) -> GuardVerdict:
    """Blocked inside a designated time until it ends, or at a designated place (no end)."""
    today = sit.local_date(at)
    places = [
        p.place
        for p in sit.account.inconvenient_places
        if channel in p.channels and (p.until is None or today <= p.until)
    ]
    windows = _windows_at(sit, channel, at)
    if not places and not windows:
        return GuardVerdict(rule, False)
    facts: dict[str, Any] = {}
    if windows:
        facts["times"] = sorted({f"{' '.join(w.days)} {w.from_}-{w.to} ({tz})" for w, tz in windows})
    if places:
        facts["places"] = sorted(places)
    if guard.respond_once:
        # the window opened at the latest of the open windows' starts (or the day began)
        opened = start_of_day(today, sit.tz)
        for window, tz in windows:
            local_start = start_of_day(at.astimezone(tz).date(), tz) + dt.timedelta(
                minutes=_minutes(window.from_)
            )
            opened = max(opened, local_start)
        inbound = _response_allowed(sit, channel, at, opened)
        if inbound is not None:
            facts["responding_to"] = inbound.at.isoformat()
            return GuardVerdict(rule, False, facts=facts, note="one response to the consumer's own contact")
    until = None if places else _reopens(sit, channel, at)
    what = "a place" if places and not windows else "a time"
    return GuardVerdict(
        rule, True, until, facts, f"the consumer named {what} inconvenient for {channel.value}"
    )


KIND = GuardKind("inconvenient", InconvenientGuard, check, doc="inconvenient")
