"""Agency placement facts over columns (a helper of :mod:`._facts`), with
:func:`escalation.placement.placement_facts`' semantics: the latest counted
outbound ``place`` or ``recall`` step decides — placed with the ``place``
tier's agency since that step's local day, or not placed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from escalation.backends.columnar._column import Column

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["placement_columns"]


def placement_columns(
    policy: Policy,
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    today: np.ndarray,
    outcome_names: list[str],
) -> dict[str, Column]:
    """``placed``, ``placed_with`` and ``days_placed``; ``events`` = (account,
    local day, outbound, tier index, outcome code), sorted by account then instant."""
    n = len(today)
    acc, day, outbound, action, outcome = events
    steps = [(t, tier.model) for t, tier in enumerate(policy.tiers) if tier.model.kind != "contact"]
    counted = np.zeros(len(acc), bool)
    for t, model in steps:
        codes = [outcome_names.index(o.value) for o in model.counting_outcomes]
        made = np.where(outcome < 0, outcome_names.index("sent") in codes, np.isin(outcome, codes))
        counted |= outbound & (action == t) & made
    latest = np.full(n, -1, np.int64)
    hits = np.flatnonzero(counted)
    latest[acc[hits]] = hits  # events are sorted: the last write is the latest
    has = latest >= 0
    step = np.full(n, -1, np.int64)
    since = np.zeros(n, np.int64)
    step[has], since[has] = action[latest[has]], day[latest[has]]
    agencies = np.full(len(policy.tiers) + 1, None, dtype=object)  # index -1: no step
    for t, model in steps:
        if model.kind == "place":
            agencies[t] = model.agency
    agency = agencies[step]
    placed = agency != None  # noqa: E711 - elementwise
    everyone = np.ones(n, bool)
    return {
        "placed": Column("bool", placed, everyone),
        "placed_with": Column("str", agency, placed),
        "days_placed": Column("num", np.where(placed, today - since, 0), placed),
    }
