"""The account record: what a lender sends for one account (validated, immutable).

Validation is strict (unknown fields, naive datetimes, negative amounts, an
unknown currency or time zone are errors). The checks that depend on the
evaluation instant — history dated after ``now``, ``days_overdue`` that
disagrees with ``overdue_since`` — run in :func:`check_at`, which the engine
calls for every decision."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from escalation._currencies import MINOR_UNITS
from escalation.errors import RecordError, RecordIssue

__all__ = [
    "Account",
    "ActorType",
    "BreathingSpace",
    "Channel",
    "Direction",
    "HistoryEvent",
    "Outcome",
    "PaymentPlan",
    "PlanStatus",
    "PromiseToPay",
    "check_at",
    "parse_account",
]

MAX_HISTORY_EVENTS = 10_000
_MODEL = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

Money = Annotated[Decimal, Field(ge=0, max_digits=20, allow_inf_nan=False)]


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
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone `{name}`") from exc


def _check_zone(name: str) -> str:
    if "/" not in name and name != "UTC":
        raise ValueError(f"`{name}` is not an IANA time zone name (like `Asia/Shanghai`)")
    zone(name)
    return name


class HistoryEvent(BaseModel):
    """One past action or contact: when, which tier (if any), on which channel,
    with what outcome."""

    model_config = _MODEL

    at: AwareDatetime
    action: str | None = Field(default=None, max_length=64)
    channel: Channel | None = None
    outcome: Outcome | None = None
    direction: Direction = Direction.OUTBOUND
    address: str | None = Field(default=None, max_length=256)
    consent_until: AwareDatetime | None = None
    misdirected: bool = False
    # Who made the contact (the lender, or the agency's name): the contact audit reports it.
    actor: str | None = Field(default=None, max_length=64)


class PromiseToPay(BaseModel):
    """The customer's promise to pay ``amount`` by ``due_date``."""

    model_config = _MODEL

    amount: Money
    due_date: dt.date
    made_at: AwareDatetime


class PaymentPlan(BaseModel):
    """An agreed instalment plan."""

    model_config = _MODEL

    status: PlanStatus
    next_due_date: dt.date | None = None


class BreathingSpace(BaseModel):
    """A Debt Respite Scheme moratorium (England & Wales), with the dates as
    the Insolvency Service notified them: never computed here. A mental health
    crisis moratorium has no ``end`` until the crisis treatment end is known."""

    model_config = _MODEL

    type: Literal["standard", "mental_health_crisis"]
    start: dt.date
    end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BreathingSpace:
        if self.end is not None and self.end < self.start:
            raise ValueError("`end` is before `start`")
        return self


class Account(BaseModel):
    """One account as the lender knows it at the evaluation instant."""

    model_config = _MODEL

    id: str = Field(min_length=1, max_length=128)
    currency: str
    amount_overdue: Money
    balance: Money
    days_overdue: int | None = Field(default=None, ge=0, le=36_500)
    overdue_since: dt.date | None = None
    due_date: dt.date | None = None
    timezone: str | None = None
    timezones: tuple[str, ...] = Field(default=(), max_length=16)
    jurisdiction: str | None = Field(default=None, max_length=64)
    product: str | None = Field(default=None, max_length=64)
    segment: str | None = Field(default=None, max_length=64)
    flags: frozenset[str] = Field(default=frozenset(), max_length=64)
    opt_out: frozenset[Channel] = frozenset()
    promise_to_pay: PromiseToPay | None = None
    payment_plan: PaymentPlan | None = None
    validation_notice_sent_at: AwareDatetime | None = None
    last_payment_at: dt.date | None = None
    charged_off_at: dt.date | None = None
    # Who collects, and the principal alone (CN criminal thresholds exclude interest and fees).
    actor_type: ActorType | None = None
    principal: Money | None = None
    # Notices and requests, each dated as received or served (compliance rule packs read them).
    dispute_received_at: AwareDatetime | None = None
    verification_sent_at: AwareDatetime | None = None
    cease_communication_received_at: AwareDatetime | None = None
    negative_info_notice_sent_at: AwareDatetime | None = None
    default_notice_served_at: dt.date | None = None
    letter_of_claim_at: dt.date | None = None
    breathing_space: BreathingSpace | None = None
    history: tuple[HistoryEvent, ...] = Field(default=(), max_length=MAX_HISTORY_EVENTS)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError(f"`{value}` is not an ISO 4217 currency code")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @field_validator("timezones")
    @classmethod
    def _known_zones(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            _check_zone(name)
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
        raise RecordError(_issues_from(exc), account_id=ident if isinstance(ident, str) else None) from None


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
)
_DATE_FIELDS = ("last_payment_at", "charged_off_at", "default_notice_served_at", "letter_of_claim_at")


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
    for name in _DATE_FIELDS:
        value = getattr(account, name)
        if value is not None and value > today:
            issues.append(RecordIssue(name, f"is after today ({today.isoformat()})"))
    return issues
