"""Hypothesis strategies shared by property and differential tests.

Records are generated *for a policy*: days overdue and amounts sit on the
policy's own thresholds ±1, histories are made of the policy's tier actions,
and blocking flags are rare so that deep tiers are reached."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from escalation import Policy
from escalation._currencies import MINOR_UNITS
from escalation.policy._expr import comparisons

ZONES = ["Asia/Shanghai", "America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Dublin"]
OUTCOMES = [
    "sent", "delivered", "undeliverable", "failed", "busy", "not_in_service", "no_answer",
    "voicemail", "conversation", "wrong_party", "promise_to_pay", "refused", "dispute", "payment",
    "returned",
]  # fmt: skip
FLAGS = [
    "dispute",
    "cease_communication",
    "bankruptcy",
    "deceased",
    "hardship",
    "breathing_space",
    "vulnerable",
]
BASE = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def thresholds(policy: Policy, fact: str) -> list[Decimal]:
    """Every constant the policy compares ``fact`` with."""
    found: set[Decimal] = set()
    conditions = [t.when for t in policy.tiers] + [h.when for h in policy.holds]
    conditions += [g.when for g in policy.guards if g.when is not None]
    for compiled in conditions:
        for name, _, constant in comparisons(compiled):
            if name == fact and isinstance(constant, int | Decimal) and not isinstance(constant, bool):
                found.add(Decimal(constant))
    return sorted(found)


def near(values: list[Decimal], low: int, high: int) -> st.SearchStrategy[int]:
    """Integers at each threshold ±1, or anywhere in [low, high]."""
    points = sorted({int(v) + d for v in values for d in (-1, 0, 1) if low <= int(v) + d <= high})
    return st.one_of(st.sampled_from(points), st.integers(low, high)) if points else st.integers(low, high)


@st.composite
def instants(draw: st.DrawFn) -> dt.datetime:
    """An evaluation instant within a fortnight, any hour (quiet hours get hit)."""
    minutes = draw(st.integers(0, 14 * 24 * 60))
    offset = draw(st.sampled_from([0, 8, -5, 1]))
    return (BASE + dt.timedelta(minutes=minutes)).astimezone(dt.timezone(dt.timedelta(hours=offset)))


@st.composite
def records(draw: st.DrawFn, policy: Policy, now: dt.datetime) -> dict[str, Any]:
    """One account record valid for ``policy`` at ``now``."""
    places = MINOR_UNITS[policy.header.currency]
    days = draw(near(thresholds(policy, "days_overdue"), 0, 400))
    balance_units = draw(near(thresholds(policy, "balance"), 0, 60_000))
    overdue_units = draw(near(thresholds(policy, "amount_overdue"), 0, 60_000))
    balance = Decimal(max(balance_units, overdue_units))
    amount = Decimal(overdue_units)
    tiers = [t.model for t in policy.tiers]
    events = []
    for _ in range(draw(st.integers(0, 14))):
        tier = draw(st.sampled_from([*tiers, None]))  # type: ignore[list-item]
        ago = draw(st.integers(0, (days + 3) * 24 * 60))
        at = now - dt.timedelta(minutes=ago)
        channel = (
            draw(st.sampled_from(list(tier.channel_order)))
            if tier
            else draw(st.sampled_from(["phone", "sms", "email"]))
        )
        event: dict[str, Any] = {
            "at": at.isoformat(),
            "action": tier.id if tier else None,
            "channel": channel,
            "outcome": draw(st.sampled_from(OUTCOMES)),
            "direction": draw(st.sampled_from(["outbound"] * 5 + ["inbound"])),
            "address": draw(st.sampled_from(["+1-555-0100", "+1-555-0101", None])),
        }
        if draw(st.integers(0, 12)) == 0:
            event["consent_until"] = (at + dt.timedelta(days=draw(st.integers(0, 10)))).isoformat()
        if draw(st.integers(0, 15)) == 0:
            event["misdirected"] = True
        if event["outcome"] == "payment" and draw(st.integers(0, 3)) > 0:
            units = draw(st.sampled_from([1, int(amount) or 1, int(amount) + 1, max(1, int(amount) - 1)]))
            event["amount"] = str(Decimal(units).quantize(Decimal(1).scaleb(-places)))
        events.append(event)
    record: dict[str, Any] = {
        "id": f"H-{draw(st.integers(0, 10**6))}",
        "currency": policy.header.currency,
        "amount_overdue": str(amount.quantize(Decimal(1).scaleb(-places))),
        "balance": str(balance.quantize(Decimal(1).scaleb(-places))),
        "days_overdue": days,
        "history": events,
    }
    if draw(st.booleans()):
        record["timezone"] = draw(st.sampled_from(ZONES))
    if draw(st.integers(0, 3)) == 0:
        record["timezones"] = draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True))
    # blocking flags biased off, so deep tiers are reached
    record["flags"] = (
        draw(st.lists(st.sampled_from(FLAGS), max_size=2, unique=True))
        if draw(st.integers(0, 5)) == 0
        else []
    )
    if draw(st.integers(0, 4)) == 0:
        record["opt_out"] = draw(
            st.lists(st.sampled_from(["sms", "phone", "email", "letter"]), max_size=2, unique=True)
        )
    local_today = now.date()
    if draw(st.integers(0, 6)) == 0:
        made = now - dt.timedelta(days=draw(st.integers(0, 20)))
        record["promise_to_pay"] = {
            "amount": record["amount_overdue"],
            "due_date": (local_today + dt.timedelta(days=draw(st.integers(-10, 10)))).isoformat(),
            "made_at": made.isoformat(),
        }
    if draw(st.integers(0, 6)) == 0:
        record["payment_plan"] = {
            "status": draw(st.sampled_from(["active", "broken", "completed"])),
            "next_due_date": (local_today + dt.timedelta(days=draw(st.integers(-15, 15)))).isoformat(),
        }
    if draw(st.integers(0, 2)) == 0:
        record["last_payment_at"] = (local_today - dt.timedelta(days=draw(st.integers(1, 3000)))).isoformat()
    if draw(st.integers(0, 4)) == 0:
        sent = now - dt.timedelta(days=draw(st.integers(0, 60)))
        record["validation_notice_sent_at"] = sent.isoformat()
    return record


@st.composite
def cases(draw: st.DrawFn, policy: Policy) -> tuple[dict[str, Any], dt.datetime]:
    """(record, now) pairs for ``policy``."""
    now = draw(instants())
    return draw(records(policy, now)), now
