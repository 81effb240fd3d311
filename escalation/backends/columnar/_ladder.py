"""Holds → ladder → guards over columns, for one policy and one batch.

The semantics are :mod:`escalation._ladder`'s. What is vectorised: holds
(with a record-date ``until``), the ladder's stage, conditions, ``requires``,
``repeat`` counts and intervals, ``wait``, the daily action limit, and every
guard kind at the instant ``now`` (event-based prerequisites excepted). An
account is decided here when it is held, acts now, or has nothing to do with no
tier waiting; an account whose answer needs the times at which blocked or
not-yet-due tiers become permitted (``wait``, and ``none`` with a tier blocked
until an event) is handed to the reference engine, as is any account
:mod:`._facts` marked."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from escalation._calendar import is_holiday, start_of_day
from escalation._ladder import LadderPlan
from escalation._language import EventFilter, Span
from escalation.backends.columnar._conditions import Unsupported, check_tree, truth
from escalation.backends.columnar._facts import CHANNELS, OUTCOMES, Facts
from escalation.backends.columnar._zones import DAY_US, US, day_start_us
from escalation.guards import (
    BlockGuard,
    ConsentGuard,
    ContactHoursGuard,
    CooldownGuard,
    FrequencyGuard,
    PrerequisiteGuard,
)
from escalation.policy import GuardRule, Policy
from escalation.record import Channel, zone

__all__ = ["Outcome", "check_policy", "decide"]

_EPOCH = dt.date(1970, 1, 1)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# record dates a vectorised account never has (their accounts go to the reference engine)
_ABSENT_DATES = ("promise_to_pay.", "breathing_space.")


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
    blocked: dict[int, set[str]] = field(default_factory=dict)


def _newer_than_columnar(guard: Any) -> bool:
    """A guard using parameters the vectorised checks do not implement."""
    if isinstance(guard, ConsentGuard):
        return bool(guard.confirm_on)
    if isinstance(guard, PrerequisiteGuard):
        alternatives = (guard, *guard.any_of)
        return any(
            getattr(a, "kept_by", None) is not None
            or getattr(a, "more_than_months", None) is not None
            or getattr(a, "rest_days", None) is not None
            for a in alternatives
        )
    return False


def check_policy(policy: Policy) -> None:
    """Raise :class:`Unsupported` when the columnar ladder cannot evaluate ``policy``."""
    for hold in policy.holds:
        check_tree(hold.when.tree)
        until = hold.model.until
        if (
            until is not None
            and until != "payment_plan.next_due_date"
            and not until.startswith(_ABSENT_DATES)
        ):
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
    out = np.zeros(facts.n, np.int64)
    for name in set(facts.zone_names[mask].tolist()):
        mine = mask & (facts.zone_names == name)
        out[mine] = day_start_us(name, zone(name), days[mine])
    return out


def _span_after(facts: Facts, span: Span, last: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``span.after(last)`` in µs, for accounts in ``mask`` (``last`` ≥ 0)."""
    if not span.calendar:
        unit = {"h": 3600, "m": 60}[span.unit] * US
        return last + span.amount * unit
    days = span.amount * (7 if span.unit == "w" else 1)
    local = np.zeros(facts.n, np.int64)
    for name in set(facts.zone_names[mask].tolist()):
        mine = mask & (facts.zone_names == name)
        local[mine] = facts.cache["tables"][name].local_day(last[mine])
    return _date_start(facts, local + days, mask)


def _event_mask(flt: EventFilter, facts: Facts, channels: tuple[Channel, ...], tags_of: dict[str, Any],
                tier_ids: list[str]) -> np.ndarray:  # fmt: skip
    """Events (sorted order) matching ``flt`` in a vectorised account."""
    key = ("filter", id(flt), channels)
    cached = facts.cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    m = np.ones(len(facts.ev_ts), bool)
    if flt.direction == "outbound":
        m &= facts.ev_outbound
    elif flt.direction == "inbound":
        m &= ~facts.ev_outbound
    wanted = flt.channels or channels
    if wanted:
        m &= np.isin(facts.ev_channel, [CHANNELS.index(c.value) for c in wanted])
    if flt.outcomes:
        m &= np.isin(facts.ev_outcome, [OUTCOMES.index(o.value) for o in flt.outcomes])
    if flt.actions:
        m &= np.isin(facts.ev_action, [tier_ids.index(a) for a in flt.actions if a in tier_ids])
    if flt.tags:
        tagged = [i for i, t in enumerate(tier_ids) if set(flt.tags) & set(tags_of.get(t, ()))]
        m &= np.isin(facts.ev_action, tagged)
    if flt.misdirected is True or flt.during_consent is True:
        m &= False  # no vectorised account has misdirected events or consent windows
    if flt.in_cycle is not None:
        m &= facts.ev_in_cycle if flt.in_cycle else ~facts.ev_in_cycle
    facts.cache[key] = m
    return m


