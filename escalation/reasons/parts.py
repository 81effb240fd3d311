"""What a reason is made of: the ladder records *why* as these parts (the
rules and figures that decided), and :func:`escalation.reasons.render` turns
them into one sentence in a locale. Nothing here is text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from escalation._language import Span
from escalation.decision import Offer
from escalation.guards import GuardVerdict
from escalation.policy import HoldRule, TierRule
from escalation.record import Channel

__all__ = [
    "ActParts",
    "AfterBelow",
    "DayFull",
    "HoldParts",
    "Interval",
    "NoneParts",
    "OfferParts",
    "Parts",
    "WaitParts",
]


@dataclass(frozen=True, slots=True)
class Interval:
    """The tier's own ``repeat.every`` has not passed since its last action."""

    every: Span
    last: dt.datetime


@dataclass(frozen=True, slots=True)
class AfterBelow:
    """The tier's ``wait`` after the last counting action of the tier below."""

    below: TierRule
    wait: Span
    last: dt.datetime


@dataclass(frozen=True, slots=True)
class DayFull:
    """``limits.actions_per_day`` is used up today."""

    taken: int
    limit: int


Pending = Interval | AfterBelow | DayFull | GuardVerdict
HeldBack = tuple[TierRule, Channel, tuple[GuardVerdict, ...]]


@dataclass(frozen=True, slots=True)
class HoldParts:
    """A hold applies (until ``until``, when known)."""

    hold: HoldRule
    until: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ActParts:
    """Act on ``tier`` by ``channel``; ``held_back``: more severe tiers and
    preferred channels a guard blocked on the way."""

    tier: TierRule
    channel: Channel
    held_back: tuple[HeldBack, ...] = ()


@dataclass(frozen=True, slots=True)
class WaitParts:
    """``tier`` becomes permitted by ``channel`` at ``when``, once ``pending`` clear."""

    tier: TierRule
    channel: Channel
    when: dt.datetime
    pending: tuple[Pending, ...]


@dataclass(frozen=True, slots=True)
class NoneParts:
    """Nothing to do: tiers blocked until an event (``blocked``), tiers used
    up (``exhausted``), and the tiers next in line (``upcoming``, mildest
    first), whose unmet conditions and steps say what is still needed."""

    blocked: tuple[tuple[TierRule, tuple[GuardVerdict, ...]], ...] = ()
    exhausted: tuple[TierRule, ...] = ()
    upcoming: tuple[TierRule, ...] = ()


@dataclass(frozen=True, slots=True)
class OfferParts:
    """Make one of ``offers`` before ``tier`` (the tier's ``offer_first``)."""

    tier: TierRule
    offers: tuple[Offer, ...]


Parts = HoldParts | ActParts | WaitParts | NoneParts | OfferParts
