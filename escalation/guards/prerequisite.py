"""``prerequisite``: block the action until an event (from history or a
record date) happened at least ``at_least`` ago and was not undone since."""

from __future__ import annotations

import bisect
import datetime as dt
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from escalation._calendar import add_months, check_holiday_code, is_holiday, start_of_day
from escalation._language import MODEL, RECORD_DATES, Bool, CalendarDays, Duration, EventFilter, Int
from escalation.guards._base import (
    DAY,
    EventMatcher,
    GuardBase,
    GuardKind,
    GuardVerdict,
    Truth,
    figures_wanted,
)
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
    kept_by: EventFilter | None = Field(
        default=None,
        description="once an event matching this happened after the prerequisite was met, "
        "later `undone_by` events no longer undo it (Regulation F comment 30(a)(1)-3.iii)",
    )
    more_than_months: Int | None = Field(
        default=None,
        ge=1,
        le=120,
        description="calendar months instead of `at_least`: met at the start of the day after "
        "the day this many months after the event's local date (the month's last day when "
        "there is no such day)",
    )
    rest_days: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,4})?$",
        description="with `more_than_months`: a period whose last day is a Saturday, Sunday "
        "or public holiday of this country ends on the next working day",
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
        if self.more_than_months is not None and self.at_least:
            raise ValueError("give `at_least` or `more_than_months`, not both")
        if self.rest_days is not None:
            if self.more_than_months is None:
                raise ValueError("`rest_days` needs `more_than_months`")
            check_holiday_code(self.rest_days)
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
    kept_by: EventFilter | None = None
    more_than_months: Int | None = Field(default=None, ge=1, le=120)
    rest_days: str | None = Field(default=None, pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,4})?$")
    any_of: tuple[Prerequisite, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> PrerequisiteGuard:
        single = self.event is not None or self.record_date is not None
        if single == bool(self.any_of):
            raise ValueError("give either `event`/`record_date` or `any_of`, not both")
        if single:
            # the single form obeys the same rules as an `any_of` entry
            try:
                Prerequisite.model_validate(self._single().model_dump())
            except ValidationError as exc:
                raise ValueError(
                    exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
                ) from None
        return self

    def _single(self) -> Prerequisite:
        # already validated: constructed without re-validation (strict types)
        return Prerequisite.model_construct(
            kept_by=self.kept_by,
            more_than_months=self.more_than_months,
            rest_days=self.rest_days,
            event=self.event,
            record_date=self.record_date,
            at_least=self.at_least,
            undone_by=self.undone_by,
            calendar_days=self.calendar_days,
            nth=self.nth,
            min_gap=self.min_gap,
        )

    def alternatives(self) -> tuple[Prerequisite, ...]:
        """The prerequisites, any one of which lifts the guard (the single form
        built once per guard, not on every check)."""
        if self.any_of:
            return self.any_of
        found = _SINGLES.get(id(self))
        if found is None or found[0] is not self:  # the entry holds the guard: its id is not reused
            if len(_SINGLES) >= 4096:
                _SINGLES.clear()
            found = _SINGLES[id(self)] = (self, (self._single(),))
        return found[1]


_SINGLES: dict[int, tuple[PrerequisiteGuard, tuple[Prerequisite, ...]]] = {}


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
    wanted = figures_wanted(sit)  # no reason reads these figures: only the trace
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
        kept = [sit.events[i].at for i in m.select(alt.kept_by, (), before=at)] if alt.kept_by else []
        # undone since (e.g. the letter came back undeliverable) — unless the action
        # was already taken once the prerequisite was met (then it stays met)
        valid = [start for start in starts if not _undone(start, _ready(alt, start, sit), undo, kept)]
        if alt.nth > 1 or alt.min_gap is not None:
            valid = _nth(valid, alt.nth, alt.min_gap or 0, sit)
        for start in valid:
            ready = _ready(alt, start, sit)
            if ready <= at:
                return GuardVerdict(rule, False, facts={"satisfied_by": start.isoformat()} if wanted else {})
            if wanted:
                seen.append(start.isoformat())
            pending.append(ready)
    until = min(pending) if pending else None
    note = (
        "prerequisite not met" if not pending else f"prerequisite met at {until.isoformat() if until else ''}"
    )
    return GuardVerdict(rule, True, until, {"events": seen} if wanted else {}, note)


def _ready(alt: Prerequisite, start: dt.datetime, sit: Situation) -> dt.datetime:
    """When the prerequisite started at ``start`` is met."""
    if alt.more_than_months is not None:
        # Civil Code arts. 200-203 counting: the period ends with the day N months
        # after the start date (month-end if none), moved past rest days; "more
        # than N months" is met when the next day begins
        last = add_months(sit.local_date(start), alt.more_than_months)
        if alt.rest_days is not None:
            while last.weekday() >= 5 or is_holiday(alt.rest_days, last):
                last += DAY
        return start_of_day(last + DAY, sit.tz)
    if alt.calendar_days:  # whole local days: met when day `date + N` begins
        return start_of_day(sit.local_date(start) + alt.at_least // DAY * DAY, sit.tz)
    return start + alt.at_least


def _undone(start: dt.datetime, ready: dt.datetime, undo: list[dt.datetime], kept: list[dt.datetime]) -> bool:
    """Whether an undo event at or after ``start`` came before the first
    ``kept`` event at or after ``ready`` (after which nothing undoes it).
    ``undo`` and ``kept`` are oldest first (history order): two bisections,
    not a scan per start (a long history stays linear)."""
    k = bisect.bisect_left(kept, ready)
    u = bisect.bisect_left(undo, start)
    return u < len(undo) and (k == len(kept) or undo[u] < kept[k])


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
    "prerequisite",
    PrerequisiteGuard,
    check,
    doc="prerequisite",
    filters=("event", "undone_by", "kept_by", "any_of"),
)
