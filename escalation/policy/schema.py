"""The documents users write: a policy file and a rule-pack file, as strict
pydantic models (unknown keys are errors). Guard models come from their
kinds in :mod:`escalation.guards`."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from escalation._currencies import MINOR_UNITS
from escalation._language import (
    MODEL,
    CalendarDays,
    Duration,
    EventFilter,
    Identifier,
    Int,
    Label,
    Labels,
    LanguageVersion,
    Locale,
    RuleId,
    SpanField,
    Tag,
)
from escalation.guards import Guard
from escalation.offers import OfferRule
from escalation.record import Channel, Outcome, zone

__all__ = [
    "Agency",
    "AttributeEnum",
    "AttributeType",
    "Counts",
    "Hold",
    "Limitation",
    "Limits",
    "PackDocument",
    "PackHeader",
    "PolicyDocument",
    "PolicyHeader",
    "PromiseRules",
    "Repeat",
    "Tier",
]

_MODEL = MODEL


class Hold(BaseModel):
    """Stops everything while ``when`` holds (first match wins)."""

    model_config = _MODEL

    id: RuleId
    when: str
    reason: str = Field(min_length=1, max_length=500)
    until: str | None = None
    grace: Duration | None = None
    cite: str | None = None
    label: Label | None = Field(
        default=None,
        description="the hold in a collector's words, in `en`; `{fact}` placeholders are filled "
        "(reasons use it; not fingerprinted)",
    )
    labels: Labels = {}


class Repeat(BaseModel):
    """How often and how many times a tier may be taken in one delinquency cycle."""

    model_config = _MODEL

    every: SpanField | None = Field(
        default=None,
        description="minimum interval since the tier's own last action: `d`/`w` are local "
        "calendar days (`1d` = not again the same local day), `h`/`m` exact hours/minutes",
    )
    max: Int | None = Field(default=None, ge=1, le=10_000)


#: Outcomes that show an action was made (design: "Attempts that count").
COUNTING_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.SENT,
    Outcome.DELIVERED,
    Outcome.CONVERSATION,
    Outcome.VOICEMAIL,
    Outcome.NO_ANSWER,
    Outcome.BUSY,
    Outcome.PROMISE_TO_PAY,
    Outcome.REFUSED,
    Outcome.DISPUTE,
    Outcome.PAYMENT,
)


class Counts(BaseModel):
    """Which outcomes of a tier's actions count as the tier done."""

    model_config = _MODEL

    outcomes: tuple[Outcome, ...] = Field(min_length=1)


class Tier(BaseModel):
    """One rung of the severity ladder."""

    model_config = _MODEL

    id: Identifier
    channel: Channel | None = None
    channels: tuple[Channel, ...] = ()
    tags: tuple[Tag, ...] = ()
    when: str
    requires: dict[Identifier, Annotated[Int, Field(ge=1, le=10_000)]] = {}
    wait: SpanField | None = Field(
        default=None,
        description="time after the last counting action of the tier below "
        "(`d`/`w` calendar days, `h`/`m` exact)",
    )
    repeat: Repeat = Repeat()
    description: str | None = None
    ongoing: bool = Field(
        default=False,
        description="still considered below the stage (e.g. a monthly statement); never sets the stage",
    )
    counts: Counts | None = Field(
        default=None,
        description="outcomes that count as the tier done (default: those showing it was made)",
    )
    label: Label | None = Field(
        default=None,
        description="the action as a noun a collector uses (`call`, `reminder SMS`), in `en` "
        "(reasons use it; not fingerprinted)",
    )
    labels: Labels = {}
    kind: Literal["contact", "place", "recall"] = Field(
        default="contact",
        description="`place`: place the account with `agency`; `recall`: recall it from the agency "
        "holding it (both on channel `agency`)",
    )
    agency: RuleId | None = Field(
        default=None, description="the agency (from `agencies:`) a `place` tier uses"
    )
    offer_first: tuple[RuleId, ...] = Field(
        default=(),
        max_length=16,
        description="offers (ids from `offers:`) a collector must make before this tier is taken: "
        "while one of them is eligible and none was made in this delinquency cycle, the "
        "decision is status `offer` instead of this tier",
    )

    @property
    def counting_outcomes(self) -> tuple[Outcome, ...]:
        """The outcomes that count towards ``done``, ``requires``, ``repeat.max`` and the stage."""
        return self.counts.outcomes if self.counts is not None else COUNTING_OUTCOMES

    @model_validator(mode="after")
    def _one_channel_form(self) -> Tier:
        if (self.channel is None) == (not self.channels):
            raise ValueError("give exactly one of `channel` or `channels`")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("`channels` lists a channel twice")
        if (self.kind == "place") != (self.agency is not None):
            raise ValueError("a `place` tier names its `agency`; no other tier does")
        if (self.kind != "contact") != (self.channel_order == (Channel.AGENCY,)):
            raise ValueError("`place` and `recall` tiers use `channel: agency`, and only they do")
        return self

    @property
    def channel_order(self) -> tuple[Channel, ...]:
        """Channels in preference order."""
        return (self.channel,) if self.channel is not None else self.channels


