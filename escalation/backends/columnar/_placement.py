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

__all__ = ["placement_columns", "step_tiers"]


def step_tiers(policy: Policy) -> np.ndarray:
    """Per tier, whether it is an agency step (``place`` or ``recall``)."""
    return np.asarray([tier.model.kind != "contact" for tier in policy.tiers], dtype=bool)


def placement_columns(
    policy: Policy, latest: np.ndarray, events: tuple[np.ndarray, np.ndarray], today: np.ndarray
) -> dict[str, Column]:
    """``placed``, ``placed_with`` and ``days_placed``; ``latest``: per account, the
    position of its latest counted outbound step event (-1: none); ``events`` =
    (tier index, local day) of every event."""
    n = len(today)
    action, day = events
    has = latest >= 0
    step = np.full(n, -1, np.int64)
    since = np.zeros(n, np.int64)
    step[has], since[has] = action[latest[has]], day[latest[has]]
    agencies = np.full(len(policy.tiers) + 1, None, dtype=object)  # index -1: no step
    for t, tier in enumerate(policy.tiers):
        if tier.model.kind == "place":
            agencies[t] = tier.model.agency
    agency = agencies[step]
    placed = agency != None  # noqa: E711 - elementwise
    everyone = np.ones(n, bool)
    return {
        "placed": Column("bool", placed, everyone),
        "placed_with": Column("str", agency, placed),
        "days_placed": Column("num", np.where(placed, today - since, 0), placed),
    }
