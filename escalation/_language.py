"""The policy language's primitive types: durations, calendar days,
identifiers, clock times, weekdays, the record dates a rule may name, and
the history-event filter that guards count with.

A leaf module: policy documents (``escalation.policy``) and guard kinds
(``escalation.guards``) both build on it, and it imports neither."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    WithJsonSchema,
)

from escalation.record import Channel, Outcome

__all__ = [
    "LOCALES",
    "MAX_CALENDAR_DAYS",
    "RECORD_DATES",
    "WEEKDAYS",
    "Authority",
    "Bool",
    "CalendarDays",
    "ClockTime",
    "DaysIn",
    "Duration",
    "EventFilter",
    "FactType",
    "Identifier",
    "Int",
    "Label",
    "Labels",
    "LanguageVersion",
    "Locale",
    "RuleId",
    "Span",
    "SpanField",
    "Tag",
    "Weekday",
    "format_duration",
    "parse_duration",
]

MODEL = ConfigDict(extra="forbid", frozen=True)
_MODEL = MODEL

# ----------------------------------------------------------------- durations

_DURATION = re.compile(r"^([0-9]{1,5})([wdhm])$")  # ASCII digits only (not `１d`)
#: The longest window of calendar days a guard may count (a year, leap day included).
MAX_CALENDAR_DAYS = 366

#: Integers and booleans as written: `true`, `3.0` or `"3"` are not a count, and
#: `1` is not a boolean (pydantic's lax mode would take each).
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]


def _language_version(value: object) -> object:
    if type(value) is not int:
        raise ValueError("`escalation` must be the integer 1")
    return value


LanguageVersion = Annotated[Literal[1], BeforeValidator(_language_version)]
_UNIT = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_duration(value: object) -> timedelta:
    """``"3d"`` → 72 hours; units ``w d h m``; a bare ``0`` is zero."""
    if isinstance(value, timedelta):
        return value
    if (type(value) is int and value == 0) or value == "0":
        return timedelta(0)
    if isinstance(value, str) and (match := _DURATION.match(value.strip())):
        return int(match.group(1)) * _UNIT[match.group(2)]
    raise ValueError(f"`{value}` is not a duration like `3d`, `12h`, `30m` or `2w`")


def format_duration(value: timedelta) -> str:
    """``timedelta(days=3)`` → ``"3d"`` (the largest unit that divides it)."""
    seconds = int(value.total_seconds())
    for suffix, unit in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % unit == 0:
            return f"{seconds // unit}{suffix}"
    return f"{seconds}s"  # pragma: no cover - parse_duration never yields seconds


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]


@dataclass(frozen=True, slots=True)
class Span:
    """A tier interval (``repeat.every``, ``wait``) with its unit kept: ``d``
    and ``w`` are calendar days in the account's local time (``1d`` = not
    again on the same local day; the next local day at any hour), ``h`` and
    ``m`` are exact hours and minutes from the instant of the last action."""

    amount: int
    unit: Literal["w", "d", "h", "m"]

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def calendar(self) -> bool:
        """Whether the span counts local calendar days."""
        return self.unit in ("d", "w")

    def after(self, instant: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
        """The first instant the span has passed since ``instant``: local
        midnight ``days`` calendar days later, or exactly ``h``/``m`` later."""
        if not self.calendar:
            return instant + self.amount * _UNIT[self.unit]
        days = self.amount * (7 if self.unit == "w" else 1)
        day = instant.astimezone(tz).date() + timedelta(days=days)
        return dt.datetime.combine(day, dt.time()).replace(tzinfo=tz)


def parse_span(value: object) -> Span:
    """``"3d"`` → three calendar days; ``"20h"`` → twenty exact hours."""
    if isinstance(value, Span):
        return value
    if isinstance(value, str) and (match := _DURATION.match(value.strip())):
        amount = int(match.group(1))
        if amount >= 1:
            return Span(amount, match.group(2))  # type: ignore[arg-type]
    raise ValueError(f"`{value}` is not an interval like `3d`, `12h`, `30m` or `2w`")


SpanField = Annotated[
    Span,
    PlainValidator(parse_span),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,5}[wdhm]$"}),
]


def _calendar_days(value: object) -> int:
    if isinstance(value, str) and (match := re.fullmatch(r"([0-9]{1,4})d", value.strip())):
        days = int(match.group(1))
        if days > MAX_CALENDAR_DAYS:
            raise ValueError(f"`{days}d` is longer than the maximum of {MAX_CALENDAR_DAYS} calendar days")
        if days >= 1:
            return days
    shown = f"`{value}` " if isinstance(value, str | int) and len(str(value)) <= 16 else ""
    raise ValueError(f"{shown}is not a whole number of calendar days like `7d`")


CalendarDays = Annotated[
    int, BeforeValidator(_calendar_days), PlainSerializer(lambda d: f"{d}d", return_type=str)
]
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
Tag = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Authority = Literal["law", "regulator", "self-regulation", "policy"]
#: The locales reasons are rendered in (``en`` is the default and the fallback).
Locale = Literal["en", "zh-CN"]
LOCALES: tuple[Locale, ...] = ("en", "zh-CN")
#: A human label: what a collector calls a tier, hold or guard (presentation
#: only: labels are left out of the policy fingerprint).
Label = Annotated[str, Field(min_length=1, max_length=120)]
Labels = Annotated[
    dict[Locale, Label],
    Field(description="the label in other locales, e.g. `{zh-CN: 催收电话}`"),
]
# Whose calendar days a window counts: the account's zone, or every zone the
# customer may be in (the strictest result wins).
DaysIn = Literal["account", "every_zone"]

# Record dates a prerequisite, a hold's `until` or a block's `until` may name.
RECORD_DATES = {
    "validation_notice_sent_at": "datetime",
    "last_payment_at": "date",
    "charged_off_at": "date",
    "overdue_since": "date",
    "due_date": "date",
    "promise_to_pay.due_date": "date",
    "promise_to_pay.made_at": "datetime",
    "payment_plan.next_due_date": "date",
    "dispute_received_at": "datetime",
    "verification_sent_at": "datetime",
    "cease_communication_received_at": "datetime",
    "negative_info_notice_sent_at": "datetime",
    "default_notice_served_at": "date",
    "default_notice_remedy_date": "date",
    "letter_of_claim_at": "date",
    "letter_of_claim_reply.received_at": "date",
    "letter_of_claim_reply.documents_provided_at": "date",
    "forbearance_assessed_at": "datetime",
    # derived, not on the record: the last day of the Regulation F validation period
    "validation_period_end": "date",
    "breathing_space.start": "date",
    "breathing_space.end": "date",
}


class FactType(Enum):
    """Types a condition can read."""

    NUMBER = "number"
    MONEY = "money"  # a number in the policy currency (integer minor units for rete)
    STRING = "string"
    BOOL = "boolean"
    SET = "set of strings"
    LIST = "list"

    @property
    def numeric(self) -> bool:
        """Numbers and money compare with each other."""
        return self in (FactType.NUMBER, FactType.MONEY)


# ----------------------------------------------------------------- models


class EventFilter(BaseModel):
    """Which history events count: every listed criterion must match; an
    empty list matches anything."""

    model_config = _MODEL

    channels: tuple[Channel, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    direction: Literal["outbound", "inbound", "any"] = "outbound"
    actions: tuple[Identifier, ...] = ()
    tags: tuple[Tag, ...] = ()
    during_consent: Bool | None = Field(
        default=None,
        description="true: only events inside a window the customer consented to "
        "(a history event's `consent_until`); false: only events outside one",
    )
    consent_days: CalendarDays | None = Field(
        default=None,
        description="a consent window lasts at most this many calendar days, the day "
        "the consent was given being day 1 (Regulation F: 7)",
    )
    misdirected: Bool | None = None
    in_cycle: Bool | None = Field(
        default=None,
        description="true: only events in the current delinquency cycle; false: only before it",
    )
