"""Payment plans as history: an agreed plan's terms (instalments with due
dates and amounts, from ``agreed_at``) against the payments in the history.

Payments made on or after the local day ``agreed_at`` are applied to the
instalments in order (cumulatively). Instalment *k* is *missed* once the end
of its due date plus the policy's ``promise.grace`` has passed and the
payments do not reach the sum of instalments 1..k. Facts (only for a plan with
terms; missing otherwise):

* ``plan_status`` — ``completed`` (every instalment paid), ``missed`` (one is
  missed) or ``current``;
* ``plan_missed_instalment`` — the number (1-based) of the first missed one;
* ``days_since_missed_instalment`` — local days since its due date;
* ``plan_active`` — for a plan with terms: the record says ``active`` and no
  instalment is missed (a broken plan no longer holds collection: the ladder
  re-escalates from its stage); without terms it is the record's ``status``.

A payment without an ``amount`` makes the sums unknown: then nothing is
missed or completed (``plan_status`` is missing) and ``plan_active`` stays the
record's (fail closed: an unknown never lifts a hold)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from escalation.record import Account, HistoryEvent, Outcome, PlanStatus

__all__ = ["plan_facts"]


def plan_facts(
    account: Account, events: Iterable[HistoryEvent], today: dt.date, tz: ZoneInfo, grace_days: int
) -> dict[str, Any]:
    """The plan facts of ``account`` on local day ``today`` (empty without a plan with terms)."""
    plan = account.payment_plan
    if plan is None or not plan.instalments or plan.agreed_at is None:
        return {}
    active = plan.status is PlanStatus.ACTIVE
    paid = Decimal(0)
    for event in events:
        if event.outcome is not Outcome.PAYMENT or event.at.astimezone(tz).date() < plan.agreed_at:
            continue
        if event.amount is None:
            return {}  # the sum is unknown: neither missed nor completed
        paid += event.amount
    owed = Decimal(0)
    for number, instalment in enumerate(plan.instalments, start=1):
        owed += instalment.amount
        if paid >= owed:
            continue
        if (today - instalment.due_date).days > grace_days:
            return {
                "plan_status": "missed",
                "plan_missed_instalment": number,
                "days_since_missed_instalment": (today - instalment.due_date).days,
                "plan_active": False,
            }
        return {"plan_status": "current", "plan_active": active}
    return {"plan_status": "completed", "plan_active": False}
