"""The record's promise to pay over columns (a helper of :mod:`._facts`):
``promise_active``, ``promise_kept``, ``promise_broken``,
``promise_shortfall`` and ``promise_to_pay.amount``, with
:func:`escalation._money.promise_state`'s semantics."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from escalation.backends.columnar._column import Column

if TYPE_CHECKING:
    from collections.abc import Callable

    from escalation.policy import Policy

__all__ = ["Promise", "promise_facts"]

_BIG = 2**52  # float sums are exact below this


class Promise:
    """Per account: whether it has a promise, when it was made, and whether it is broken now."""

    __slots__ = ("broken", "columns", "fallback", "has", "made")

    def __init__(
        self, has: np.ndarray, made: np.ndarray, broken: np.ndarray, fallback: np.ndarray,
        columns: dict[str, Column],
    ) -> None:  # fmt: skip
        self.has, self.made, self.broken, self.fallback, self.columns = has, made, broken, fallback, columns


def promise_facts(
    policy: Policy,
    now_us: int,
    amount: tuple[np.ndarray, np.ndarray, np.ndarray],
    due: np.ndarray,
    made: np.ndarray,
    start_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
    payments: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> Promise:
    """``amount`` = (units of 1/10,000, present, fits); ``start_of(days, rows)`` = µs
    of local day starts; ``payments`` = the payment events' (account, instant,
    amount, amount known), sorted by account then instant."""
    value, has, fits = amount
    n = len(has)
    acc, stamp, paid_amount, paid_ok = payments
    rules = policy.header.promise
    fallback = has & ~fits
    fallback |= has & (made > now_us)
    deadline = start_of(due + (rules.grace or 0) + 1, has)
    window = has[acc] & (stamp >= made[acc]) & (stamp < deadline[acc]) & (stamp <= now_us)
    unknown = np.bincount(acc[window & ~paid_ok], minlength=n) > 0
    paid_f = np.bincount(acc[window & paid_ok], weights=paid_amount[window & paid_ok], minlength=n)
    fallback |= np.abs(paid_f) > _BIG
    paid = paid_f.astype(np.int64)
    share = 1 - Fraction(rules.tolerance)  # target = amount × (1 − tolerance), exactly
    kept = np.zeros(n, bool)
    rows = np.flatnonzero(has & ~fallback)
    if len(rows):
        lhs = paid[rows].astype(object) * share.denominator
        rhs = value[rows].astype(object) * share.numerator
        kept[rows] = np.asarray(lhs >= rhs, dtype=bool)
    unsure = has & ~kept & unknown
    broken = has & ~kept & ~unknown & (now_us >= deadline)
    short = np.where(kept, np.maximum(0, value - paid), value - paid)
    known = ~unsure
    columns = {
        "promise_active": Column("bool", has & ~kept & ~broken, np.ones(n, bool)),
        "promise_kept": Column("bool", kept, known),
        "promise_broken": Column("bool", broken, known),
        "promise_shortfall": Column("money", short, has & known),
        "promise_to_pay.amount": Column("money", value, has),
    }
    return Promise(has, made, broken, fallback, columns)
