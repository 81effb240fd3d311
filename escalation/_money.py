"""Money in the history: payments, and whether a promise to pay was kept.

A promise is *kept* when the payments made from its ``made_at`` up to the end
of its due date plus the policy's grace sum to at least its amount, less the
policy's tolerance; once that deadline has passed without it, the promise is
*broken*. A payment recorded without an ``amount`` makes the sum unknown:
then the promise is neither kept nor broken (fail closed: an unknown is never
the ground for a more severe action) and stays active until its deadline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from escalation._calendar import start_of_day
from escalation.record import Account, HistoryEvent, Outcome

__all__ = ["PromiseState", "money_facts", "promise_state"]

_DAY = dt.timedelta(days=1)
_PAYMENT, _PROMISE = Outcome.PAYMENT, Outcome.PROMISE_TO_PAY


@dataclass(frozen=True, slots=True)
class PromiseState:
    """The record's promise to pay at ``now``: kept, broken or neither (active);
    ``None`` for kept/broken/shortfall when a payment's amount is unknown."""

    kept: bool | None
    broken: bool | None
    shortfall: Decimal | None
    deadline: dt.datetime

    @property
    def active(self) -> bool:
        """Neither kept nor broken yet: the customer still has time."""
        return self.kept is not True and self.broken is not True


def promise_state(
    account: Account,
    payments: Sequence[HistoryEvent],
    now: dt.datetime,
    tz: ZoneInfo,
    tolerance: Decimal,
    grace_days: int,
) -> PromiseState | None:
    """The state of ``account.promise_to_pay`` (``None`` without one)."""
    promise = account.promise_to_pay
    if promise is None:
        return None
    deadline = start_of_day(promise.due_date + (grace_days + 1) * _DAY, tz)
    paid = Decimal(0)
    unknown = False
    for event in payments:
        if promise.made_at <= event.at < deadline and event.at <= now:
            if event.amount is None:
                unknown = True
            else:
                paid += event.amount
    target = promise.amount * (1 - tolerance)
    if paid >= target:
        return PromiseState(True, False, max(Decimal(0), promise.amount - paid), deadline)
    if unknown:
        return PromiseState(None, None, None, deadline)
    broken = now >= deadline
    return PromiseState(False, broken, promise.amount - paid, deadline)


def money_facts(
    account: Account,
    payments: Sequence[HistoryEvent],
    promises: Sequence[dt.datetime],
    cycle_start: dt.datetime,
    now: dt.datetime,
    tz: ZoneInfo,
    tolerance: Decimal,
    grace_days: int,
) -> dict[str, Any]:
    """The payment and promise facts (``payments`` oldest first; ``promises``
    the instants of this cycle's ``promise_to_pay`` outcomes)."""
    values: dict[str, Any] = {}
    in_cycle = [p for p in payments if p.at >= cycle_start]
    if all(p.amount is not None for p in in_cycle):
        values["paid_in_cycle"] = sum((p.amount for p in in_cycle if p.amount is not None), Decimal(0))
    today = now.astimezone(tz).date()
    last_day = account.last_payment_at
    if payments:
        latest = payments[-1]
        if latest.amount is not None:
            values["last_payment_amount"] = latest.amount
        event_day = latest.at.astimezone(tz).date()
        last_day = event_day if last_day is None else max(last_day, event_day)
    if last_day is not None:
        values["days_since_payment"] = (today - last_day).days

    state = promise_state(account, payments, now, tz, tolerance, grace_days)
    values["promise_active"] = state is not None and state.active
    if state is None:
        values["promise_kept"] = values["promise_broken"] = False
    else:
        if state.kept is not None:
            values["promise_kept"] = state.kept
        if state.broken is not None:
            values["promise_broken"] = state.broken
        if state.shortfall is not None:
            values["promise_shortfall"] = state.shortfall

    # Earlier promises (history outcomes carry no amount): kept by a payment after them.
    current = account.promise_to_pay
    broken = 0
    for made in promises:
        if current is not None and made >= current.made_at:
            continue  # the record's own promise, judged above with its amount
        if any(p.at > made for p in payments):
            continue
        broken += 1
    if state is not None and state.broken and current is not None and current.made_at >= cycle_start:
        broken += 1
    values["broken_promises"] = broken
    return values