class Limitation(BaseModel):
    """How to tell whether the debt is time-barred (statute of limitations)."""

    model_config = _MODEL

    years: Int = Field(ge=1, le=50)
    start: tuple[Literal["last_payment_at", "charged_off_at", "overdue_since"], ...] = (
        "last_payment_at",
        "charged_off_at",
    )
    cite: str | None = None
    by_jurisdiction: dict[str, Annotated[Int, Field(ge=1, le=50)]] = Field(
        default={},
        description="years for an account whose `jurisdiction` is the key (e.g. `GB-SCT: 5`)",
    )
    interrupted_by: tuple[EventFilter, ...] = Field(
        default=(),
        max_length=16,
        description="history events that interrupt the period, which then restarts from the "
        "event's local date if it had not yet run (PRC Civil Code art. 195: a delivered "
        "demand, the debtor's agreement to perform, a part payment)",
    )

    @model_validator(mode="after")
    def _plain_filters(self) -> Limitation:
        for flt in self.interrupted_by:
            if flt.during_consent is not None or flt.consent_days is not None or flt.in_cycle is not None:
                raise ValueError(
                    "`interrupted_by` filters match channels, outcomes, direction, actions and tags only"
                )
        return self


class Limits(BaseModel):
    """Account-wide limits across tiers."""

    model_config = _MODEL

    actions_per_day: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="outbound actions of any tier per local calendar day of the account",
    )


_PERCENT = re.compile(r"^(\d{1,2}(?:\.\d{1,2})?)%$")


def _percent(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and (match := _PERCENT.match(value.strip())):
        return Decimal(match.group(1)) / 100
    raise ValueError(f"`{value}` is not a percentage like `5%`")


class PromiseRules(BaseModel):
    """When a promise to pay is kept or broken."""

    model_config = _MODEL

    tolerance: Annotated[
        Decimal,
        BeforeValidator(_percent),
        PlainSerializer(lambda d: f"{(d * 100).normalize():f}%", return_type=str),
        WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}(\.\d{1,2})?%$"}),
    ] = Field(
        default=Decimal(0), description="a promise is kept when payments reach its amount less this share"
    )
    grace: CalendarDays | None = Field(
        default=None, description="calendar days after the due date that payments still count"
    )


class AttributeEnum(BaseModel):
    """A string attribute with a closed set of values."""

    model_config = _MODEL

    enum: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = Field(min_length=1)


AttributeType = Literal["number", "string", "boolean"] | AttributeEnum


class PolicyHeader(BaseModel):
    """Identity and defaults of a policy."""

    model_config = _MODEL

    id: RuleId
    version: str = Field(min_length=1, max_length=64)
    currency: str
    timezone: str
    include: tuple[str, ...] = ()
    description: str | None = None
    limitation: Limitation | None = None
    limits: Limits = Limits()
    promise: PromiseRules = PromiseRules()
    attributes: dict[Identifier, AttributeType] = Field(
        default={}, description="lender attributes a record may carry, with their types"
    )
    locale: Locale = Field(
        default="en", description="the locale of `Decision.reason` unless the caller asks for another"
    )
    flags: tuple[Tag, ...] = Field(
        default=(),
        description="flags this policy's records may carry besides the known ones "
        "(`dispute`, `hardship`, …); any other flag is a record error",
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError(f"`{value}` is not an ISO 4217 currency code")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value


class Agency(BaseModel):
    """A collection agency accounts may be placed with, and the rule packs it follows."""

    model_config = _MODEL

    id: RuleId
    name: str | None = Field(default=None, max_length=200)
    regimes: tuple[RuleId, ...] = Field(
        min_length=1,
        description="ids of the rule packs the agency's contacts follow; every pack the policy "
        "includes must be among them (the lender stays responsible for its agencies)",
    )
    description: str | None = None
    cite: str | None = None


class PolicyDocument(BaseModel):
    """A policy file."""

    model_config = _MODEL

    escalation: LanguageVersion
    policy: PolicyHeader
    holds: tuple[Hold, ...] = ()
    tiers: tuple[Tier, ...] = Field(min_length=1)
    guards: tuple[Guard, ...] = ()
    offers: tuple[OfferRule, ...] = Field(
        default=(),
        max_length=64,
        description="repayment offers a collector may make (instalment plans, extensions, fee "
        "waivers, settlements), each with its eligibility, bounds and approval",
    )
    agencies: tuple[Agency, ...] = Field(
        default=(), max_length=64, description="collection agencies `place` tiers may use"
    )


class PackHeader(BaseModel):
    """Identity of a rule pack."""

    model_config = _MODEL

    id: RuleId
    title: str
    version: str
    jurisdiction: str
    include: tuple[str, ...] = ()
    description: str | None = None
    disclaimer: str | None = None
    flags: tuple[Tag, ...] = Field(
        default=(), description="flags the pack's guards read, declared for every policy including it"
    )


class PackDocument(BaseModel):
    """A rule-pack file: guards for one regime, each with its citation."""

    model_config = _MODEL

    escalation: LanguageVersion
    pack: PackHeader
    guards: tuple[Guard, ...] = ()


# ----------------------------------------------------------------- facts
