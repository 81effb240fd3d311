"""Facts from record dates over columns: the limitation period and the
Regulation F validation period (helpers of :mod:`._facts`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from escalation._calendar import add_years, business_days_after
from escalation.backends.columnar._column import Column

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["time_barred", "validation_period"]

_EPOCH = dt.date(1970, 1, 1)


def time_barred(
    policy: Policy, jurisdiction: np.ndarray, today: np.ndarray, paid: np.ndarray, paid_known: np.ndarray
) -> Column:
    n = len(today)
    limitation = policy.header.limitation
    if limitation is None or "last_payment_at" not in limitation.start:
        # the other start dates live in `rest`: those accounts go to the reference engine
        return Column("bool", np.zeros(n, bool), np.zeros(n, bool))
    out = np.zeros(n, bool)
    memo: dict[tuple[int, int], int] = {}
    for i in np.flatnonzero(paid_known).tolist():
        years = limitation.by_jurisdiction.get(jurisdiction[i] or "", limitation.years)
        key = (int(paid[i]), years)
        ends = memo.get(key)
        if ends is None:
            day = add_years(_EPOCH + dt.timedelta(days=key[0]), years)
            ends = memo[key] = (day - _EPOCH).days
        out[i] = today[i] >= ends
    return Column("bool", out, paid_known.copy())


def validation_period(
    names: np.ndarray, tables: dict[str, Any], today: np.ndarray, sent: np.ndarray, known: np.ndarray
) -> Column:
    n = len(today)
    out = np.zeros(n, bool)
    memo: dict[int, int] = {}
    for name, table in tables.items():
        mine = (names == name) & known
        days = table.local_day(sent[mine])
        ends = np.empty(len(days), np.int64)
        for j, day in enumerate(days.tolist()):
            end = memo.get(day)
            if end is None:
                receipt = business_days_after(_EPOCH + dt.timedelta(days=day), 5, "US")
                end = memo[day] = (receipt - _EPOCH).days + 30
            ends[j] = end
        out[mine] = today[mine] <= ends
    return Column("bool", out, known.copy())
