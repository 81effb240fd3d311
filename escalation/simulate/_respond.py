"""Customer answers: which response rule answers an action, and what the
customer does — the contact outcome, then a promise to pay, a dispute or a
payment — drawn with common random numbers (see :mod:`._rng`)."""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from escalation.simulate._rng import label_key, uniforms
from escalation.simulate._state import Book, instant_us
from escalation.simulate.model import REACHED, ResponseModel, ResponseRule, matches

__all__ = [
    "HOUR",
    "NOT_KEPT",
    "PAID",
    "SCALARS",
    "UNKNOWN",
    "DayMetrics",
    "PendingDay",
    "Responses",
    "answer",
    "shares",
]

HOUR = dt.timedelta(hours=1)
# `Book.promise_pays` besides a simulation day: not kept, kept and paid, unknown (the record's own)
NOT_KEPT, PAID, UNKNOWN = -1, -2, -3
SCALARS = (
    "active",
    "act",
    "offer",
    "wait",
    "hold",
    "none",
    "errors",
    "actions",
    "cost",
    "payments",
    "collected",
    "charges",
    "cured",
    "rolled",
    "written_off",
    "promises_made",
    "offers_made",
    "offers_accepted",
    "offers_blocked",
    "promises_kept",
    "promises_broken",
    "disputes",
    "guard_blocks",
    "balance_end",
    "arrears_end",
)


class Responses:
    """The response model prepared for one policy: the rules each (tier,
    channel) pair may match, in order, and the amount distributions."""

    def __init__(self, model: ResponseModel, tags: dict[str, frozenset[str]], book: Book, grace: int) -> None:
        self.model = model
        self.tags = tags
        self.segment_names = book.segments
        self.cache: dict[tuple[str, str], list[ResponseRule]] = {}
        self.amounts = shares(model.amounts.shares)
        self.amount_lists = (self.amounts[0].tolist(), self.amounts[1].tolist())
        self.cure_p = [(c.days[0], c.days[1], c.p) for c in model.self_cure]
        self.grace = grace

    def rules(self, tier: str, channel: str) -> list[ResponseRule]:
        key = (tier, channel)
        if key not in self.cache:
            tags = self.tags.get(tier, frozenset())
            self.cache[key] = [r for r in self.model.rules if matches(r.when, channel, tier, tags)]
        return self.cache[key]


def shares(shares: Any) -> tuple[np.ndarray, np.ndarray]:
    cum = np.cumsum([s.p for s in shares])
    cum[-1] = 1.0
    return cum, np.array([int(s.share * 10_000) for s in shares], np.int64)


@dataclass
class DayMetrics:
    """What happened on one day under one policy in one run (money in minor units)."""

    scalars: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SCALARS, 0))
    actions: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    holds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    blocks: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class PendingDay:
    """The pending events and payments of one day."""

    def __init__(self) -> None:
        self.events: dict[str, list[Any]] = {
            k: [] for k in ("account", "at", "action", "channel", "outcome", "direction", "amount", "offer")
        }
        self.payments: dict[int, int] = {}

    def event(
        self,
        i: int,
        at: dt.datetime,
        action: str | None,
        channel: str | None,
        outcome: str,
        direction: str = "outbound",
        amount: Decimal | None = None,
        offer: str | None = None,
    ) -> None:
        columns = self.events
        columns["account"].append(i)
        columns["at"].append(at)
        columns["action"].append(action)
        columns["channel"].append(channel)
        columns["outcome"].append(outcome)
        columns["direction"].append(direction)
        columns["amount"].append(amount)
        columns["offer"].append(offer)


