"""Each tier's accounts and the instant each is ready (helpers of :mod:`._ladder`):
the tier's conditions, ``requires``, ``repeat`` counts and intervals, ``wait``
and the daily action limit, over the accounts still open when the tiers are
considered. Acting on a tier only closes accounts, so the ladder narrows these
rows to the ones still open when it reaches each tier."""

from __future__ import annotations

import numpy as np

from escalation._language import Span
from escalation.backends.columnar._conditions import truth
from escalation.backends.columnar._facts import Facts
from escalation.backends.columnar._local import zone_rows
from escalation.backends.columnar._starts import zone_day_starts
from escalation.backends.columnar._zones import US
from escalation.policy import Policy, TierRule

__all__ = ["tier_rows"]


def _span_after(facts: Facts, span: Span, last: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``span.after(last)`` in µs for the accounts ``rows`` (indices; ``last``, one
    per row, ≥ 0)."""
    if not span.calendar:
        unit = {"h": 3600, "m": 60}[span.unit] * US
        return last + span.amount * unit
    days = span.amount * (7 if span.unit == "w" else 1)
    after = np.zeros(len(rows), np.int64)
    for name, table, mine in zone_rows(facts):
        here = mine[rows]
        if here.any():
            after[here] = zone_day_starts(name, table.local_day(last[here]) + days)
    return after


def tier_rows(
    policy: Policy, facts: Facts, open_: np.ndarray, day_full: np.ndarray, tomorrow: np.ndarray | None
) -> list[tuple[TierRule, np.ndarray, np.ndarray]]:
    """Per tier, last first: the ``open_`` accounts (indices) it may act on and
    the instant each is ready (``now`` or later); tiers with no account left out."""
    stage, now_us = facts.stage, facts.now_us
    found = []
    for tier in reversed(policy.tiers):
        t = tier.severity - 1
        model = tier.model
        live = open_ if model.ongoing else open_ & (tier.severity >= stage)
        live = live & truth(tier.when.tree, facts)[0]
        for need, count in model.requires.items():
            need_index = policy.tiers.index(policy.tier(need))
            live &= ~((facts.tier_done[need_index] < count) & (stage != tier.severity))
        if model.repeat.max is not None:
            live &= facts.tier_done[t] < model.repeat.max
        rows = np.flatnonzero(live)
        if not len(rows):
            continue
        ready_at = np.full(len(rows), now_us, np.int64)
        for span, last in (
            (model.wait if tier.severity > 1 else None, facts.tier_counted[t - 1]),
            (model.repeat.every, facts.tier_last[t]),
        ):
            if span is not None:
                last_here = last[rows]
                has = last_here >= 0
                if has.any():
                    after = _span_after(facts, span, last_here[has], rows[has])
                    ready_at[has] = np.maximum(ready_at[has], after)
        if tomorrow is not None:
            full = day_full[rows]
            ready_at[full] = np.maximum(ready_at[full], tomorrow[rows[full]])
        found.append((tier, rows, ready_at))
    return found