class _Guards:
    """Guard verdicts at ``now`` over the batch: (blocked, unsure) masks."""

    def __init__(self, policy: Policy, plan: LadderPlan, facts: Facts) -> None:
        self.policy, self.plan, self.facts = policy, plan, facts
        self.tier_ids = [t.model.id for t in policy.tiers]
        self.tags_of = dict(plan.tags_of)
        self.memo: dict[tuple[int, Channel], tuple[np.ndarray, np.ndarray]] = {}

    def verdict(self, rule: GuardRule, channel: Channel) -> tuple[np.ndarray, np.ndarray]:
        key = (id(rule), channel)
        found = self.memo.get(key)
        if found is None:
            blocked, unsure = self._check(rule, channel)
            if rule.unless is not None:
                lifted = truth(rule.unless.tree, self.facts)[0]
                blocked, unsure = blocked & ~lifted, unsure & ~lifted
            found = self.memo[key] = (blocked, unsure)
        return found

    def _events(
        self, flt: EventFilter, exclude: tuple[EventFilter, ...], channels: tuple[Channel, ...]
    ) -> np.ndarray:
        f = self.facts
        m = _event_mask(flt, f, channels, self.tags_of, self.tier_ids) & (f.ev_ts <= f.now_us)
        for x in exclude:
            m = m & ~_event_mask(x, f, (), self.tags_of, self.tier_ids)
        return m

    def _check(self, rule: GuardRule, channel: Channel) -> tuple[np.ndarray, np.ndarray]:
        f, g = self.facts, rule.model
        n = f.n
        none = np.zeros(n, bool)
        if _newer_than_columnar(g):  # parameters not vectorised: the reference engine decides
            return none, np.ones(n, bool)
        if isinstance(g, ConsentGuard):
            return np.fromiter((channel.value in s for s in f.columns["opt_out"].values), bool, n), none
        if isinstance(g, BlockGuard):
            return truth(rule.conditions["when"].tree, f)[0], none
        if isinstance(g, ContactHoursGuard):
            return self._hours(g), none
        if isinstance(g, CooldownGuard):
            m = self._events(g.after, g.exclude, ())
            first = f.today - (g.wait - 1)
            since = _date_start(f, first, np.ones(n, bool))
            m = m & (f.ev_ts >= since[f.ev_acc])
            return np.bincount(f.ev_acc[m], minlength=n) > 0, none
        if isinstance(g, FrequencyGuard):
            return self._frequency(g, channel), none
        if isinstance(g, PrerequisiteGuard):
            return self._prerequisite(g)
        return none, np.ones(n, bool)  # a kind not vectorised: the reference engine decides

    def _hours(self, g: ContactHoursGuard) -> np.ndarray:
        f = self.facts
        minute = f.columns["local_hour"].values * 60
        local_minute = np.zeros(f.n, np.int64)
        days = f.today
        offset = np.zeros(f.n, np.int64)
        for name in set(f.zone_names.tolist()):
            mine = f.zone_names == name
            table = f.cache["tables"].get(name)
            if table is None:
                continue
            offset[mine] = table.offsets(np.asarray([f.now_us]))[0]
        local_minute = ((f.now_us + offset) % DAY_US) // (60 * US)
        del minute
        start = int(g.from_[:2]) * 60 + int(g.from_[3:])
        end = int(g.to[:2]) * 60 + int(g.to[3:])
        shut = (local_minute < start) | (local_minute >= end)
        weekday = (days + 3) % 7
        allowed = [i for i, name in enumerate(_WEEKDAYS) if name in g.days]
        shut |= ~np.isin(weekday, allowed)
        if g.holidays is not None:
            for day in np.unique(days).tolist():
                if is_holiday(g.holidays, _EPOCH + dt.timedelta(days=day)):
                    shut |= days == day
        return shut

    def _frequency(self, g: FrequencyGuard, channel: Channel) -> np.ndarray:
        f = self.facts
        n = f.n
        m = self._events(g.count, g.exclude, g.channels or (channel,))
        if g.window == "calendar_month":
            first = np.asarray(
                [((_EPOCH + dt.timedelta(days=d)).replace(day=1) - _EPOCH).days for d in f.today.tolist()],
                dtype=np.int64,
            )
        else:
            assert isinstance(g.window, int)
            first = f.today - (g.window - 1)
        inside = m & (f.ev_day >= first[f.ev_acc]) & (f.ev_day <= f.today[f.ev_acc])
        if g.per == "account":
            return np.bincount(f.ev_acc[inside], minlength=n) >= g.max
        idx = np.flatnonzero(m)
        if not len(idx):
            return np.zeros(n, bool)
        width = int(f.ev_address.max()) + 2
        pair = f.ev_acc[idx] * width + (f.ev_address[idx] + 1)
        keys, inverse = np.unique(pair, return_inverse=True)
        counts = np.bincount(inverse, weights=inside[idx].astype(np.float64), minlength=len(keys))
        owner = keys // width
        lowest = np.full(n, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(lowest, owner, counts.astype(np.int64))
        has = np.bincount(owner, minlength=n) > 0
        return has & (lowest >= g.max)

    def _prerequisite(self, g: PrerequisiteGuard) -> tuple[np.ndarray, np.ndarray]:
        f = self.facts
        n = f.n
        met = np.zeros(n, bool)
        for alt in g.alternatives():
            if alt.record_date is None or alt.undone_by is not None:
                return np.zeros(n, bool), np.ones(n, bool)
            if alt.record_date != "validation_notice_sent_at":
                continue  # kept in `rest`: absent for every vectorised account
            sent, known = f.cache["sent"]
            if alt.calendar_days:
                local = np.zeros(n, np.int64)
                for name in set(f.zone_names.tolist()):
                    mine = known & (f.zone_names == name)
                    local[mine] = f.cache["tables"][name].local_day(sent[mine])
                ready = _date_start(f, local + alt.at_least // dt.timedelta(days=1), known)
            else:
                ready = sent + alt.at_least // dt.timedelta(microseconds=1)
            met |= known & (ready <= f.now_us)
        return ~met, np.zeros(n, bool)


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
    )
    open_ = ~facts.fallback.copy()  # undecided and still vectorised
    now_us = facts.now_us

    for hold in policy.holds:
        yes = truth(hold.when.tree, facts)[0] & open_
        if not yes.any():
            continue
        until = np.full(n, -1, np.int64)
        if hold.model.until == "payment_plan.next_due_date":
            due, known = facts.cache["plan_due"]
            grace = (hold.model.grace or dt.timedelta(0)) // dt.timedelta(days=1)
            has = yes & known
            until = np.where(has, _date_start(facts, due + 1 + grace, has), -1)
            expired = has & (until <= now_us)
            yes &= ~expired
            for i in np.flatnonzero(has & yes).tolist():
                tz = zone(facts.zone_names[i])
                day = _EPOCH + dt.timedelta(days=int(due[i]) + 1 + grace)
                out.next_eligible_at[i] = start_of_day(day, tz).isoformat()
        out.status[yes] = "hold"
        out.hold[yes] = hold.model.id
        open_ &= ~yes

    guards = _Guards(policy, plan, facts)
    stage = facts.stage
    per_day = policy.header.limits.actions_per_day
    day_full = np.zeros(n, bool) if per_day is None else facts.actions_today >= per_day
    pending = np.zeros(n, bool)  # a tier waits or is blocked: the reference engine times it
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
        late = day_full & live
        if model.wait is not None and tier.severity > 1:
            last = facts.tier_counted[t - 1]
            has = live & (last >= 0)
            late |= has & (_span_after(facts, model.wait, np.maximum(last, 0), has) > now_us)
        if model.repeat.every is not None:
            last = facts.tier_last[t]
            has = live & (last >= 0)
            late |= has & (_span_after(facts, model.repeat.every, np.maximum(last, 0), has) > now_us)
        pending |= late
        ready = live & ~late
        for channel in model.channel_order:
            if not ready.any():
                break
            rules = plan.guards_for[(model.id, channel)]
            blocked = np.zeros(n, bool)
            hits = []
            for rule in rules:
                b, unsure = guards.verdict(rule, channel)
                out.covered &= ~(unsure & ready)
                ready &= ~unsure
                blocked |= b
                hits.append((rule.model.id, b))
            acting = ready & ~blocked
            out.status[acting] = "act"
            out.action[acting] = model.id
            out.channel[acting] = channel.value
            out.severity[acting] = tier.severity
            open_ &= ~acting
            stuck = ready & blocked
            for gid, b in hits:
                for i in np.flatnonzero(stuck & b).tolist():
                    out.blocked.setdefault(i, set()).add(gid)
            ready = stuck
        pending |= ready  # every channel blocked: when it reopens is the reference engine's
    nothing = open_ & ~pending
    out.status[nothing] = "none"
    out.covered &= ~(open_ & pending)
    return out
