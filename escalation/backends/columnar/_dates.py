"""Facts from record dates over columns: the limitation period and the
Regulation F validation period (helpers of :mod:`._facts`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from escalation._calendar import add_years, business_days_after
from escalation.backends.columnar._column import Column
from escalation.record import Channel, Outcome

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["interrupted", "time_barred", "validation_period"]

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


def interrupted(
    policy: Policy,
    barred: Column,
    jurisdiction: np.ndarray,
    paid: np.ndarray,
    today: np.ndarray,
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Re-judge, in ``barred``, the accounts barred without interruptions with
    the policy's ``limitation.interrupted_by`` (:func:`escalation._notices.time_barred`):
    a matching event dated after the period's start and before it ran out
    restarts it from the event's local day. ``events`` = (account, local day,
    outbound, channel, outcome, tier index), sorted by account then instant.
    Returns the accounts this cannot judge (a filter naming a non-tier action)."""
    limitation = policy.header.limitation
    n = len(today)
    rows: np.ndarray = barred.values.astype(bool) & barred.known
    if limitation is None or not limitation.interrupted_by or not rows.any():
        return np.zeros(n, bool)
    acc, day, outbound, channel, outcome, action = events
    channels, outcomes = [c.value for c in Channel], [o.value for o in Outcome]
    tier_ids = [t.model.id for t in policy.tiers]
    match = np.zeros(len(acc), bool)
    for flt in limitation.interrupted_by:
        if any(a not in tier_ids for a in flt.actions):
            return rows  # an action outside the ladder: not among the event codes
        m = rows[acc].copy()
        if flt.direction != "any":
            m &= outbound if flt.direction == "outbound" else ~outbound
        if flt.channels:
            m &= np.isin(channel, [channels.index(c.value) for c in flt.channels])
        if flt.outcomes:
            m &= np.isin(outcome, [outcomes.index(o.value) for o in flt.outcomes])
        if flt.actions:
            m &= np.isin(action, [tier_ids.index(a) for a in flt.actions])
        if flt.tags:
            tagged = [i for i, t in enumerate(policy.tiers) if set(flt.tags) & set(t.model.tags)]
            m &= np.isin(action, tagged)
        match |= m
    memo: dict[tuple[int, int], int] = {}

    def plus(start: int, years: int) -> int:
        end = memo.get((start, years))
        if end is None:
            end = memo[(start, years)] = (add_years(_EPOCH + dt.timedelta(days=start), years) - _EPOCH).days
        return end

    hits = np.flatnonzero(match)
    changes: dict[int, list[int]] = {}
    for i, d in zip(acc[hits].tolist(), day[hits].tolist(), strict=True):
        changes.setdefault(i, []).append(d)
    for i, found in changes.items():
        years = limitation.by_jurisdiction.get(jurisdiction[i] or "", limitation.years)
        start = int(paid[i])
        expiry = plus(start, years)
        for d in found:  # in time order
            if start < d < expiry:
                start, expiry = d, plus(d, years)
        barred.values[i] = today[i] >= expiry
    return np.zeros(n, bool)
