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
from escalation.backends.columnar._labels import Labels
from escalation.backends.columnar._local import zone_rows
from escalation.backends.columnar._starts import day_start, zone_day_starts
from escalation.backends.columnar._subset import subset
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
    status: Labels
    action: Labels
    channel: Labels
    severity: np.ndarray
    hold: Labels
    next_eligible_at: Labels
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
    guards: Guards,
    rules: tuple[GuardRule, ...],
    verdicts: list[Verdict],
    rows: np.ndarray,
    at: np.ndarray,
    place: np.ndarray | None = None,
) -> np.ndarray:
    """The time a channel is permitted for the accounts ``rows`` (indices; ``at``
    one instant per row; their verdicts read at ``place``, else at ``rows``),
    ``_MAX`` where it never is: ``at`` when nothing blocks, else the latest
    until moved into contact hours. A row's time reads nothing of the others'."""
    k = len(rows)
    place = rows if place is None else place
    blocked = np.zeros(k, bool)
    latest = np.full(k, -1, np.int64)
    known = np.ones(k, bool)
    for b, until, _unsure in verdicts:
        b_here, until_here = b[place], until[place]
        blocked |= b_here
        latest = np.where(b_here, np.maximum(latest, until_here), latest)
        known &= ~(b_here & (until_here == NEVER))
    time = np.full(k, _MAX, np.int64)
    time[~blocked] = at[~blocked]
    # only the blocked rows with a known until move into contact hours (the others never open)
    movable = np.flatnonzero(blocked & known)
    if len(movable):
        moved, ok = guards.reopen(rules, latest[movable], np.ones(len(movable), bool), rows=rows[movable])
        time[movable] = np.where(ok, moved, _MAX)
    return time


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


_MAX = np.iinfo(np.int64).max
GUARD = REASONS.index("guard") + 1


def _iso(facts: Facts, instants: np.ndarray, mask: np.ndarray, into: Labels) -> None:
    """Row ``i`` of ``into``: the local ISO text of instant ``i`` (rows in ``mask``), once per value."""
    for name, _table, mine in zone_rows(facts):
        rows = np.flatnonzero(mine & mask)
        if not len(rows):
            continue
        unique, inverse = np.unique(instants[rows], return_inverse=True)
        into.put_each(rows, [_text(name, u, False) for u in unique.tolist()], inverse.reshape(-1))


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


