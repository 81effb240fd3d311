"""The account record: what a lender sends for one account (validated, immutable).

Validation is strict (unknown fields, naive datetimes, negative amounts, an
unknown currency or time zone are errors). The checks that depend on the
evaluation instant — history dated after ``now``, ``days_overdue`` that
disagrees with ``overdue_since`` — run in :func:`check_at`, which the engine
calls for every decision."""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from escalation._currencies import MINOR_UNITS
from escalation.errors import RecordError, RecordIssue

__all__ = [
    "KNOWN_FLAGS",
    "Account",
    "ActorType",
    "BreathingSpace",
    "Channel",
    "Direction",
    "HistoryEvent",
    "InconvenientPlace",
    "InconvenientTime",
    "LetterOfClaimReply",
    "Outcome",
    "PaymentPlan",
    "PlanStatus",
    "PromiseToPay",
    "check_at",
    "check_attributes",
    "parse_account",
]

MAX_HISTORY_EVENTS = 10_000
_MODEL = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

Money = Annotated[Decimal, Field(ge=0, max_digits=20, allow_inf_nan=False)]
# A lender attribute's value: JSON scalars only (booleans before numbers, so `true` stays a boolean).
AttributeValue = Annotated[
    StrictBool
    | StrictInt
    | Annotated[StrictStr, Field(max_length=256)]
    | Annotated[Decimal, Field(max_digits=30, allow_inf_nan=False)],
    Field(union_mode="left_to_right"),
]

#: Flags every policy knows; a policy (or a pack it includes) may declare more.
KNOWN_FLAGS = frozenset(
    {
        "dispute",
        "cease_communication",
        "bankruptcy",
        "deceased",
        "hardship",
        "breathing_space",
        "legal_hold",
        "vulnerable",
        "fraud",
    }
)

#: The calendar the engine works in: dates and instants outside it are record
#: errors (year 1 or 9999 would overflow day arithmetic instead).
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
RANGE_MESSAGE = f"is outside the supported range {EARLIEST.isoformat()}..{LATEST.isoformat()}"


def in_range(value: dt.date) -> bool:
    """Whether a date or instant lies in the supported calendar range."""
    day = value.date() if isinstance(value, dt.datetime) else value
    return EARLIEST <= day <= LATEST


def _bounded(value: Any) -> Any:
    if not in_range(value):
        raise ValueError(RANGE_MESSAGE)
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_bounded)]
Day = Annotated[dt.date, AfterValidator(_bounded)]
_ZONE_SHAPE = re.compile(r"[A-Za-z][A-Za-z_+-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*){0,2}")


class Channel(StrEnum):
    """How an action reaches the customer."""

    SMS = "sms"
    PHONE = "phone"
    EMAIL = "email"
    LETTER = "letter"
    VISIT = "visit"
    LEGAL = "legal"
    BUREAU = "bureau"  # furnishing to a credit bureau: no contact with the customer


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


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (cached; raises ``ValueError`` when unknown)."""
    # Only a name shaped like an IANA zone reaches the file system: a long value,
    # a directory of the tz database (`America/Argentina`) or a phone number is
    # refused here, and the value is echoed only when it has that shape.
    if len(name) > 64 or not _ZONE_SHAPE.fullmatch(name):
        raise ValueError("is not an IANA time zone name (like `Asia/Shanghai`)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone `{name}`") from exc


def _check_zone(name: str) -> str:
    if "/" not in name and name != "UTC":
        raise ValueError("is not an IANA time zone name (like `Asia/Shanghai`)")
    zone(name)
    return name


class HistoryEvent(BaseModel):
    """One past action or contact: when, which tier (if any), on which channel,
    with what outcome."""

    model_config = _MODEL

    at: Instant
    action: str | None = Field(default=None, max_length=64)
    channel: Channel | None = None
    outcome: Outcome | None = None
    direction: Direction = Direction.OUTBOUND
    address: str | None = Field(default=None, max_length=256)
    consent_until: Instant | None = None
    misdirected: bool = False
    amount: Money | None = None  # payments: the amount paid, in the account's currency


class PromiseToPay(BaseModel):
    """The customer's promise to pay ``amount`` by ``due_date``."""

    model_config = _MODEL

    amount: Money
    due_date: Day
    made_at: Instant


