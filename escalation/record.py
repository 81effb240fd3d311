"""The account record: what a lender sends for one account (validated, immutable).

Validation is strict (unknown fields, naive datetimes, negative amounts, an
unknown currency or time zone are errors). The checks that depend on the
evaluation instant — history dated after ``now``, ``days_overdue`` that
disagrees with ``overdue_since`` — run in :func:`escalation._validate.check_at`, which the engine
calls for every decision."""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from operator import attrgetter
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
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
from escalation._record_base import (
    EARLIEST,
    LATEST,
    RANGE_MESSAGE,
    ActorType,
    Channel,
    Day,
    Direction,
    Instant,
    Outcome,
    PlanStatus,
    in_range,
)
from escalation._record_notices import BreathingSpace, InconvenientPlace, InconvenientTime, LetterOfClaimReply
from escalation.errors import RecordError, RecordIssue

__all__ = [
    "EARLIEST",
    "KNOWN_FLAGS",
    "LATEST",
    "RANGE_MESSAGE",
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
    "PlanInstalment",
    "PlanStatus",
    "PromiseToPay",
    "in_range",
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


_ZONE_SHAPE = re.compile(r"[A-Za-z][A-Za-z_+-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*){0,2}")


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
    # Who made the contact (the lender, or the agency's name): the contact audit reports it.
    actor: str | None = Field(default=None, max_length=64)
    # The policy offer (its id in `offers:`) presented in this contact: a tier's
    # `offer_first` is met once one reached the customer in the delinquency cycle.
    offer: str | None = Field(default=None, max_length=128)


class PromiseToPay(BaseModel):
    """The customer's promise to pay ``amount`` by ``due_date``."""

    model_config = _MODEL

    amount: Money
    due_date: Day
    made_at: Instant


class PlanInstalment(BaseModel):
    """One instalment of an agreed plan: when it is due and how much."""

    model_config = _MODEL

    due_date: Day
    amount: Money


class PaymentPlan(BaseModel):
    """An agreed instalment plan; with its terms (``instalments``, from
    ``agreed_at``) the engine tells from the history's payments whether it is
    current, missed or completed (:mod:`escalation.plans`)."""

    model_config = _MODEL

    status: PlanStatus
    next_due_date: Day | None = None
    agreed_at: Day | None = None
    instalments: tuple[PlanInstalment, ...] = Field(default=(), max_length=600)
    offer: str | None = Field(default=None, max_length=128, description="the policy offer it came from")

    @model_validator(mode="after")
    def _terms(self) -> PaymentPlan:
        if self.instalments and self.agreed_at is None:
            raise ValueError("a plan with `instalments` needs `agreed_at` (payments count from it)")
        dues = [i.due_date for i in self.instalments]
        if dues != sorted(set(dues)):
            raise ValueError("`instalments` must be in order of their due dates, one per date")
        if self.agreed_at is not None and dues and dues[0] < self.agreed_at:
            raise ValueError("an instalment falls due before `agreed_at`")
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
        quantum = Decimal(1).scaleb(-exponent)
        for name in ("amount_overdue", "balance"):
            value: Decimal = getattr(self, name)
            if value != value.quantize(quantum):
                raise ValueError(f"`{name}` has more decimal places than {self.currency} allows ({exponent})")
        if self.amount_overdue > self.balance:
            raise ValueError("`amount_overdue` exceeds `balance`")
        for channel in self.opt_out_at:
            if channel not in self.opt_out:
                raise ValueError(f"`opt_out_at` names `{channel.value}`, which is not in `opt_out`")
        remedy, served = self.default_notice_remedy_date, self.default_notice_served_at
        if remedy is not None and (served is None or remedy < served):
            raise ValueError("`default_notice_remedy_date` needs `default_notice_served_at` on or before it")
        plan = self.payment_plan
        for instalment in plan.instalments if plan is not None else ():
            if instalment.amount != instalment.amount.quantize(quantum):
                places = f"more decimal places than {self.currency} allows ({exponent})"
                raise ValueError(f"a plan instalment `amount` has {places}")
        # most events carry no amount (only payments do): counted in one pass first
        amounts = list(map(_AMOUNT, self.history))
        for amount in amounts if amounts.count(None) < len(amounts) else ():
            if amount is not None and amount != amount.quantize(quantum):
                raise ValueError(
                    f"a history `amount` has more decimal places than {self.currency} allows ({exponent})"
                )
        return self


_AMOUNT = attrgetter("amount")


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
