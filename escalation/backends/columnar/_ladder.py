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
from typing import Any

import numpy as np

from escalation._calendar import start_of_day
from escalation._ladder import LadderPlan
from escalation.backends.columnar import _rows
from escalation.backends.columnar._conditions import Unsupported, check_tree, truth
from escalation.backends.columnar._facts import Facts
from escalation.backends.columnar._guards import NEVER, Guards, Verdict
from escalation.backends.columnar._local import zone_rows
from escalation.backends.columnar._ready import tier_rows
from escalation.backends.columnar._starts import day_start
from escalation.backends.columnar._twin import decide_twin
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
    """Send ``rows`` (indices) to the reference engine: a guard check is unsure of them."""
    new = rows[out.covered[rows]]
    if len(new):
        out.why[new] = GUARD
        out.covered[new] = False


def _block(out: Outcome, gid: str, rows: np.ndarray) -> None:
    """Record that guard ``gid`` blocked ``rows`` (indices)."""
    if len(rows):
        mask = out.blocked.get(gid)
        if mask is None:
            mask = out.blocked[gid] = np.zeros(len(out.covered), bool)
        mask[rows] = True


def _channel_time(
    guards: Guards, rules: tuple[GuardRule, ...], verdicts: list[Verdict], rows: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """The time a channel is permitted for the accounts ``rows`` (indices; ``at``
    one instant per row; ``verdicts`` read at the rows, one value per row),
    ``_MAX`` where it never is: ``at`` when nothing blocks, else the latest
    until moved into contact hours. A row's time reads nothing of the others'."""
    k = len(rows)
    blocked = np.zeros(k, bool)
    latest = np.full(k, -1, np.int64)
    known = np.ones(k, bool)
    for b_here, until_here, _unsure in verdicts:
        blocked |= b_here
        latest = np.where(b_here, np.maximum(latest, until_here), latest)
        known &= ~(b_here & (until_here == NEVER))
    time = np.full(k, _MAX, np.int64)
    time[~blocked] = at[~blocked]
    if blocked.any():
        moved, ok = guards.reopen(rules, latest[blocked], known[blocked], rows=rows[blocked])
        time[blocked] = np.where(ok, moved, _MAX)
    return time


def _asks(plan: LadderPlan, model: Any) -> list[tuple[GuardRule, Channel]]:
    """Every (guard, channel) a tier's channels are checked with."""
    return [(rule, channel) for channel in model.channel_order for rule in plan.guards_for[(model.id, channel)]]


def _sure(
    out: Outcome, verdicts: list[Verdict], rows: np.ndarray, *more: np.ndarray
) -> tuple[list[Verdict], np.ndarray, list[np.ndarray]]:
    """Send the ``rows`` a verdict is unsure of to the reference engine; the
    verdicts, rows and ``more`` (one value per row each) of the others."""
    if not verdicts:
        return verdicts, rows, list(more)
    doubt = np.logical_or.reduce([v[2] for v in verdicts])
    if not doubt.any():
        return verdicts, rows, list(more)
    _uncover(out, rows[doubt])
    keep = ~doubt
    kept = [(b[keep], until[keep], unsure[keep]) for b, until, unsure in verdicts]
    return kept, rows[keep], [m[keep] for m in more]


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


_MAX = np.iinfo(np.int64).max
GUARD = REASONS.index("guard") + 1


def _iso(facts: Facts, instants: np.ndarray, mask: np.ndarray, into: np.ndarray) -> None:
    """``into[i]`` = the local ISO text of instant ``i`` (rows in ``mask``), once per distinct value."""
    for name, _table, mine in zone_rows(facts):
        rows = np.flatnonzero(mine & mask)
        if not len(rows):
            continue
        unique, inverse = np.unique(instants[rows], return_inverse=True)
        text = np.asarray([_text(name, u, False) for u in unique.tolist()], dtype=object)
        into[rows] = text[inverse]


# (zone, µs or local day, is a day) → ISO text: a dry-run's batches share their few
# distinct instants and days, each formatted once
_TEXTS: dict[tuple[str, int, bool], str] = {}


def _text(name: str, value: int, day: bool) -> str:
    """The ISO text of instant ``value`` (µs) in zone ``name``, or of the start of local ``day``."""
    key = (name, value, day)
    found = _TEXTS.get(key)
    if found is None:
        if len(_TEXTS) > 100_000:
            _TEXTS.clear()
        tz = zone(name)
        if day:
            found = start_of_day(_EPOCH + dt.timedelta(days=value), tz).isoformat()
        else:
            found = (_UTC_EPOCH + dt.timedelta(microseconds=value)).astimezone(tz).isoformat()
        _TEXTS[key] = found
    return found


def decide(policy: Policy, plan: LadderPlan, facts: Facts) -> Outcome:
    """The decisions of every account ``facts`` covers (see the module docstring);
    a policy differing from one decided on ``facts`` before only in its holds'
    and tiers' conditions decides again only the accounts where they differ
    (:mod:`._twin`)."""
    return decide_twin(policy, plan, facts, _decide)


def _decide(policy: Policy, plan: LadderPlan, facts: Facts) -> Outcome:
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
                    unique, inverse = np.unique(due[rows] + 1 + grace, return_inverse=True)
                    text = [_text(name, d, True) for d in unique.tolist()]
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
    deferred: list[tuple[TierRule, np.ndarray, np.ndarray]] = []  # (tier, rows, their instants)

    # each tier's rows as indices once its conditions hold: past that point a tier
    # concerns a few hundred accounts of a batch, not the batch. Acting only closes
    # rows, so each tier's rows are found first and narrowed to the open ones in turn
    candidates = tier_rows(policy, facts, open_, day_full, tomorrow)
    _rows.prepare_now(guards, [(_asks(plan, tier.model), rows[at <= now_us]) for tier, rows, at in candidates])
    for tier, rows, ready_at in candidates:
        if not open_.any():
            break
        keep = open_[rows]
        rows, ready_at = rows[keep], ready_at[keep]
        if not len(rows):
            continue
        model = tier.model
        late = ready_at > now_us
        if late.any():
            deferred.append((tier, rows[late], ready_at[late]))
        ready = rows[~late]
        soonest = np.full(len(ready), _MAX, np.int64)
        for channel in model.channel_order:
            if not len(ready):
                break
            rules = plan.guards_for[(model.id, channel)]
            at = np.full(len(ready), now_us, np.int64)
            verdicts = [guards.at_rows(rule, channel, ready, at) for rule in rules]
            verdicts, ready, (soonest, at) = _sure(out, verdicts, ready, soonest, at)
            here = [v[0] for v in verdicts]
            blocked = np.logical_or.reduce(here) if here else np.zeros(len(ready), bool)
            acting = ready[~blocked]
            out.status[acting] = "act"
            out.action[acting] = model.id
            out.channel[acting] = channel.value
            out.severity[acting] = tier.severity
            open_[acting] = False
            stuck = ready[blocked]
            for rule, b in zip(rules, here, strict=True):
                _block(out, rule.model.id, stuck[b[blocked]])
            if len(stuck):
                stuck_verdicts = [(b[blocked], until[blocked], unsure[blocked]) for b, until, unsure in verdicts]
                time = _channel_time(guards, rules, stuck_verdicts, stuck, at[blocked])
                soonest = np.minimum(soonest[blocked], time)
            ready = stuck
        if len(ready):  # every channel blocked now
            best[ready] = np.minimum(best[ready], soonest)

    # nothing acts now: when are the tiers that are not due yet permitted? (each
    # account's verdicts at its own instant, worked out over those accounts alone)
    waits = [(tier, rows[open_[rows]], at[open_[rows]]) for tier, rows, at in deferred]
    later = [(tier.model.id, _asks(plan, tier.model), rows, at) for tier, rows, at in waits if len(rows)]
    _rows.prepare_later(guards, later)
    for tier, rows, ready_at in waits:
        if not len(rows):
            continue
        soonest = np.full(len(rows), _MAX, np.int64)
        for channel in tier.model.channel_order:
            rules = plan.guards_for[(tier.model.id, channel)]
            verdicts = [guards.at_rows(rule, channel, rows, ready_at, tier.model.id) for rule in rules]
            verdicts, rows, (soonest, ready_at) = _sure(out, verdicts, rows, soonest, ready_at)
            time = _channel_time(guards, rules, verdicts, rows, ready_at)
            for rule, (b, _until, _unsure) in zip(rules, verdicts, strict=True):
                _block(out, rule.model.id, rows[b])
            soonest = np.minimum(soonest, time)
        best[rows] = np.minimum(best[rows], soonest)

    waiting = open_ & (best < _MAX)
    out.status[waiting] = "wait"
    _iso(facts, best, waiting, out.next_eligible_at)
    out.status[open_ & ~waiting] = "none"
    for gid in list(out.blocked):
        out.blocked[gid] &= out.covered
    return out
