"""Offers after the ladder: the one function every evaluator calls once the
ladder has chosen an action, so ``native``, ``rete`` and (through its
reference fallback) ``columnar`` give the same offers with the same figures.

* The chosen tier has ``offer_first`` and none of those offers was made in
  this delinquency cycle, while one of them is eligible now: the decision is
  status ``offer`` (make it before this step), with those offers.
* Otherwise, when the chosen action reaches the customer (any channel but
  ``legal`` and ``bureau``), the decision carries every offer eligible now.

An offer is eligible when its ``when`` holds (an unknown is never true) and
its figures can be computed from the record (a fee waiver needs
``principal``); one that cannot be computed is left out, never guessed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from escalation._currencies import MINOR_UNITS
from escalation._facts import Situation
from escalation._trace import Recorder
from escalation.decision import Instalment, Offer, construct
from escalation.offers import figures as fig
from escalation.offers.schema import ExtensionOffer, FeeWaiverOffer, InstalmentPlanOffer, SettlementOffer
from escalation.policy import Policy, TierRule
from escalation.policy._compile import CompiledOffer
from escalation.reasons._offer import offer_summary
from escalation.record import Channel, Outcome

__all__ = ["OfferOutcome", "after_ladder", "eligible_offers", "offer_gated", "offers_made"]

Truth = Callable[[str], bool]
_DAY = dt.timedelta(days=1)
#: Channels whose actions do not reach the customer: no offer rides on them.
NOT_CONTACT = frozenset({Channel.LEGAL, Channel.BUREAU, Channel.AGENCY})
#: Outcomes that show an offer reached the customer (``None``: dispatched, as sent).
REACHED = frozenset(
    {
        Outcome.SENT,
        Outcome.DELIVERED,
        Outcome.CONVERSATION,
        Outcome.PROMISE_TO_PAY,
        Outcome.REFUSED,
        Outcome.DISPUTE,
        Outcome.PAYMENT,
    }
)


@dataclass(frozen=True, slots=True)
class OfferOutcome:
    """The offers of a decision; ``before``: the tier they must come before
    (status ``offer``), or ``None`` (offers ride on the chosen contact)."""

    offers: list[Offer]
    before: TierRule | None = None


NO_OFFERS = OfferOutcome([])


def offer_gated(policy: Policy) -> frozenset[str]:
    """Ids of the tiers an offer may have to come before (``offer_first``): an
    evaluator that does not run :func:`after_ladder` (the columnar one) sends
    accounts about to take one of them to the reference engine."""
    if not policy.offers:
        return frozenset()
    return frozenset(t.model.id for t in policy.tiers if t.model.offer_first)


def offers_made(sit: Situation) -> frozenset[str]:
    """Ids of the offers made to the customer in this delinquency cycle
    (history events carrying ``offer`` whose outcome shows it reached them)."""
    cycle = sit.cycle_start
    return frozenset(
        e.offer
        for e in sit.events
        if e.offer is not None and e.at >= cycle and (e.outcome is None or e.outcome in REACHED)
    )


def after_ladder(
    policy: Policy,
    sit: Situation,
    truth: Truth,
    trace: Recorder,
    tier: TierRule,
    channel: Channel,
    *,
    kept: bool = True,
) -> OfferOutcome:
    """The offers of a decision whose ladder chose ``tier`` by ``channel``.
    ``kept=False``: the caller reads no offers of an ``act``, only whether an
    offer comes first (status ``offer``)."""
    if not policy.offers:
        return NO_OFFERS
    first = tier.model.offer_first
    if first:
        made = offers_made(sit)
        done = sorted(made.intersection(first))
        if done:
            note = f"offer made first: {', '.join(done)}"
            trace.add(rule=f"tier:{tier.model.id}", matched=True, facts={}, note=note)
        else:
            gated = [o for o in policy.offers if o.model.id in first]
            found = eligible_offers(gated, sit, truth, trace)
            if found:
                note = f"an offer comes first: {', '.join(o.id for o in found)} (none made in this cycle)"
                trace.add(rule=f"tier:{tier.model.id}", matched=True, facts={}, note=note)
                return OfferOutcome(found, before=tier)
    if channel in NOT_CONTACT or not kept:
        return NO_OFFERS
    return OfferOutcome(eligible_offers(policy.offers, sit, truth, trace))


def eligible_offers(
    offers: list[CompiledOffer] | tuple[CompiledOffer, ...],
    sit: Situation,
    truth: Truth,
    trace: Recorder,
) -> list[Offer]:
    """The offers among ``offers`` eligible now, with their figures (traced)."""
    out: list[Offer] = []
    for compiled in offers:
        rule = f"offer:{compiled.model.id}"
        facts = trace.facts(compiled.when.fact_order, sit) if trace.on else {}
        if not truth(rule):
            trace.add(rule=rule, matched=False, facts=facts, note="condition not met")
            continue
        offer, why = _figures(compiled, sit)
        if offer is None:
            trace.add(rule=rule, matched=True, facts=facts, note=f"not offered: {why}")
            continue
        trace.add(rule=rule, matched=True, facts=facts, note=f"offered: {offer.summary}")
        out.append(offer)
    return out


def _figures(compiled: CompiledOffer, sit: Situation) -> tuple[Offer | None, str]:
    model = compiled.model
    account = sit.account
    places = MINOR_UNITS[account.currency]
    scale = 10**places

    def minor(amount: Decimal) -> int:
        return int(amount * scale)

    today = sit.today
    if isinstance(model, InstalmentPlanOffer):
        base = account.balance if model.of == "balance" else account.amount_overdue
        figures = fig.instalment_plan(
            minor(base),
            max_months=model.max_months,
            min_instalment=minor(model.min_instalment),
            down_share=model.down_payment,
            first_due=today + model.first_due * _DAY,
        )
    elif isinstance(model, ExtensionOffer):
        figures = fig.extension(minor(account.amount_overdue), today + model.days * _DAY)
    elif isinstance(model, FeeWaiverOffer):
        if account.principal is None:
            return None, "`principal` is not on the record (fees and interest unknown)"
        fees = minor(account.balance) - minor(account.principal)
        due = today + model.pay_within * _DAY if model.pay_within is not None else None
        figures = fig.fee_waiver(minor(account.balance), fees, model.share, due)
        if figures.waived <= 0:
            return None, "no fees or interest to waive"
    else:
        assert isinstance(model, SettlementOffer)
        band, due = model.discount, today + model.pay_within * _DAY
        figures = fig.settlement(minor(account.balance), band.min, band.max, due)
    if figures.amount <= 0:
        return None, "nothing owed to offer on"
    money = _Money(places)
    instalments = []
    # a plan's instalments are one amount but the last: each distinct amount made once, here
    made, amount = None, Decimal(0)
    for i, (due, units) in enumerate(figures.instalments, start=1):
        if units != made:
            made, amount = units, money(units)
        instalments.append(construct(Instalment, number=i, due=due, amount=amount))
    offer = construct(
        Offer,
        id=model.id,
        kind=model.kind,
        approval=model.approval,
        currency=account.currency,
        amount=money(figures.amount),
        pay=money(figures.pay),
        pay_up_to=money(figures.pay_up_to) if figures.pay_up_to is not None else None,
        waived=money(figures.waived),
        down_payment=money(figures.down_payment) if figures.down_payment is not None else None,
        instalments=instalments,
        due_date=figures.due_date,
        summary="",
        cite=model.cite,
        description=model.description,
    )
    # the summary is in English whatever the reason's locale (a decision differs
    # between locales only in its reason); the reason of status `offer` says it
    # again in the decision's locale. It reads the offer's own figures, so it is
    # set on the one offer built (construct() keeps the field values in __dict__)
    offer.__dict__["summary"] = offer_summary(offer, model, "en")
    return offer, ""


class _Money:
    """Minor units as a :class:`~decimal.Decimal` amount, each distinct figure
    made once (a plan's instalments repeat one amount; Decimals are immutable)."""

    __slots__ = ("made", "places")

    def __init__(self, places: int) -> None:
        self.places = -places
        self.made: dict[int, Decimal] = {}

    def __call__(self, units: int) -> Decimal:
        found = self.made.get(units)
        if found is None:
            found = self.made[units] = Decimal(units).scaleb(self.places)
        return found
