"""``block``: block the listed channels/actions while a condition holds
(until a record date, when one is named)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

from escalation._calendar import start_of_day
from escalation.guards._base import (
    DAY,
    EventMatcher,
    GuardBase,
    GuardKind,
    GuardVerdict,
    Truth,
    figures_wanted,
)
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["KIND", "BlockGuard"]


class BlockGuard(GuardBase):
    """Block while a condition holds."""

    kind: Literal["block"]
    when: str
    until: str | None = None


def check(
    rule: GuardRule,
    guard: BlockGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    matcher: EventMatcher,
) -> GuardVerdict:
    """Blocked while ``when`` holds; until the ``until`` record date if it is still ahead."""
    when = rule.conditions["when"]
    holds = truth(f"guard:{guard.id}:when")
    if not holds and not figures_wanted(sit):
        return GuardVerdict(rule, False)
    values = sit.values
    facts = {name: values.get(name) for name in when.fact_order}  # `facts`, sorted
    if not holds:
        return GuardVerdict(rule, False, facts=facts)
    until: dt.datetime | None = None
    if guard.until is not None:
        value = sit.record_date(guard.until)
        if isinstance(value, dt.datetime):
            until = value
        elif isinstance(value, dt.date):
            until = start_of_day(value + DAY, sit.tz)
        if until is not None and until <= at:
            until = None  # the date has passed yet the condition still holds
    return GuardVerdict(rule, True, until, facts, f"`{when.source}` holds")


KIND = GuardKind("block", BlockGuard, check, doc="block", conditions=("when",), record_dates=("until",))
