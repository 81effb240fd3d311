"""Facts from record dates over columns: the limitation period and the
Regulation F validation period (helpers of :mod:`._facts`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from escalation._calendar import add_years, business_days_after
from escalation.backends.columnar._column import Column, _in
from escalation.backends.columnar._history import events_of
from escalation.record import Channel, Outcome

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["interrupted", "time_barred", "validation_period"]

_EPOCH = dt.date(1970, 1, 1)


_ENDS: dict[tuple[int, int], int] = {}  # (start day, years) → the day the period ends


def _plus(start: int, years: int) -> int:
    """``start`` + ``years`` calendar years, as a day number (memoised across batches)."""
    end = _ENDS.get((start, years))
    if end is None:
        if len(_ENDS) > 1 << 20:  # bounded: a portfolio's payment days span a few years
            _ENDS.clear()
        end = _ENDS[(start, years)] = (add_years(_EPOCH + dt.timedelta(days=start), years) - _EPOCH).days
    return end


def time_barred(
    policy: Policy,
    jurisdiction: tuple[np.ndarray, list[str]],
    today: np.ndarray,
    paid: np.ndarray,
    paid_known: np.ndarray,
) -> Column:
    """``jurisdiction`` = (each account's index into the distinct values, -1: none; the values)."""
    n = len(today)
    limitation = policy.header.limitation
    if limitation is None or "last_payment_at" not in limitation.start:
        # the other start dates live in `rest`: those accounts go to the reference engine
        return Column("bool", np.zeros(n, bool), np.zeros(n, bool))
    out = np.zeros(n, bool)
    rows = np.flatnonzero(paid_known)
    by, default = limitation.by_jurisdiction, limitation.years
    codes, words = jurisdiction
    span = np.asarray([by.get(j or "", default) for j in [*words, None]], dtype=np.int64)  # [-1]: none
    years = span[codes[rows]]
    # one end per distinct (start day, years): one key per pair
    width = int(years.max()) + 1 if len(years) else 1
    keys, inverse = np.unique(paid[rows] * width + years, return_inverse=True)
    ends = [
        _plus(start, count)
        for start, count in zip((keys // width).tolist(), (keys % width).tolist(), strict=True)
    ]
    out[rows] = today[rows] >= np.asarray(ends, dtype=np.int64)[inverse.reshape(-1)]
    return Column("bool", out, paid_known.copy())


def validation_period(
    zone_code: np.ndarray, tables: list[Any], today: np.ndarray, sent: np.ndarray, known: np.ndarray
) -> Column:
    """``zone_code``: each account's index into ``tables`` (-1: not a zone)."""
    n = len(today)
    out = np.zeros(n, bool)
    for z, table in enumerate(tables if known.any() else []):
        mine = (zone_code == z) & known
        if not mine.any():
            continue
        days, inverse = np.unique(table.local_day(sent[mine]), return_inverse=True)
        ends = [
            (business_days_after(_EPOCH + dt.timedelta(days=day), 5, "US") - _EPOCH).days + 30
            for day in days.tolist()
        ]
        out[mine] = today[mine] <= np.asarray(ends, dtype=np.int64)[inverse]
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
    channels, outcomes = [c.value for c in Channel], [o.value for o in Outcome]
    tier_ids = [t.model.id for t in policy.tiers]
    if any(a not in tier_ids for flt in limitation.interrupted_by for a in flt.actions):
        return rows  # an action outside the ladder: not among the event codes
    # only the barred accounts' events can interrupt
    mine = events_of(events[0], np.flatnonzero(rows))
    acc, day, outbound, channel, outcome, action = (np.take(e, mine) for e in events)
    match = np.zeros(len(acc), bool)
    for flt in limitation.interrupted_by:
        m = np.ones(len(acc), bool)
        if flt.direction != "any":
            m &= outbound if flt.direction == "outbound" else ~outbound
        if flt.channels:
            m &= _in(channel, [channels.index(c.value) for c in flt.channels], len(channels))
        if flt.outcomes:
            m &= _in(outcome, [outcomes.index(o.value) for o in flt.outcomes], len(outcomes))
        if flt.actions:
            m &= _in(action, [tier_ids.index(a) for a in flt.actions], len(tier_ids))
        if flt.tags:
            tagged = [i for i, t in enumerate(policy.tiers) if set(flt.tags) & set(t.model.tags)]
            m &= _in(action, tagged, len(tier_ids))
        match |= m
    hits = np.flatnonzero(match)
    changes: dict[int, list[int]] = {}
    for i, d in zip(acc[hits].tolist(), day[hits].tolist(), strict=True):
        changes.setdefault(i, []).append(d)
    for i, found in changes.items():
        years = limitation.by_jurisdiction.get(jurisdiction[i] or "", limitation.years)
        start = int(paid[i])
        expiry = _plus(start, years)
        for d in found:  # in time order
            if start < d < expiry:
                start, expiry = d, _plus(d, years)
        barred.values[i] = today[i] >= expiry
    return np.zeros(n, bool)
