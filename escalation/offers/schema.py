"""What a policy's ``offers:`` section says: the repayment offers a collector
may make, each with its eligibility (``when``), its bounds, who must approve
it and its source. Strict models; the figures are computed in
:mod:`escalation.offers.figures`."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer, WithJsonSchema, model_validator

from escalation._language import MODEL, CalendarDays, Int, Label, Labels, RuleId

__all__ = [
    "APPROVALS",
    "OFFER_KINDS",
    "Approval",
    "Discount",
    "ExtensionOffer",
    "FeeWaiverOffer",
    "InstalmentPlanOffer",
    "OfferBase",
    "OfferRule",
    "SettlementOffer",
    "Share",
]

Approval = Literal["agent", "supervisor", "legal"]
#: Approval levels, least senior first.
APPROVALS: tuple[Approval, ...] = ("agent", "supervisor", "legal")

_PERCENT = re.compile(r"^(\d{1,3}(?:\.\d{1,2})?)%$")


def _share(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and (match := _PERCENT.match(value.strip())):
        share = Decimal(match.group(1)) / 100
        if share <= 1:
            return share
    shown = f"`{value}` " if isinstance(value, str | int) and len(str(value)) <= 16 else ""
    raise ValueError(f"{shown}is not a percentage from `0%` to `100%` like `25%`")


#: A share of an amount, written as a percentage (``"25%"``, ``"12.5%"``), held exactly.
Share = Annotated[
    Decimal,
    BeforeValidator(_share),
    PlainSerializer(lambda d: f"{(d * 100).normalize():f}%", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,3}(\.\d{1,2})?%$"}),
]


def _amount(value: object) -> Decimal:
    if isinstance(value, str) and re.fullmatch(r"\d{1,15}(\.\d{1,4})?", value.strip()):
        return Decimal(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**15:
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    shown = f"`{value}` " if isinstance(value, str | int) and len(str(value)) <= 24 else ""
    raise ValueError(f"{shown}is not an amount like `100.00` (in the policy's currency)")


#: An amount in the policy's currency, written as a string (``"100.00"``), held exactly.
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    PlainSerializer(lambda d: f"{d:f}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,15}(\.\d{1,4})?$"}),
]


class OfferBase(BaseModel):
    """What every offer has: an id, when it may be made, who approves it, its source."""

    model_config = MODEL

    id: RuleId
    when: str = Field(description="eligibility, in the condition language (facts as in tiers)")
    approval: Approval = Field(
        default="agent", description="who may agree it: `agent`, `supervisor` or `legal`"
    )
    cite: str | None = Field(default=None, description="the legal or internal source of the offer")
    description: str | None = None
    label: Label | None = Field(
        default=None,
        description="the offer as a collector names it, in `en` (reasons use it; not fingerprinted)",
    )
    labels: Labels = {}


class InstalmentPlanOffer(OfferBase):
    """Repay ``of`` (the balance or the arrears) in monthly instalments."""

    kind: Literal["instalment_plan"]
    of: Literal["balance", "amount_overdue"] = Field(
        default="balance", description="the amount the plan repays"
    )
    max_months: Int = Field(ge=1, le=120, description="at most this many monthly instalments")
    min_instalment: Amount = Field(description="each instalment is at least this amount")
    down_payment: Share = Field(
        default=Decimal(0), description="share of the amount paid on agreement (rounded up to a minor unit)"
    )
    first_due: CalendarDays = Field(
        default=30, description="calendar days from today to the first instalment; then monthly"
    )


class ExtensionOffer(OfferBase):
    """Move the arrears' due date ``days`` calendar days ahead."""

    kind: Literal["extension"]
    days: CalendarDays = Field(description="calendar days from today to the new due date")


class FeeWaiverOffer(OfferBase):
    """Waive a share of the fees and interest (the balance less the principal)."""

    kind: Literal["fee_waiver"]
    share: Share = Field(description="the largest share of fees and interest that may be waived")
    pay_within: CalendarDays | None = Field(
        default=None, description="the rest must be paid within these calendar days"
    )


class Discount(BaseModel):
    """The discount band of a settlement, as shares of the balance."""

    model_config = MODEL

    min: Share = Decimal(0)
    max: Share

    @model_validator(mode="after")
    def _ordered(self) -> Discount:
        if self.min > self.max:
            raise ValueError("`min` is above `max`")
        if self.max >= 1:
            raise ValueError("`max` must be below 100% (a settlement is paid)")
        return self


class SettlementOffer(OfferBase):
    """Settle the balance in full and final for less, within a discount band."""

    kind: Literal["settlement"]
    discount: Discount
    pay_within: CalendarDays = Field(
        default=14, description="the settlement is paid within these calendar days"
    )


OfferRule = Annotated[
    InstalmentPlanOffer | ExtensionOffer | FeeWaiverOffer | SettlementOffer,
    Field(discriminator="kind"),
]
OFFER_KINDS = ("instalment_plan", "extension", "fee_waiver", "settlement")
