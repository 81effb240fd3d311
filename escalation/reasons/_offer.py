"""Offers in words: each offer's ``summary`` (``12 × CNY 212.50 monthly from
1 Dec 2026``) and the reason of a status ``offer`` decision (``Offer before
the lawyer's letter: instalment plan (…) or fee and interest waiver (…); 65
days overdue, CNY 3,000.00 owed.``), in ``en`` or ``zh-CN``."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from escalation._language import Locale
from escalation.decision import Offer
from escalation.reasons import _format as f
from escalation.reasons.parts import OfferParts

if TYPE_CHECKING:
    from escalation.reasons._render import Renderer

__all__ = ["KIND_WORDS", "offer_sentence", "offer_summary"]

#: What each kind of offer is called, by locale (an offer's `label` comes first).
KIND_WORDS: dict[str, dict[Locale, str]] = {
    "instalment_plan": {"en": "instalment plan", "zh-CN": "分期还款"},
    "extension": {"en": "extension", "zh-CN": "延期还款"},
    "fee_waiver": {"en": "fee and interest waiver", "zh-CN": "减免费息"},
    "settlement": {"en": "settlement", "zh-CN": "一次性结清"},
}


def _percent(share: Decimal) -> str:
    return f"{(share * 100).normalize():f}%"


def offer_summary(offer: Offer, model: Any, locale: Locale) -> str:
    """The offer's figures in one phrase (``model``: the policy's offer, for a settlement's band)."""
    zh = locale == "zh-CN"

    def money(amount: Decimal) -> str:
        return f.money(amount, offer.currency, locale)

    if offer.kind == "instalment_plan":
        plan = offer.instalments
        parts: list[str] = []
        if offer.down_payment:
            parts.append(f"首付{money(offer.down_payment)}" if zh else f"{money(offer.down_payment)} down")
        if plan:
            first, last = plan[0].amount, plan[-1].amount
            start = f.date(plan[0].due, locale)
            tail = ""
            if last != first:
                tail = f"（末期{money(last)}）" if zh else f" (last {money(last)})"
            if zh:
                parts.append(f"每月{money(first)}，共{len(plan)}期{tail}，自{start}起")
            else:
                parts.append(f"{len(plan)} × {money(first)}{tail} monthly from {start}")
        return ("，之后" if zh else ", then ").join(parts)
    due = f.date(offer.due_date, locale) if offer.due_date is not None else None
    if offer.kind == "extension":
        if zh:
            return f"于{due}前还清逾期款{money(offer.pay)}"
        return f"pay the {money(offer.pay)} overdue by {due}"
    if offer.kind == "fee_waiver":
        if zh:
            return f"减免费息{money(offer.waived)}，还款{money(offer.pay)}" + (f"，于{due}前" if due else "")
        text = f"waive {money(offer.waived)} of fees and interest, pay {money(offer.pay)}"
        return text + (f" by {due}" if due else "")
    high = offer.pay_up_to if offer.pay_up_to is not None else offer.pay
    band = getattr(model, "discount", None)
    low_share, high_share = (band.min, band.max) if band is not None else (Decimal(0), Decimal(0))
    shares = _percent(high_share)
    if low_share != high_share:
        shares = f"{_percent(low_share)}–{shares}"
    amounts = money(offer.pay) if high == offer.pay else f"{money(offer.pay)}–{money(high)}"
    if zh:
        return f"一次性结清{amounts}（减免{shares}），于{due}前"
    return f"settle in full for {amounts} ({shares} off) by {due}"


def offer_sentence(r: Renderer, parts: OfferParts) -> str:
    """The sentence for an offer that comes before ``parts.tier``."""
    models = {o.model.id: o.model for o in r.policy.offers}
    named = []
    for offer in parts.offers:
        model = models.get(offer.id)
        label = (model.labels.get(r.locale) or model.label) if model is not None else None
        name = label or KIND_WORDS[offer.kind][r.locale]
        phrase = offer_summary(offer, model, r.locale)
        named.append(f"{name}（{phrase}）" if r.zh else f"{name} ({phrase})")
    step = r.label(parts.tier.model.id)
    if r.zh:
        return f"{step}前先提出还款方案：{'或'.join(named)}；{r.account()}。"
    return f"Offer before the {step}: {' or '.join(named)}; {r.account()}."
