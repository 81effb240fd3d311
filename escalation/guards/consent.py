"""``consent``: never use a channel the customer opted out of."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

from escalation.guards._base import EventMatcher, GuardBase, GuardKind, GuardVerdict, Truth
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["KIND", "ConsentGuard"]


class ConsentGuard(GuardBase):
    """Never use a channel the customer opted out of."""

    kind: Literal["consent"]


def check(
    rule: GuardRule,
    guard: ConsentGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    matcher: EventMatcher,
) -> GuardVerdict:
    """Blocked on a channel in ``opt_out``; only renewed consent lifts it."""
    opted = channel.value in sit.values["opt_out"]
    note = f"the customer opted out of {channel.value}" if opted else ""
    return GuardVerdict(rule, opted, None, {"opt_out": sorted(sit.values["opt_out"])}, note)


KIND = GuardKind("consent", ConsentGuard, check, doc="consent")
