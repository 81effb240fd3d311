"""``prerequisite``: block the action until an event (from history or a
record date) happened at least ``at_least`` ago and was not undone since."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, model_validator

from escalation._calendar import start_of_day
from escalation._language import MODEL, RECORD_DATES, Bool, CalendarDays, Duration, EventFilter, Int
from escalation.guards._base import DAY, EventMatcher, GuardBase, GuardKind, GuardVerdict, Truth
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["KIND", "Prerequisite", "PrerequisiteGuard"]

_MODEL = MODEL


class Prerequisite(BaseModel):
    """An event (from history or a record date) that must have happened at
    least ``at_least`` ago and not been undone since."""

    model_config = _MODEL

    event: EventFilter | None = None
    record_date: str | None = None
    at_least: Duration = timedelta(0)
    undone_by: EventFilter | None = None
    calendar_days: Bool = Field(
        default=False,
        description="count `at_least` in whole calendar days of the account's zone from "
        "the event's date: met at the start of day event date + N",
    )
    nth: Int = Field(default=1, ge=1, le=100, description="the n-th matching event starts the period")
    min_gap: CalendarDays | None = Field(
        default=None, description="events count towards `nth` only this many calendar days apart"
    )

    @model_validator(mode="after")
    def _one_source(self) -> Prerequisite:
        if (self.event is None) == (self.record_date is None):
            raise ValueError("give exactly one of `event` or `record_date`")
        if self.record_date is not None and self.record_date not in RECORD_DATES:
            raise ValueError(f"`record_date` must be one of {sorted(RECORD_DATES)}")
        if self.calendar_days and self.at_least % timedelta(days=1):
            raise ValueError("with `calendar_days`, `at_least` must be whole days")
        if (self.nth > 1 or self.min_gap is not None) and self.event is None:
            raise ValueError("`nth` and `min_gap` need an `event`")
        return self


class PrerequisiteGuard(GuardBase):
    """Block the action until a prerequisite (or any of several) is met."""

    kind: Literal["prerequisite"]
    event: EventFilter | None = None
    record_date: str | None = None
    at_least: Duration = timedelta(0)
    undone_by: EventFilter | None = None
    calendar_days: Bool = False
    nth: Int = Field(default=1, ge=1, le=100)
    min_gap: CalendarDays | None = None
    any_of: tuple[Prerequisite, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> PrerequisiteGuard:
        single = self.event is not None or self.record_date is not None
        if single == bool(self.any_of):
            raise ValueError("give either `event`/`record_date` or `any_of`, not both")
        if single:
            self._single()
        return self

    def _single(self) -> Prerequisite:
        # already validated: constructed without re-validation (strict types)
        return Prerequisite.model_construct(
            event=self.event,
            record_date=self.record_date,
            at_least=self.at_least,
            undone_by=self.undone_by,
            calendar_days=self.calendar_days,
            nth=self.nth,
            min_gap=self.min_gap,
        )

    def alternatives(self) -> tuple[Prerequisite, ...]:
        """The prerequisites, any one of which lifts the guard."""
        if self.any_of:
            return self.any_of
        return (self._single(),)


def check(
    rule: GuardRule,
    guard: PrerequisiteGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    m: EventMatcher,
) -> GuardVerdict:
    """Blocked until one alternative's event is old enough; none: only an event lifts it."""
    pending: list[dt.datetime] = []
    seen: list[str] = []
    for alt in guard.alternatives():
        starts: list[dt.datetime] = []
        if alt.record_date is not None:
            value = sit.record_date(alt.record_date)
            if isinstance(value, dt.datetime):
                starts.append(value)
            elif isinstance(value, dt.date):
                starts.append(start_of_day(value, sit.tz))
        else:
            assert alt.event is not None
            starts.extend(sit.events[i].at for i in m.select(alt.event, guard.exclude, before=at))
        undo = (
            [sit.events[i].at for i in m.select(alt.undone_by, (), before=at)]
            if alt.undone_by is not None
            else []
        )
        # undone since (e.g. the letter came back undeliverable)
        valid = [start for start in starts if not any(u >= start for u in undo)]
        if alt.nth > 1 or alt.min_gap is not None:
            valid = _nth(valid, alt.nth, alt.min_gap or 0, sit)
        for start in valid:
            if alt.calendar_days:  # whole local days: met when day `date + N` begins
                ready = start_of_day(sit.local_date(start) + alt.at_least // DAY * DAY, sit.tz)
            else:
                ready = start + alt.at_least
            seen.append(start.isoformat())
            if ready <= at:
                return GuardVerdict(rule, False, facts={"satisfied_by": start.isoformat()})
            pending.append(ready)
    until = min(pending) if pending else None
    note = (
        "prerequisite not met" if not pending else f"prerequisite met at {until.isoformat() if until else ''}"
    )
    return GuardVerdict(rule, True, until, {"events": seen}, note)


def _nth(starts: list[dt.datetime], nth: int, gap: int, sit: Situation) -> list[dt.datetime]:
    """The earliest ``nth`` event of a chain in which each counted event is at
    least ``gap`` calendar days after the one counted before it (empty when
    there are not that many)."""
    chain: list[dt.datetime] = []
    for start in sorted(starts):
        if not chain or (sit.local_date(start) - sit.local_date(chain[-1])).days >= gap:
            chain.append(start)
            if len(chain) == nth:
                return [start]
    return []


KIND = GuardKind(
    "prerequisite", PrerequisiteGuard, check, doc="prerequisite", filters=("event", "undone_by", "any_of")
)
