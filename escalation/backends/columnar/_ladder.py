"""Holds → ladder → guards over columns, for one policy and one batch.

The semantics are :mod:`escalation._ladder`'s. What is vectorised: holds
(with a record-date ``until``), the ladder's stage, conditions, ``requires``,
``repeat`` counts and intervals, ``wait``, the daily action limit, every guard
kind at ``now`` and at the instant a tier that is not due yet becomes due
(event-based prerequisites excepted), with the instants blocks end, moved into
contact hours — so ``act``, ``wait`` (``next_eligible_at``), ``none`` and
``hold`` are all decided here. Accounts :mod:`._facts` marked, and those a
guard check is unsure of, go to the reference engine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from escalation._calendar import start_of_day
from escalation._ladder import LadderPlan
from escalation._language import Span
from escalation.backends.columnar._conditions import Unsupported, check_tree, truth
from escalation.backends.columnar._facts import Facts
from escalation.backends.columnar._guards import NEVER, Guards, Verdict
from escalation.backends.columnar._local import zone_rows
from escalation.backends.columnar._starts import day_start
from escalation.backends.columnar._subset import subset
from escalation.backends.columnar._why import REASONS
from escalation.backends.columnar._zones import US
from escalation.policy import GuardRule, Policy, TierRule
from escalation.record import Channel, zone

__all__ = ["Outcome", "check_policy", "decide"]

_EPOCH = dt.date(1970, 1, 1)
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# record dates a vectorised account never has (their accounts go to the reference engine)
_ABSENT_DATES = ("breathing_space.",)
# record dates a hold may end on (the day after, plus its grace)
_HOLD_DATES = {"payment_plan.next_due_date": "plan_due", "promise_to_pay.due_date": "promise_due"}


@dataclass
class Outcome:
    """Decisions of one batch under one policy; ``covered`` rows are decided."""

    covered: np.ndarray
    status: np.ndarray
    action: np.ndarray
    channel: np.ndarray
    severity: np.ndarray
    hold: np.ndarray
    next_eligible_at: np.ndarray
    blocked: dict[str, np.ndarray] = field(default_factory=dict)  # guard id → rows it blocked
    why: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # _why codes of uncovered rows


def _uncover(out: Outcome, rows: np.ndarray) -> None:
    """Send ``rows`` to the reference engine: a guard check is unsure of them."""
    new = rows & out.covered
    if new.any():
        out.why[new] = GUARD
        out.covered &= ~new


def check_policy(policy: Policy) -> None:
    """Raise :class:`Unsupported` when the columnar ladder cannot evaluate ``policy``."""
    for hold in policy.holds:
        check_tree(hold.when.tree)
        until = hold.model.until
        if until is not None and until not in _HOLD_DATES and not until.startswith(_ABSENT_DATES):
            raise Unsupported(f"hold until `{until}`")
        if hold.model.grace is not None and hold.model.grace % dt.timedelta(days=1):
            raise Unsupported("a hold grace in hours")
    for tier in policy.tiers:
        check_tree(tier.when.tree)
    for guard in policy.guards:
        for compiled in guard.conditions.values():
            check_tree(compiled.tree)
        if guard.unless is not None:
            check_tree(guard.unless.tree)


def _date_start(facts: Facts, days: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """µs of the start of local ``days`` for the accounts in ``mask``."""
    return day_start(facts, days, mask)


def _span_after(facts: Facts, span: Span, last: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``span.after(last)`` in µs, for accounts in ``mask`` (``last`` ≥ 0)."""
    if not span.calendar:
        unit = {"h": 3600, "m": 60}[span.unit] * US
        return last + span.amount * unit
    days = span.amount * (7 if span.unit == "w" else 1)
    local = np.zeros(facts.n, np.int64)
    for _name, table, mine in zone_rows(facts):
        rows = mask & mine
        if rows.any():
            local[rows] = table.local_day(last[rows])
    return _date_start(facts, local + days, mask)


_MAX = np.iinfo(np.int64).max
GUARD = REASONS.index("guard") + 1


def _iso(facts: Facts, instants: np.ndarray, mask: np.ndarray, into: np.ndarray) -> None:
    """``into[i]`` = the local ISO text of instant ``i`` (rows in ``mask``), once per distinct value."""
    for name, _table, mine in zone_rows(facts):
        rows = np.flatnonzero(mine & mask)
        if not len(rows):
            continue
        tz = zone(name)
        unique, inverse = np.unique(instants[rows], return_inverse=True)
        text = np.asarray(
            [(_UTC_EPOCH + dt.timedelta(microseconds=u)).astimezone(tz).isoformat() for u in unique.tolist()],
            dtype=object,
        )
        into[rows] = text[inverse]