class _Later:
    """Verdicts at instants of the accounts' own, read only at ``rows`` (the
    accounts waiting on a tier that is not due yet): when those are few, worked
    out over those accounts' facts alone (:func:`._subset.subset`, one subset
    for every such tier), else over the batch. A row's verdict reads nothing
    of the other rows', so one subset serves every tier. Verdicts are read at
    :meth:`where` (a row's place in the verdicts' arrays)."""

    def __init__(self, policy: Policy, plan: LadderPlan, guards: Guards, rows: np.ndarray) -> None:
        self.guards = guards
        self.picked = np.flatnonzero(rows)
        sub = subset(guards.facts, self.picked) if len(self.picked) * 4 < guards.facts.n else None
        self.few: Guards | None = None
        if sub is not None:
            self.few = Guards(policy, plan, sub)
            self.few.holidays = guards.holidays
            self.place = np.full(guards.facts.n, -1, np.int64)
            self.place[self.picked] = np.arange(len(self.picked))
        self.at: tuple[np.ndarray, np.ndarray] | None = None  # the last instants asked, at the rows

    def where(self, rows: np.ndarray) -> np.ndarray:
        """The places of ``rows`` (batch indices, all among those given) in the verdicts."""
        return rows if self.few is None else self.place[rows]

    def ask(self, rule: GuardRule, channel: Channel, at: np.ndarray) -> Verdict:
        if self.few is None:
            return self.guards.verdict(rule, channel, at)
        if self.at is None or self.at[0] is not at:
            self.at = (at, at[self.picked])
        return self.few.verdict(rule, channel, self.at[1])


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
        status=Labels(n),
        action=Labels(n),
        channel=Labels(n),
        severity=np.zeros(n, np.int64),
        hold=Labels(n),
        next_eligible_at=Labels(n),
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
            has = np.flatnonzero(yes & known)  # (the few held accounts with a date, not the batch)
            ends = due[has] + 1 + grace
            zones = [(name, mine[has]) for name, _table, mine in zone_rows(facts)]
            until = np.zeros(len(has), np.int64)  # (0 in no zone: the hold is over)
            for name, zoned in zones:
                until[zoned] = zone_day_starts(name, ends[zoned])
            over = until <= now_us
            yes[has[over]] = False
            for name, zoned in zones:  # once per (zone, day)
                zoned &= ~over
                if zoned.any():
                    unique, inverse = np.unique(ends[zoned], return_inverse=True)
                    text = [_text(name, d, True) for d in unique.tolist()]
                    out.next_eligible_at.put_each(has[zoned], text, inverse.reshape(-1))
        out.status.put(yes, "hold")
        out.hold.put(yes, hold.model.id)
        open_ &= ~yes

    guards = Guards(policy, plan, facts)
    stage = facts.stage
    per_day = policy.header.limits.actions_per_day
    day_full = np.zeros(n, bool) if per_day is None else facts.actions_today >= per_day
    tomorrow = _date_start(facts, facts.today + 1, day_full) if day_full.any() else None
    best = np.full(n, _MAX, np.int64)  # the earliest instant a considered tier is permitted
    deferred: list[tuple[TierRule, np.ndarray, np.ndarray]] = []

    # each tier's rows as indices once its conditions hold: past that point a tier
    # concerns a few hundred accounts of a batch, not the batch
    for tier in reversed(policy.tiers):
        if not open_.any():
            break
        t = tier.severity - 1
        model = tier.model
        # (narrowed as indices: a tier's conditions leave a small share of the batch)
        rows = np.flatnonzero(open_ & truth(tier.when.tree, facts)[0])
        if not model.ongoing:
            rows = rows[stage[rows] <= tier.severity]
        for need, count in model.requires.items():
            need_index = policy.tier(need).severity - 1  # (its position: no model comparisons)
            rows = rows[~((facts.tier_done[need_index][rows] < count) & (stage[rows] != tier.severity))]
        if model.repeat.max is not None:
            rows = rows[facts.tier_done[t][rows] < model.repeat.max]
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
        late = ready_at > now_us
        if late.any():
            late_rows = np.zeros(n, bool)
            late_rows[rows[late]] = True
            at_all = np.full(n, now_us, np.int64)
            at_all[rows] = ready_at
            deferred.append((tier, late_rows, at_all))
        ready = rows[~late]
        soonest = np.full(len(ready), _MAX, np.int64)
        for channel in model.channel_order:
            if not len(ready):
                break
            rules = plan.guards_for[(model.id, channel)]
            verdicts = [guards.verdict(rule, channel, rows=ready) for rule in rules]
            for _b, _until, unsure in verdicts:
                doubt = unsure[ready]
                if doubt.any():
                    _uncover(out, ready[doubt])
                    ready, soonest = ready[~doubt], soonest[~doubt]
            here = [v[0][ready] for v in verdicts]
            blocked = np.logical_or.reduce(here) if here else np.zeros(len(ready), bool)
            acting = ready[~blocked]
            out.status.put(acting, "act")
            out.action.put(acting, model.id)
            out.channel.put(acting, channel.value)
            out.severity[acting] = tier.severity
            open_[acting] = False
            stuck = ready[blocked]
            for rule, b in zip(rules, here, strict=True):
                _block(out, rule.model.id, stuck[b[blocked]])
            if len(stuck):
                time = _channel_time(guards, rules, verdicts, stuck, np.full(len(stuck), now_us, np.int64))
                soonest = np.minimum(soonest[blocked], time)
            ready = stuck
        if len(ready):  # every channel blocked now
            best[ready] = np.minimum(best[ready], soonest)

    # nothing acts now: when are the tiers that are not due yet permitted?
    waits = [(tier, late & open_, ready_at) for tier, late, ready_at in deferred]
    later = _Later(policy, plan, guards, np.logical_or.reduce([w[1] for w in waits])) if waits else None
    for tier, mask, ready_at in waits:
        rows = np.flatnonzero(mask)
        if not len(rows):
            continue
        assert later is not None
        soonest = np.full(len(rows), _MAX, np.int64)
        for channel in tier.model.channel_order:
            rules = plan.guards_for[(tier.model.id, channel)]
            verdicts = [later.ask(rule, channel, ready_at) for rule in rules]
            for _b, _until, unsure in verdicts:
                doubt = unsure[later.where(rows)]
                if doubt.any():
                    _uncover(out, rows[doubt])
                    rows, soonest = rows[~doubt], soonest[~doubt]
            place = later.where(rows)
            time = _channel_time(guards, rules, verdicts, rows, ready_at[rows], place)
            for rule, (b, _until, _unsure) in zip(rules, verdicts, strict=True):
                _block(out, rule.model.id, rows[b[place]])
            soonest = np.minimum(soonest, time)
        best[rows] = np.minimum(best[rows], soonest)

    waiting = open_ & (best < _MAX)
    out.status.put(waiting, "wait")
    _iso(facts, best, waiting, out.next_eligible_at)
    out.status.put(open_ & ~waiting, "none")
    for gid in list(out.blocked):
        out.blocked[gid] &= out.covered
    return out
