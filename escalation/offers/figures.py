"""The figures of an offer, in whole minor units of the account's currency.

Every amount is an ``int`` of minor units here (``CNY 212.50`` is ``21250``);
shares are exact :class:`~decimal.Decimal` fractions and each product is
rounded once, to a whole minor unit, in a stated direction. No float is
involved, so the same account gives the same figures on every platform."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

__all__ = [
    "Figures",
    "add_months",
    "extension",
    "fee_waiver",
    "instalment_plan",
    "monthly_dues",
    "settlement",
    "share_of",
]


@dataclass(frozen=True, slots=True)
class Figures:
    """An offer's figures in minor units: the amount it is on, the least paid
    (and, for a settlement, the most), what is waived, the down payment, the
    instalments ``(due, amount)`` and the due date."""

    amount: int
    pay: int
    pay_up_to: int | None = None
    waived: int = 0
    down_payment: int | None = None
    instalments: tuple[tuple[dt.date, int], ...] = ()
    due_date: dt.date | None = None


def share_of(amount: int, share: Decimal, *, up: bool) -> int:
    """``share`` of ``amount`` minor units, rounded up (``up``) or down to a whole unit."""
    return int((Decimal(amount) * share).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved ``months`` calendar months ahead (the 31st becomes the month's last day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@functools.lru_cache(maxsize=4096)
def monthly_dues(first_due: dt.date, count: int) -> tuple[dt.date, ...]:
    """``count`` monthly due dates from ``first_due`` (the same for every
    account offered a plan on the same day: made once)."""
    return tuple(add_months(first_due, i) for i in range(count))


def instalment_plan(
    amount: int, *, max_months: int, min_instalment: int, down_share: Decimal, first_due: dt.date
) -> Figures:
    """Repay ``amount``: a down payment (``down_share``, rounded up), then
    monthly instalments from ``first_due``. The number of instalments is the
    largest that keeps each one at least ``min_instalment`` and is at most
    ``max_months`` (at least one: a rest below the minimum is paid as one
    instalment); each is the rest divided evenly, rounded down, and the last
    absorbs the remainder, so they sum to the rest exactly."""
    down = min(share_of(amount, down_share, up=True), amount)
    rest = amount - down
    plan: tuple[tuple[dt.date, int], ...] = ()
    if rest > 0:
        count = max(1, min(max_months, rest // max(min_instalment, 1)))
        base = rest // count
        amounts = [base] * (count - 1) + [rest - base * (count - 1)]
        plan = tuple(zip(monthly_dues(first_due, count), amounts, strict=True))
    return Figures(amount=amount, pay=amount, down_payment=down if down_share else None, instalments=plan)


def extension(amount: int, due: dt.date) -> Figures:
    """Pay the arrears ``amount`` by the later date ``due``."""
    return Figures(amount=amount, pay=amount, due_date=due)


def fee_waiver(balance: int, fees: int, share: Decimal, due: dt.date | None) -> Figures:
    """Waive at most ``share`` of ``fees`` (rounded down); the rest of the balance is paid."""
    waived = share_of(max(fees, 0), share, up=False)
    return Figures(amount=balance, pay=balance - waived, waived=waived, due_date=due)


def settlement(balance: int, low: Decimal, high: Decimal, due: dt.date) -> Figures:
    """Settle ``balance`` for at least the balance less the largest discount
    ``high`` and at most less the smallest ``low`` (discounts rounded down:
    the customer never pays less than the band allows)."""
    least = balance - share_of(balance, high, up=False)
    most = balance - share_of(balance, low, up=False)
    return Figures(amount=balance, pay=least, pay_up_to=most, waived=balance - least, due_date=due)
