"""The documents users write: a policy file and a rule-pack file, as strict
pydantic models (unknown keys are errors). Guard models come from their
kinds in :mod:`escalation.guards`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from escalation._currencies import MINOR_UNITS
from escalation._language import MODEL, Duration, Identifier, Int, LanguageVersion, RuleId, Tag
from escalation.guards import Guard
from escalation.record import Channel, zone

__all__ = [
    "Hold",
    "Limitation",
    "PackDocument",
    "PackHeader",
    "PolicyDocument",
    "PolicyHeader",
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


class Repeat(BaseModel):
    """How often and how many times a tier may be taken in one delinquency cycle."""

    model_config = _MODEL

    every: Duration | None = None
    max: Int | None = Field(default=None, ge=1, le=10_000)


class Tier(BaseModel):
    """One rung of the severity ladder."""

    model_config = _MODEL

    id: Identifier
    channel: Channel | None = None
    channels: tuple[Channel, ...] = ()
    tags: tuple[Tag, ...] = ()
    when: str
    requires: dict[Identifier, Annotated[Int, Field(ge=1, le=10_000)]] = {}
    wait: Duration | None = None
    repeat: Repeat = Repeat()
    description: str | None = None

    @model_validator(mode="after")
    def _one_channel_form(self) -> Tier:
        if (self.channel is None) == (not self.channels):
            raise ValueError("give exactly one of `channel` or `channels`")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("`channels` lists a channel twice")
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


class PolicyDocument(BaseModel):
    """A policy file."""

    model_config = _MODEL

    escalation: LanguageVersion
    policy: PolicyHeader
    holds: tuple[Hold, ...] = ()
    tiers: tuple[Tier, ...] = Field(min_length=1)
    guards: tuple[Guard, ...] = ()


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