def answer(
    book: Book,
    responses: Responses,
    keys: np.ndarray,
    acted: list[tuple[int, str, str, int]],
    when: tuple[dt.datetime, int, int],
    seed: int,
    run: int,
    metrics: DayMetrics,
    spent: tuple[np.ndarray, np.ndarray],
    pending: PendingDay,
) -> None:
    """Sample each action's answer (common random numbers per account, day and action)."""
    if not acted:
        return
    now, day, today = when
    idx = np.array([a[0] for a in acted], np.int64)
    act_keys = np.array([label_key(a[1]) for a in acted], np.uint64)
    draws = {
        name: uniforms(keys[idx], act_keys, seed=seed, run=run, day=day, stream=name)
        for name in ("outcome", "dispute", "promise", "kept", "payment", "share")
    }
    s = metrics.scalars
    seg_names = responses.segment_names
    for k, (i, tier, channel, days) in enumerate(acted):
        rule = rule_for(responses.rules(tier, channel), seg_names[book.segment[i]], days)
        charge(book, rule, metrics, spent, i, (tier, channel))
        outcome = pick_outcome(rule, draws["outcome"][k])
        share = pick_share(rule, responses, draws["share"][k])
        promise = rule.promise
        if outcome == "conversation" and promise is not None and draws["promise"][k] < promise.p:
            pending.event(i, now, tier, channel, "promise_to_pay")
            promise_made(book, responses, promise, i, share, (now, day, today), draws["kept"][k])
            s["promises_made"] += 1
            continue
        pending.event(i, now, tier, channel, outcome)
        if outcome not in REACHED:
            continue
        if rule.dispute is not None and draws["dispute"][k] < rule.dispute.p:
            pending.event(i, now + HOUR, None, channel, "dispute", "inbound")
            s["disputes"] += 1
            book.flags[i] = sorted({*(book.flags[i] or ()), "dispute"})
            book.dispute_until[i] = day + responses.model.model.dispute_days.value
        elif rule.payment is not None and draws["payment"][k] < rule.payment.p:
            pending.payments[i] = max(1, int(book.overdue[i]) * share // 10_000)


def charge(
    book: Book,
    rule: ResponseRule,
    metrics: DayMetrics,
    spent: tuple[np.ndarray, np.ndarray],
    i: int,
    key: tuple[str, str],
) -> None:
    """One action's cost, counted under ``key`` (tier or offer, channel) and on the account."""
    key_cost = (id(rule), book.exponent)
    known = _COSTS.get(key_cost)
    if known is None or known[0] is not rule:
        known = _COSTS[key_cost] = (rule, int(rule.cost.value.scaleb(book.exponent).to_integral_value()))
    cost = known[1]
    entry = metrics.actions[key]
    entry[0] += 1
    entry[1] += cost
    metrics.scalars["actions"] += 1
    metrics.scalars["cost"] += cost
    spent[0][i] += cost
    spent[1][i] += 1


# A rule's derived tables, computed once (keyed by the rule object's id; the
# rule is kept beside them, so a reused id is never taken for the old rule).
_COSTS: dict[tuple[int, int], tuple[ResponseRule, int]] = {}
_OUTCOMES: dict[int, tuple[ResponseRule, list[str], list[float]]] = {}
_SHARES: dict[int, tuple[ResponseRule, tuple[list[float], list[int]]]] = {}


def pick_outcome(rule: ResponseRule, u: float) -> str:
    """The contact outcome the uniform draw ``u`` falls on."""
    known = _OUTCOMES.get(id(rule))
    if known is None or known[0] is not rule:
        order = list(rule.outcomes.p)
        cum = np.cumsum([rule.outcomes.p[o] for o in order]).tolist()
        known = _OUTCOMES[id(rule)] = (rule, [str(o.value) for o in order], cum)
    _, names, bounds = known
    # bisect_right on the same float64 values is np.searchsorted(cum, u, side="right")
    return names[min(bisect.bisect_right(bounds, float(u)), len(names) - 1)]


def pick_share(rule: ResponseRule, responses: Responses, u: float) -> int:
    """The share of the arrears paid or promised (basis points) the draw ``u`` falls on."""
    if rule.amounts:
        known = _SHARES.get(id(rule))
        if known is None or known[0] is not rule:
            cum, bps = shares(rule.amounts.shares)
            known = _SHARES[id(rule)] = (rule, (cum.tolist(), bps.tolist()))
        cum_amounts, points = known[1]
    else:
        cum_amounts, points = responses.amount_lists
    return int(points[min(bisect.bisect_right(cum_amounts, float(u)), len(points) - 1)])


def promise_made(
    book: Book,
    responses: Responses,
    promise: Any,
    i: int,
    share: int,
    when: tuple[dt.datetime, int, int],
    kept_draw: float,
) -> None:
    """Record a promise to pay ``share`` of the arrears, kept or not by the draw."""
    now, day, today = when
    book.promise_amount[i] = max(1, int(book.overdue[i]) * share // 10_000)
    book.promise_due[i] = today + promise.days
    book.promise_made[i] = instant_us(now)
    book.promise_deadline[i] = day + promise.days + responses.grace + 1
    book.promise_pays[i] = day + promise.days if kept_draw < promise.kept else NOT_KEPT


def rule_for(candidates: list[ResponseRule], segment: str, days: int) -> ResponseRule:
    for rule in candidates:
        when = rule.when
        if when.segments is not None and segment not in when.segments:
            continue
        if when.days is not None and not when.days[0] <= days <= when.days[1]:
            continue
        return rule
    raise AssertionError("checked at start: every action has a universal rule")  # pragma: no cover