class PaymentPlan(BaseModel):
    """An agreed instalment plan."""

    model_config = _MODEL

    status: PlanStatus
    next_due_date: Day | None = None


class BreathingSpace(BaseModel):
    """A Debt Respite Scheme moratorium (England & Wales), with the dates as
    the Insolvency Service notified them: never computed here. A mental health
    crisis moratorium has no ``end`` until the crisis treatment end is known."""

    model_config = _MODEL

    type: Literal["standard", "mental_health_crisis"]
    start: Day
    end: Day | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BreathingSpace:
        if self.end is not None and self.end < self.start:
            raise ValueError("`end` is before `start`")
        return self


_WEEKDAY = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALL_DAYS: tuple[_WEEKDAY, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class InconvenientTime(BaseModel):
    """A time the consumer said is inconvenient (Regulation F 1006.6(b)(1)):
    ``from``-``to`` local time on ``days``, until ``until`` (inclusive) if
    the consumer gave an end ("not on Tuesdays through the end of the year")."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=True)

    days: tuple[_WEEKDAY, ...] = Field(default=_ALL_DAYS, min_length=1, max_length=7)
    from_: _CLOCK = Field(default="00:00", alias="from")
    to: _CLOCK = "24:00"
    until: Day | None = None
    channels: tuple[Channel, ...] = Field(
        default=(), description="the media the designation covers; empty: every medium of contact"
    )

    @model_validator(mode="after")
    def _ordered(self) -> InconvenientTime:
        if self.from_ >= self.to:
            raise ValueError("`from` must be earlier than `to` (give two windows across midnight)")
        return self


class InconvenientPlace(BaseModel):
    """A place the consumer said is inconvenient ("not at work"), with the
    media that would reach the consumer there (the work phone, an employer
    e-mail, a visit to the workplace)."""

    model_config = _MODEL

    place: Literal["home", "work", "other"]
    channels: tuple[Channel, ...] = Field(min_length=1, max_length=8)
    until: Day | None = None


class LetterOfClaimReply(BaseModel):
    """The debtor's reply to a Pre-Action Protocol Letter of Claim: when the
    creditor received it, what it says, and when requested documents went out."""

    model_config = _MODEL

    received_at: Day
    kinds: tuple[Literal["reply_form", "seeking_advice", "documents_requested"], ...] = Field(
        min_length=1, max_length=3
    )
    documents_provided_at: Day | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LetterOfClaimReply:
        if self.documents_provided_at is not None:
            if "documents_requested" not in self.kinds:
                raise ValueError("`documents_provided_at` needs `documents_requested` in `kinds`")
            if self.documents_provided_at < self.received_at:
                raise ValueError("`documents_provided_at` is before `received_at`")
        return self


class Account(BaseModel):
    """One account as the lender knows it at the evaluation instant."""

    model_config = _MODEL

    id: str = Field(min_length=1, max_length=128)
    currency: str
    amount_overdue: Money
    balance: Money
    days_overdue: int | None = Field(default=None, ge=0, le=36_500)
    overdue_since: Day | None = None
    due_date: Day | None = None
    timezone: str | None = None
    timezones: tuple[str, ...] = Field(default=(), max_length=16)
    jurisdiction: str | None = Field(default=None, max_length=64)
    product: str | None = Field(default=None, max_length=64)
    segment: str | None = Field(default=None, max_length=64)
    flags: frozenset[str] = Field(default=frozenset(), max_length=64)
    opt_out: frozenset[Channel] = frozenset()
    promise_to_pay: PromiseToPay | None = None
    payment_plan: PaymentPlan | None = None
    validation_notice_sent_at: Instant | None = None
    last_payment_at: Day | None = None
    charged_off_at: Day | None = None
    # Who collects, and the principal alone (CN criminal thresholds exclude interest and fees).
    actor_type: ActorType | None = None
    principal: Money | None = None
    # Notices and requests, each dated as received or served (compliance rule packs read them).
    dispute_received_at: Instant | None = None
    verification_sent_at: Instant | None = None
    cease_communication_received_at: Instant | None = None
    negative_info_notice_sent_at: Instant | None = None
    default_notice_served_at: Day | None = None
    # the date the default notice itself gives for remedy (may lie ahead of `now`)
    default_notice_remedy_date: Day | None = None
    letter_of_claim_at: Day | None = None
    letter_of_claim_reply: LetterOfClaimReply | None = None
    forbearance_assessed_at: Instant | None = None
    inconvenient_times: tuple[InconvenientTime, ...] = Field(default=(), max_length=32)
    inconvenient_places: tuple[InconvenientPlace, ...] = Field(default=(), max_length=16)
    # when each opt-out in `opt_out` was received (a single confirmation may follow it)
    opt_out_at: dict[Channel, Instant] = Field(default={}, max_length=8)
    breathing_space: BreathingSpace | None = None
    history: tuple[HistoryEvent, ...] = Field(default=(), max_length=MAX_HISTORY_EVENTS)
    # The lender's own data, typed by the policy (`policy.attributes`); checked in Engine.validate.
    attributes: dict[Annotated[str, Field(max_length=64)], AttributeValue] = Field(default={}, max_length=64)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            shown = f"`{value}` " if re.fullmatch(r"[A-Z]{3}", value) else ""
            raise ValueError(f"{shown}is not an ISO 4217 currency code")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @field_validator("timezones")
    @classmethod
    def _known_zones(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, name in enumerate(value):
            try:
                _check_zone(name)
            except ValueError as exc:
                raise ValueError(f"item {index}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Account:
        if self.days_overdue is None and self.overdue_since is None and self.due_date is None:
            raise ValueError("one of `days_overdue`, `overdue_since` or `due_date` is required")
        exponent = MINOR_UNITS[self.currency]
        for name in ("amount_overdue", "balance"):
            value: Decimal = getattr(self, name)
            if value != value.quantize(Decimal(1).scaleb(-exponent)):
                raise ValueError(f"`{name}` has more decimal places than {self.currency} allows ({exponent})")
        if self.amount_overdue > self.balance:
            raise ValueError("`amount_overdue` exceeds `balance`")
        for channel in self.opt_out_at:
            if channel not in self.opt_out:
                raise ValueError(f"`opt_out_at` names `{channel.value}`, which is not in `opt_out`")
        remedy, served = self.default_notice_remedy_date, self.default_notice_served_at
        if remedy is not None and (served is None or remedy < served):
            raise ValueError("`default_notice_remedy_date` needs `default_notice_served_at` on or before it")
        for event in self.history:
            if event.amount is not None and event.amount != event.amount.quantize(
                Decimal(1).scaleb(-exponent)
            ):
                raise ValueError(
                    f"a history `amount` has more decimal places than {self.currency} allows ({exponent})"
                )
        return self


def _issues_from(exc: ValidationError) -> list[RecordIssue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        issues.append(RecordIssue(field=loc, message=msg[:1].lower() + msg[1:]))
    return issues


def parse_account(data: Account | dict[str, Any]) -> Account:
    """Validate ``data`` into an :class:`Account`, raising :class:`RecordError`
    that names every bad field."""
    if isinstance(data, Account):
        return data
    if not isinstance(data, dict):
        raise RecordError([RecordIssue("", f"expected an object, got {type(data).__name__}")])
    try:
        return Account.model_validate(data)
    except ValidationError as exc:
        ident = data.get("id")
        readable = isinstance(ident, str) and 0 < len(ident) <= 128 and ident.isprintable()
        raise RecordError(_issues_from(exc), account_id=ident if readable else None) from None
    except RecursionError:
        raise RecordError([RecordIssue("", "is nested too deeply")]) from None


def days_overdue_on(account: Account, today: dt.date) -> int:
    """Days overdue on the local date ``today``: the record's ``days_overdue``,
    else counted from ``overdue_since`` (or, negative before it, ``due_date``).
    The one place days overdue is computed."""
    if account.days_overdue is not None:
        return account.days_overdue
    start = account.overdue_since if account.overdue_since is not None else account.due_date
    assert start is not None  # the model requires one of the three
    return (today - start).days


def local_date(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The calendar date of ``instant`` in ``tz``."""
    return instant.astimezone(tz).date()


# Record instants and dates that record past facts: none may lie after `now`.
_INSTANT_FIELDS = (
    "validation_notice_sent_at",
    "dispute_received_at",
    "verification_sent_at",
    "cease_communication_received_at",
    "negative_info_notice_sent_at",
    "forbearance_assessed_at",
)
_DATE_FIELDS = (
    "last_payment_at",
    "charged_off_at",
    "default_notice_served_at",
    "letter_of_claim_at",
    "letter_of_claim_reply.received_at",
    "letter_of_claim_reply.documents_provided_at",
)


def check_at(account: Account, now: dt.datetime, tz: ZoneInfo) -> list[RecordIssue]:
    """Checks that need the evaluation instant: nothing dated after ``now``, and
    ``days_overdue`` consistent with ``overdue_since`` (counted in ``tz``)."""
    issues: list[RecordIssue] = []
    for index, event in enumerate(account.history):
        if event.at > now:
            issues.append(
                RecordIssue(f"history.{index}.at", f"is after the evaluation instant {now.isoformat()}")
            )
    today = local_date(now, tz)
    if account.overdue_since is not None:
        if account.overdue_since > today:
            issues.append(RecordIssue("overdue_since", f"is after today ({today.isoformat()})"))
        elif account.days_overdue is not None:
            counted = (today - account.overdue_since).days
            if counted != account.days_overdue:
                issues.append(
                    RecordIssue(
                        "days_overdue",
                        f"is {account.days_overdue} but `overdue_since` "
                        f"{account.overdue_since.isoformat()} gives {counted} on {today.isoformat()}",
                    )
                )
    for name in _INSTANT_FIELDS:
        value = getattr(account, name)
        if value is not None and value > now:
            issues.append(RecordIssue(name, f"is after the evaluation instant {now.isoformat()}"))
    if account.breathing_space is not None and account.breathing_space.start > today:
        # the end is legitimately in the future; the start is a notified fact
        issues.append(RecordIssue("breathing_space.start", f"is after today ({today.isoformat()})"))
    if account.promise_to_pay is not None and account.promise_to_pay.made_at > now:
        issues.append(
            RecordIssue("promise_to_pay.made_at", f"is after the evaluation instant {now.isoformat()}")
        )
    for channel, received in sorted(account.opt_out_at.items()):
        if received > now:
            issues.append(
                RecordIssue(
                    f"opt_out_at.{channel.value}", f"is after the evaluation instant {now.isoformat()}"
                )
            )
    for name in _DATE_FIELDS:
        value: Any = account
        for part in name.split("."):
            value = getattr(value, part, None)
        if value is not None and value > today:
            issues.append(RecordIssue(name, f"is after today ({today.isoformat()})"))
    return issues


def check_attributes(account: Account, declared: Mapping[str, object], policy_id: str) -> list[RecordIssue]:
    """Every attribute of the record is declared by the policy (``policy.attributes``)
    with the value's type: ``number``, ``string``, ``boolean`` or ``{enum: [...]}``."""
    issues: list[RecordIssue] = []
    for name, value in sorted(account.attributes.items()):
        where = f"attributes.{name}"
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            issues.append(RecordIssue(where, f"is not declared by policy `{policy_id}`{hint}"))
            continue
        kind = declared[name]
        enum: tuple[str, ...] | None = getattr(kind, "enum", None)
        if enum is not None:
            if not isinstance(value, str) or value not in enum:
                choices = ", ".join(f"`{v}`" for v in enum)
                issues.append(RecordIssue(where, f"must be one of {choices}"))
            continue
        ok = {
            "number": isinstance(value, int | Decimal) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
        }.get(str(kind), False)
        if not ok:
            issues.append(RecordIssue(where, f"must be a {kind}"))
    return issues
