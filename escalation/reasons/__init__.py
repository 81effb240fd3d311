"""Reasons: one sentence per decision a collector can read aloud, in ``en``
or ``zh-CN``.

The ladder records *why* as :mod:`~escalation.reasons.parts` (the rules and
figures that decided); :func:`render` turns them into a sentence with the
record's figures (amounts in the currency's format, dates in the account's
local time), the policy's labels for tiers, holds and guards, and — for
``wait``, ``none`` and blocked actions — what is missing, in domain words."""

from __future__ import annotations

from escalation._facts import Situation
from escalation._language import LOCALES, Locale
from escalation.policy import Policy
from escalation.reasons._book import book_for
from escalation.reasons._fast import FastRenderer
from escalation.reasons._pieces import guard_detail
from escalation.reasons.parts import Parts

__all__ = ["LOCALES", "Locale", "check_locale", "guard_detail", "render"]


def render(parts: Parts, policy: Policy, sit: Situation, locale: Locale) -> str:
    """The reason sentence for ``parts`` in ``locale``."""
    return FastRenderer(policy, sit, locale, book_for(policy, locale)).render(parts)


def check_locale(locale: str) -> Locale:
    """``locale`` if reasons can be rendered in it (``ValueError`` otherwise)."""
    if locale not in LOCALES:
        raise ValueError(f"unknown locale `{locale}`; choose one of: {', '.join(LOCALES)}")
    return locale
