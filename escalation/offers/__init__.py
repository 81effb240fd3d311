"""Offers: what a collector may agree with a customer now — an instalment
plan, an extension, a fee or interest waiver, a settlement — declared in a
policy's ``offers:`` section, with exact figures in the account's currency.

:mod:`.schema` holds the policy models, :mod:`.figures` the arithmetic (whole
minor units, never floats) and :mod:`.evaluate` the one function every
evaluator calls after the ladder (:func:`~escalation.offers.evaluate.after_ladder`).
This module imports only the models, so the policy package can use them."""

from __future__ import annotations

from escalation.offers.schema import (
    APPROVALS,
    OFFER_KINDS,
    Approval,
    Discount,
    ExtensionOffer,
    FeeWaiverOffer,
    InstalmentPlanOffer,
    OfferBase,
    OfferRule,
    SettlementOffer,
)

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
]
