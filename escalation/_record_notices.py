"""Record sub-models for notices and what a consumer said: a Breathing Space
moratorium, and (issue 19)
designated inconvenient times and places (Regulation F 1006.6(b)(1)) and the
reply to a Pre-Action Protocol Letter of Claim. A leaf beside
:mod:`escalation._record_base`; :mod:`escalation.record` re-exports them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from escalation._record_base import Channel, Day

__all__ = ["BreathingSpace", "InconvenientPlace", "InconvenientTime", "LetterOfClaimReply"]

_MODEL = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

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
