"""Labels: what a tier, hold or guard is called in a locale — its
``labels[locale]``, its ``label``, else a fallback a person can still read
(a tier's id as words; a hold's reason; a guard's kind and parameters, or
the first clause of its reason)."""

from __future__ import annotations

import re

from escalation._language import Locale
from escalation.guards import ConsentGuard, ContactHoursGuard, GuardBase
from escalation.policy.schema import Hold, Tier
from escalation.reasons._words import CHANNEL, as_words

__all__ = ["clip", "guard_label", "hold_label", "tier_label"]

_CLAUSE = re.compile(r"[;:(]| — ")
_LIMIT = 90


def _pick(model: Tier | Hold | GuardBase, locale: Locale) -> str | None:
    return model.labels.get(locale) or model.label


def tier_label(tier: Tier, locale: Locale) -> str:
    """``call`` / ``电话``; without a label, the id as words (``sms reminder``)."""
    return _pick(tier, locale) or as_words(tier.id)


def hold_label(hold: Hold, locale: Locale) -> str:
    """The hold's label (may hold ``{fact}`` placeholders), else its reason."""
    return _pick(hold, locale) or hold.reason


def guard_label(guard: GuardBase, locale: Locale) -> str:
    """The guard's label; without one, contact hours and consent say their
    parameters, any other kind the first clause of its reason."""
    picked = _pick(guard, locale)
    if picked:
        return picked
    if isinstance(guard, ContactHoursGuard):
        hours = f"{guard.from_}–{guard.to}"
        return f"联系时间{hours}" if locale == "zh-CN" else f"contact hours {hours}"
    if isinstance(guard, ConsentGuard):
        return "客户拒绝的渠道" if locale == "zh-CN" else "a channel the customer refused"
    return clip(guard.reason)


def clip(text: str) -> str:
    """The first clause of ``text`` as words, at most ~90 characters."""
    text = " ".join(as_words(text).split())
    first = _CLAUSE.split(text, maxsplit=1)[0].strip().rstrip(",.")
    if len(first) <= _LIMIT:
        return first
    cut = first[:_LIMIT].rsplit(" ", 1)[0].rstrip(",")
    return cut + "…"


def channel_noun(channel: str, locale: Locale) -> str:
    """What an action on ``channel`` is called: ``call`` / ``电话``."""
    entry = CHANNEL.get(channel)
    if entry is None:
        return as_words(channel)
    return entry[2] if locale == "zh-CN" else entry[0]
