"""The account record's primitive types: the supported calendar range,
instants and dates within it, and the enumerations (channels, outcomes,
directions, actor types, plan states). A leaf module; :mod:`escalation.record`
re-exports every name."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime

__all__ = [
    "EARLIEST",
    "LATEST",
    "RANGE_MESSAGE",
    "ActorType",
    "Channel",
    "Day",
    "Direction",
    "Instant",
    "Outcome",
    "PlanStatus",
    "in_range",
]

#: The calendar the engine works in: dates and instants outside it are record
#: errors (year 1 or 9999 would overflow day arithmetic instead).
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
RANGE_MESSAGE = f"is outside the supported range {EARLIEST.isoformat()}..{LATEST.isoformat()}"


def in_range(value: dt.date) -> bool:
    """Whether a date or instant lies in the supported calendar range."""
    day = value.date() if isinstance(value, dt.datetime) else value
    return EARLIEST <= day <= LATEST


def _bounded(value: Any) -> Any:
    # `in_range` for a date or an instant (its own local date), by the year alone:
    # the range is whole years. Run once per record instant (every history event):
    # one attribute read, no calls.
    if not _FIRST_YEAR <= value.year <= _LAST_YEAR:
        raise ValueError(RANGE_MESSAGE)
    return value


_FIRST_YEAR, _LAST_YEAR = EARLIEST.year, LATEST.year
assert (EARLIEST.month, EARLIEST.day, LATEST.month, LATEST.day) == (1, 1, 12, 31)  # whole years
Instant = Annotated[AwareDatetime, AfterValidator(_bounded)]
Day = Annotated[dt.date, AfterValidator(_bounded)]


class Channel(StrEnum):
    """How an action reaches the customer."""

    SMS = "sms"
    PHONE = "phone"
    EMAIL = "email"
    LETTER = "letter"
    VISIT = "visit"
    LEGAL = "legal"
    BUREAU = "bureau"  # furnishing to a credit bureau: no contact with the customer
    AGENCY = "agency"  # placing with (or recalling from) a collection agency: no contact


class Outcome(StrEnum):
    """What happened when an action was taken (or a contact came in)."""

    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    FAILED = "failed"
    BUSY = "busy"
    NOT_IN_SERVICE = "not_in_service"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    CONVERSATION = "conversation"
    WRONG_PARTY = "wrong_party"
    PROMISE_TO_PAY = "promise_to_pay"
    REFUSED = "refused"
    DISPUTE = "dispute"
    PAYMENT = "payment"
    RETURNED = "returned"  # a letter the post office returned


class Direction(StrEnum):
    """Who initiated the contact."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


class ActorType(StrEnum):
    """Who is collecting: it decides which regimes apply (Regulation F binds
    debt collectors, not a creditor collecting in its own name)."""

    FIRST_PARTY_CREDITOR = "first_party_creditor"
    THIRD_PARTY_COLLECTOR = "third_party_collector"
    DEBT_BUYER = "debt_buyer"


class PlanStatus(StrEnum):
    """State of a payment plan (instalment arrangement)."""

    ACTIVE = "active"
    BROKEN = "broken"
    COMPLETED = "completed"
