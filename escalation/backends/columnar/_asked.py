"""Guard verdicts at ``now`` worked out only for the accounts a ladder step asks
about (a helper of :mod:`._guards`).

An event-based guard (frequency, cooldown, prerequisite) costs a few passes
over every event of the batch, yet only the accounts ready for a tier it
guards read its verdict — often a few hundred of a batch of 32k (a credit
report's prerequisite), at most a third (a call's frequency caps). So its
verdict at ``now`` is kept per row with the rows it is known at, and each ask
works out the rows not known yet over their facts alone (:func:`._subset.subset`,
one subset per set of rows asked, shared by the guards asked with it). A
row's verdict reads nothing of the other rows' (as :class:`._ladder._Later`
relies on too), so the verdict of a row is the whole batch's.

Asked for most of the batch at once, the guard is worked out over the batch
(:meth:`._guards.Guards.verdict` without rows) and that answers every row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from escalation.backends.columnar._events import Verdict
from escalation.backends.columnar._subset import subset

if TYPE_CHECKING:
    from escalation.backends.columnar._facts import Facts
    from escalation.backends.columnar._guards import Guards
    from escalation.policy import GuardRule
    from escalation.record import Channel

__all__ = ["PARTIAL", "Known", "asked_verdict", "seed_known"]

NEVER = -1
_SHARE = 2
PARTIAL = "verdicts at now, by row"  # facts.cache[(PARTIAL, context)]: {verdict key: Known}


class Known:
    """A verdict at ``now`` over the batch, worked out at the rows in ``done``."""

    __slots__ = ("blocked", "done", "unsure", "until")

    def __init__(self, blocked: np.ndarray, until: np.ndarray, unsure: np.ndarray, done: np.ndarray) -> None:
        self.blocked, self.until, self.unsure, self.done = blocked, until, unsure, done

    @classmethod
    def empty(cls, n: int) -> Known:
        return cls(np.zeros(n, bool), np.full(n, NEVER, np.int64), np.zeros(n, bool), np.zeros(n, bool))

    def at(self, rows: np.ndarray) -> Known:
        """The same verdict of the accounts ``rows`` only (indices), renumbered 0…"""
        return Known(self.blocked[rows], self.until[rows], self.unsure[rows], self.done[rows])


def _memo(facts: Facts, context: Any) -> dict[Any, Known]:
    key = (PARTIAL, context)
    memo: dict[Any, Known] | None = facts.cache.get(key)
    if memo is None:
        memo = facts.cache[key] = {}
    return memo


def asked_verdict(guards: Guards, rule: GuardRule, channel: Channel, key: Any, rows: np.ndarray) -> Verdict:
    """``rule``'s verdict at now (memo ``key``), right at ``rows`` (increasing
    indices) at least: callers read it at the rows they asked about only."""
    facts = guards.facts
    n = facts.n
    memo = _memo(facts, guards.context)
    known = memo.get(key)
    if known is None:
        known = memo[key] = Known.empty(n)
    missing = rows[~known.done[rows]]
    if len(missing):
        # more than a small share of the batch: one pass over it costs less than copying
        # those accounts' events into a subset
        part = subset(facts, missing) if len(missing) * _SHARE < n else None
        if part is None:
            del memo[key]
            return guards.verdict(rule, channel)
        blocked, until, unsure = guards.view(part).verdict(rule, channel)
        known.blocked[missing] = blocked
        known.until[missing] = until
        known.unsure[missing] = unsure
        known.done[missing] = True
    return known.blocked, known.until, known.unsure


def seed_known(part: Facts, facts: Facts, rows: np.ndarray) -> None:
    """Give ``part`` (the facts of ``rows``) the verdicts at now worked out over
    ``facts`` at those rows (a twin policy's subset: :mod:`._twin`)."""
    for key, memo in list(facts.cache.items()):
        if isinstance(key, tuple) and key and key[0] == PARTIAL and key not in part.cache:
            part.cache[key] = {which: known.at(rows) for which, known in memo.items()}