class _Later:
    """Verdicts at instants of the accounts' own, read only at ``rows`` (the
    accounts waiting on a tier that is not due yet): when those are few, worked
    out over those accounts' facts alone (:func:`._subset.subset`, one subset
    for every such tier) and widened to the batch (not blocked, ``NEVER``, sure
    elsewhere); else over the batch. A row's verdict reads nothing of the
    other rows', so one subset serves every tier."""

    def __init__(self, policy: Policy, plan: LadderPlan, guards: Guards, rows: np.ndarray) -> None:
        self.guards, self.n = guards, guards.facts.n
        self.picked = np.flatnonzero(rows)
        sub = subset(guards.facts, self.picked) if len(self.picked) * 4 < self.n else None
        self.few: Guards | None = None
        if sub is not None:
            self.few = Guards(policy, plan, sub)
            self.few.holidays = guards.holidays
        self.at: tuple[np.ndarray, np.ndarray] | None = None  # the last instants asked, at the rows

    def ask(self, rule: GuardRule, channel: Channel, at: np.ndarray) -> Verdict:
        if self.few is None:
            return self.guards.verdict(rule, channel, at)
        if self.at is None or self.at[0] is not at:
            self.at = (at, at[self.picked])
        blocked, until, unsure = self.few.verdict(rule, channel, self.at[1])
        n, picked = self.n, self.picked
        wide: Verdict = (np.zeros(n, bool), np.full(n, NEVER, np.int64), np.zeros(n, bool))
        wide[0][picked], wide[1][picked], wide[2][picked] = blocked, until, unsure
        return wide


