"""Agency placement: whether an account is placed with a collection agency,
with which one and for how long — read from the history.

A ``place`` tier's counting action (its agency is the tier's ``agency``)
places the account; a later counting action of a ``recall`` tier ends it.
Placement is not bound to the delinquency cycle: an account stays with its
agency until it is recalled. Facts: ``placed`` (always known), and while
placed ``placed_with`` (the agency's id) and ``days_placed`` (local calendar
days since the placement; 0 on its day). Contacts the agency makes are history
events like the lender's own (``actor`` names who made them), so every
frequency limit counts them together."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from escalation.record import Direction, HistoryEvent, Outcome

if TYPE_CHECKING:
    from escalation.policy import Policy, TierRule

__all__ = ["agency_of", "placement_facts"]


def placement_facts(
    policy: Policy, events: Iterable[HistoryEvent], today: dt.date, tz: ZoneInfo
) -> dict[str, Any]:
    """``placed``, and while placed ``placed_with`` and ``days_placed``
    (``events`` oldest first)."""
    kinds = {t.model.id: t.model for t in policy.tiers if t.model.kind != "contact"}
    if not kinds:
        return {"placed": False}
    agency: str | None = None
    since: dt.datetime | None = None
    for event in events:
        tier = kinds.get(event.action or "")
        if tier is None or event.direction is not Direction.OUTBOUND:
            continue
        counting = tier.counting_outcomes
        made = Outcome.SENT in counting if event.outcome is None else event.outcome in counting
        if not made:
            continue
        if tier.kind == "place":
            agency, since = tier.agency, event.at
        else:
            agency, since = None, None
    if agency is None or since is None:
        return {"placed": False}
    return {
        "placed": True,
        "placed_with": agency,
        "days_placed": (today - since.astimezone(tz).date()).days,
    }


def agency_of(tier: TierRule, values: dict[str, Any]) -> str | None:
    """The agency a decision to take ``tier`` concerns: a ``place`` tier's own,
    the one holding the account for a ``recall``, else none."""
    if tier.model.kind == "place":
        return tier.model.agency
    if tier.model.kind == "recall":
        held = values.get("placed_with")
        return held if isinstance(held, str) else None
    return None