def decide(policy: Policy, plan: LadderPlan, facts: Facts) -> Outcome:
    """The decisions of every account ``facts`` covers (see the module docstring)."""
    n = facts.n
    out = Outcome(
        covered=~facts.fallback,
        status=np.full(n, None, dtype=object),
        action=np.full(n, None, dtype=object),
        channel=np.full(n, None, dtype=object),
        severity=np.zeros(n, np.int64),
        hold=np.full(n, None, dtype=object),
        next_eligible_at=np.full(n, None, dtype=object),
        why=facts.why.code.copy(),
    )
    open_ = ~facts.fallback.copy()  # undecided and still vectorised
    now_us = facts.now_us

    for hold in policy.holds:
        yes = truth(hold.when.tree, facts)[0] & open_
        if not yes.any():
            continue
        if hold.model.until is not None and hold.model.until in _HOLD_DATES:
            due, known = facts.cache[_HOLD_DATES[hold.model.until]]
            grace = (hold.model.grace or dt.timedelta(0)) // dt.timedelta(days=1)
            has = yes & known
            until = np.where(has, _date_start(facts, due + 1 + grace, has), -1)
            yes &= ~(has & (until <= now_us))
            for name, _table, mine in zone_rows(facts):  # once per (zone, day)
                rows = np.flatnonzero(has & yes & mine)
                if len(rows):
                    tz = zone(name)
                    unique, inverse = np.unique(due[rows] + 1 + grace, return_inverse=True)
                    days = (_EPOCH + dt.timedelta(days=d) for d in unique.tolist())
                    text = [start_of_day(day, tz).isoformat() for day in days]
                    out.next_eligible_at[rows] = np.asarray(text, dtype=object)[inverse.reshape(-1)]
        out.status[yes] = "hold"
        out.hold[yes] = hold.model.id
        open_ &= ~yes

    guards = Guards(policy, plan, facts)
    stage = facts.stage
    per_day = policy.header.limits.actions_per_day
    day_full = np.zeros(n, bool) if per_day is None else facts.actions_today >= per_day
    tomorrow = _date_start(facts, facts.today + 1, day_full) if day_full.any() else None
    best = np.full(n, _MAX, np.int64)  # the earliest instant a considered tier is permitted
    deferred: list[tuple[TierRule, np.ndarray, np.ndarray]] = []

    def block(gid: str, rows: np.ndarray) -> None:
        if rows.any():
            mask = out.blocked.get(gid)
            out.blocked[gid] = rows.copy() if mask is None else mask | rows

    def channel_time(rules: tuple[GuardRule, ...], verdicts: list[Verdict], rows: np.ndarray,
                     at: np.ndarray) -> np.ndarray:  # fmt: skip
        """The time the channel is permitted for ``rows`` (_MAX elsewhere, and where
        it never is): ``at`` when nothing blocks, else the latest until moved into
        contact hours. Worked over ``rows`` only (often few): a row's time reads
        nothing of the others'."""
        time = np.full(n, _MAX, np.int64)
        picked = np.flatnonzero(rows)
        if not len(picked):
            return time
        blocked = np.zeros(len(picked), bool)
        latest = np.full(len(picked), -1, np.int64)
        known = np.ones(len(picked), bool)
        for b, until, _unsure in verdicts:
            b_here, until_here = b[picked], until[picked]
            blocked |= b_here
            latest = np.where(b_here, np.maximum(latest, until_here), latest)
            known &= ~(b_here & (until_here == NEVER))
        time[picked[~blocked]] = at[picked[~blocked]]
        if blocked.any():
            stuck = picked[blocked]
            moved, ok = guards.reopen(rules, latest[blocked], known[blocked], rows=stuck)
            time[stuck] = np.where(ok, moved, _MAX)
        return time

    for tier in reversed(policy.tiers):
        if not open_.any():
            break
        t = tier.severity - 1
        model = tier.model
        live = open_ & ((tier.severity >= stage) | model.ongoing)
        live &= truth(tier.when.tree, facts)[0]
        for need, count in model.requires.items():
            need_index = policy.tiers.index(policy.tier(need))
            live &= ~((facts.tier_done[need_index] < count) & (stage != tier.severity))
        if model.repeat.max is not None:
            live &= facts.tier_done[t] < model.repeat.max
        if not live.any():
            continue
        ready_at = np.full(n, now_us, np.int64)
        if model.wait is not None and tier.severity > 1:
            last = facts.tier_counted[t - 1]
            has = live & (last >= 0)
            after = _span_after(facts, model.wait, np.maximum(last, 0), has)
            ready_at = np.where(has, np.maximum(ready_at, after), ready_at)
        if model.repeat.every is not None:
            last = facts.tier_last[t]
            has = live & (last >= 0)
            after = _span_after(facts, model.repeat.every, np.maximum(last, 0), has)
            ready_at = np.where(has, np.maximum(ready_at, after), ready_at)
        if tomorrow is not None:
            ready_at = np.where(day_full & live, np.maximum(ready_at, tomorrow), ready_at)
        late = live & (ready_at > now_us)
        if late.any():
            deferred.append((tier, late, ready_at))
        ready = live & ~late
        soonest = np.full(n, _MAX, np.int64)
        for channel in model.channel_order:
            if not ready.any():
                break
            rules = plan.guards_for[(model.id, channel)]
            verdicts = [guards.verdict(rule, channel) for rule in rules]
            for _b, _until, unsure in verdicts:
                _uncover(out, unsure & ready)
                ready &= ~unsure
            blocked = np.logical_or.reduce([v[0] for v in verdicts]) if verdicts else np.zeros(n, bool)
            acting = ready & ~blocked
            out.status[acting] = "act"
            out.action[acting] = model.id
            out.channel[acting] = channel.value
            out.severity[acting] = tier.severity
            open_ &= ~acting
            stuck = ready & blocked
            for rule, (b, _until, _unsure) in zip(rules, verdicts, strict=True):
                block(rule.model.id, stuck & b)
            if stuck.any():
                time = channel_time(rules, verdicts, stuck, guards.now)
                soonest = np.minimum(soonest, time)
            ready = stuck
        best = np.where(ready, np.minimum(best, soonest), best)  # every channel blocked now

    # nothing acts now: when are the tiers that are not due yet permitted?
    waits = [(tier, late & open_, ready_at) for tier, late, ready_at in deferred]
    later = _Later(policy, plan, guards, np.logical_or.reduce([w[1] for w in waits])) if waits else None
    for tier, rows, ready_at in waits:
        if not rows.any():
            continue
        assert later is not None
        soonest = np.full(n, _MAX, np.int64)
        for channel in tier.model.channel_order:
            rules = plan.guards_for[(tier.model.id, channel)]
            verdicts = [later.ask(rule, channel, ready_at) for rule in rules]
            for _b, _until, unsure in verdicts:
                _uncover(out, unsure & rows)
                rows &= ~unsure
            time = channel_time(rules, verdicts, rows, ready_at)
            for rule, (b, _until, _unsure) in zip(rules, verdicts, strict=True):
                block(rule.model.id, rows & b)
            soonest = np.minimum(soonest, time)
        best = np.where(rows, np.minimum(best, soonest), best)

    waiting = open_ & (best < _MAX)
    out.status[waiting] = "wait"
    _iso(facts, best, waiting, out.next_eligible_at)
    out.status[open_ & ~waiting] = "none"
    for gid in list(out.blocked):
        out.blocked[gid] &= out.covered
    return out
