"""Holds → ladder → guards → decision, for one situation.

The semantics are those of the design's "Stage" and "Tier semantics": tiers
less severe than the account's stage are not considered (unless ``ongoing``);
the decision is the most severe considered tier that is *actionable now*;
otherwise ``wait`` with the earliest instant a considered tier will be (the
next local day when ``limits.actions_per_day`` is used up); otherwise
``none`` with why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from escalation import _reasons as fmt
from escalation._calendar import start_of_day
from escalation._facts import Situation
from escalation._facts_static import json_value
from escalation._holds import first_hold
from escalation._trace import Recorder
from escalation.decision import BlockedAction, Decision, EngineInfo, PolicyInfo, construct, decision_id
from escalation.guards import EventMatcher, GuardVerdict, applies, check_guard, next_open
from escalation.offers.evaluate import after_ladder
from escalation.placement import agency_of
from escalation.policy import ContactHoursGuard, GuardRule, Policy, TierRule
from escalation.reasons import Locale, guard_detail, render
from escalation.reasons.parts import (
    ActParts,
    AfterBelow,
    DayFull,
    HeldBack,
    HoldParts,
    Interval,
    NoneParts,
    OfferParts,
    Parts,
    Pending,
    WaitParts,
)
from escalation.record import Channel

Truth = Callable[[str], bool]
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class LadderPlan:
    """Per-policy lookups prepared once: which guards cover each (tier, channel)."""

    policy: Policy
    guards_for: Mapping[tuple[str, Channel], tuple[GuardRule, ...]]
    tags_of: Mapping[str, tuple[str, ...]]
    policy_info: PolicyInfo

    @classmethod
    def build(cls, policy: Policy) -> LadderPlan:
        table: dict[tuple[str, Channel], tuple[GuardRule, ...]] = {}
        for tier in policy.tiers:
            for channel in tier.model.channel_order:
                table[(tier.model.id, channel)] = tuple(
                    g for g in policy.guards if applies(g, tier.model, channel)
                )
        return cls(
            policy=policy,
            guards_for=table,
            tags_of={t.model.id: t.model.tags for t in policy.tiers},
            policy_info=PolicyInfo(id=policy.id, version=policy.version, fingerprint=policy.fingerprint),
        )


def _reopen(moment: dt.datetime, guards: tuple[GuardRule, ...], sit: Situation) -> dt.datetime | None:
    """Move ``moment`` forward into every applicable contact-hours window."""
    hours = [g.model for g in guards if isinstance(g.model, ContactHoursGuard)]
    current: dt.datetime | None = moment
    for _ in range(8):
        assert current is not None
        later = current
        for guard in hours:
            opened = next_open(guard, current, sit.zones)
            if opened is None:
                return None
            later = max(later, opened)
        if later == current:
            return current
        current = later
    return current


@dataclass
class _Channel:
    channel: Channel
    verdicts: list[GuardVerdict]
    blocks: list[GuardVerdict]
    time: dt.datetime | None  # when this channel is permitted (None: only an event lifts it)


def _blocked(tier: TierRule, ch: _Channel, sit: Situation) -> list[BlockedAction]:
    """The channel's blocks, each ``until`` moved to when contact is actually
    allowed (a frequency window reopens at midnight; the call at 08:00)."""
    guards = tuple(v.rule for v in ch.verdicts)
    out = []
    for v in ch.blocks:
        until = _reopen(v.until, guards, sit) if v.until is not None else None
        detail = guard_detail(v, sit, "en", with_until=False)
        out.append(
            construct(
                BlockedAction,
                action=tier.model.id,
                channel=ch.channel.value,
                guard=v.rule.model.id,
                reason=" ".join(v.rule.model.reason.split()) + (f" ({detail})" if detail else ""),
                cite=v.rule.model.cite,
                until=until.astimezone(sit.tz) if until is not None else None,
            )
        )
    return out


def _check_channels(
    plan: LadderPlan,
    tier: TierRule,
    at: dt.datetime,
    sit: Situation,
    truth: Truth,
    matcher: EventMatcher,
    trace: Recorder,
    first_open: bool = False,
) -> list[_Channel]:
    """Every applicable guard for each of the tier's channels at instant ``at``;
    with ``first_open``, channels after the first one no guard blocks are not
    needed (it will be used) and are not evaluated."""
    model = tier.model
    channels: list[_Channel] = []
    for channel in model.channel_order:
        guards = plan.guards_for[(model.id, channel)]
        verdicts = [check_guard(g, sit, model, channel, at, truth, matcher) for g in guards]
        blocks = [v for v in verdicts if v.blocked]
        time: dt.datetime | None = at
        if blocks:
            untils = [v.until for v in blocks]
            time = None if any(u is None for u in untils) else max(u for u in untils if u is not None)
            if time is not None:
                time = _reopen(time, guards, sit)
        channels.append(_Channel(channel, verdicts, blocks, time))
        if trace.on:
            for v in verdicts:
                trace.add(
                    rule=f"guard:{v.rule.model.id}",
                    matched=v.blocked,
                    facts={k: json_value(x) for k, x in v.facts.items()},
                    action=model.id,
                    channel=channel.value,
                    note=v.note or None,
                )
        if first_open and not blocks:
            break
    return channels


@dataclass
class _Why:
    """What the ladder learnt on the way down, for the reason: blocked
    actions, tiers waiting (and for what), blocked until an event, used up."""

    blocked: list[BlockedAction]
    held: list[HeldBack]
    waiting: list[tuple[dt.datetime, TierRule, Channel, tuple[Pending, ...]]]
    indefinite: list[tuple[TierRule, tuple[GuardVerdict, ...]]]
    exhausted: list[TierRule]

    def block(self, tier: TierRule, ch: _Channel, sit: Situation) -> None:
        if ch.blocks:
            self.blocked.extend(_blocked(tier, ch, sit))
            self.held.append((tier, ch.channel, tuple(ch.blocks)))


def _settle(
    tier: TierRule,
    channels: list[_Channel],
    pending: list[Pending],
    sit: Situation,
    why: _Why,
    noted: bool = True,
) -> str:
    """Record why an eligible tier cannot act now and when it could; the trace
    note (empty unless ``noted``: only the trace reads it)."""
    for ch in channels:
        why.block(tier, ch, sit)
    timed = [(c.time, c) for c in channels if c.time is not None]
    if timed:
        when, best = min(timed, key=lambda item: item[0])
        why.waiting.append((when, tier, best.channel, (*pending, *best.blocks)))
        return f"eligible; permitted from {fmt.instant(when, sit)} by {best.channel.value}" if noted else ""
    verdicts = tuple(v for c in channels for v in c.blocks)
    why.indefinite.append((tier, verdicts))
    if not noted:
        return ""
    guards_named = sorted({v.rule.model.id for v in verdicts})
    return "eligible; blocked until an event lifts " + ", ".join(guards_named)


def evaluate(
    plan: LadderPlan,
    sit: Situation,
    truth: Truth,
    engine: EngineInfo,
    record_trace: bool = True,
    locale: Locale = "en",
) -> Decision:
    """The decision for one situation; ``truth(name)`` answers each named
    condition; the reason is rendered in ``locale``."""
    policy = plan.policy
    trace = Recorder(record_trace)
    sit.cache["trace"] = record_trace  # guards skip figures only the trace reads
    decided_at = sit.now.astimezone(sit.tz)

    def decision(status: str, parts: Parts, **extra: object) -> Decision:
        reason = render(parts, policy, sit, locale)
        return construct(
            Decision,
            account_id=sit.account.id,
            decided_at=decided_at,
            status=status,
            action=extra.get("action"),
            channel=extra.get("channel"),
            severity=extra.get("severity"),
            reason=reason,
            next_eligible_at=extra.get("next_eligible_at"),
            hold=extra.get("hold"),
            stage=sit.stage,
            tags=list(extra.get("tags", ())),  # type: ignore[call-overload]
            id=decision_id(plan.policy_info.fingerprint, sit.account, sit.now),
            blocked=extra.get("blocked", []),
            agency=extra.get("agency"),
            offers=extra.get("offers", []),
            trace=trace.entries,
            experiment=None,
            policy=plan.policy_info,
            engine=engine,
        )

    # 1. holds: the first that applies stops everything
    held = first_hold(policy.holds, sit, truth, trace)
    if held is not None:
        return decision("hold", HoldParts(held.rule, held.until), hold=held.hold, next_eligible_at=held.until)

    # 2. the ladder, most severe first
    matcher = EventMatcher(sit, plan.tags_of)
    why = _Why([], [], [], [], [])
    exhausted_top = 0
    unmet: list[TierRule] = []
    deferred: list[tuple[TierRule, dt.datetime, list[Pending]]] = []
    per_day = policy.header.limits.actions_per_day
    day_full = per_day is not None and sit.actions_today >= per_day
    for tier in reversed(policy.tiers):
        model = tier.model
        rule = f"tier:{model.id}"
        facts = trace.facts(tier.when.fact_order, sit) if trace.on else {}
        if tier.severity < sit.stage_severity and not model.ongoing:
            if trace.on:
                note = f"not considered: below the stage {sit.stage} (the ladder does not step back)"
                trace.add(rule=rule, matched=truth(rule), facts=facts, note=note)
            continue
        if not truth(rule):
            unmet.append(tier)
            if trace.on:
                trace.add(rule=rule, matched=False, facts=facts, note="condition not met")
            continue
        # The stage tier itself is the step the account is on: its own `requires`
        # were the way onto it (a v1 history may have reached it without them).
        missing = {
            need: (count, sit.tier_done.get(need, 0))
            for need, count in model.requires.items()
            if sit.tier_done.get(need, 0) < count and tier.severity != sit.stage_severity
        }
        if missing:
            if trace.on:
                text = ", ".join(f"{n} {done} of {count} required" for n, (count, done) in missing.items())
                trace.add(rule=rule, matched=True, facts=facts, note=f"not eligible: {text}")
            unmet.append(tier)
            continue
        done = sit.tier_done[model.id]
        limit = model.repeat.max
        if limit is not None and done >= limit:
            why.exhausted.append(tier)
            exhausted_top = max(exhausted_top, tier.severity)
            if trace.on:
                note = f"used {done} of {limit} in this delinquency cycle"
                trace.add(rule=rule, matched=True, facts=facts, note=note)
            continue
        ready_at = sit.now
        pending: list[Pending] = []
        notes: list[str] = []
        if model.wait is not None and tier.severity > 1:
            below = policy.tiers[tier.severity - 2]
            last_below = sit.tier_counted.get(below.model.id)
            if last_below is not None and (after := model.wait.after(last_below, sit.tz)) > sit.now:
                ready_at = max(ready_at, after)
                pending.append(AfterBelow(below, model.wait, last_below))
                if trace.on:
                    notes.append(
                        f"wait {model.wait} after {below.model.id} ({fmt.ago(sit.now - last_below)})"
                    )
        last_own = sit.tier_last.get(model.id)
        every = model.repeat.every
        if every is not None and last_own is not None and (again := every.after(last_own, sit.tz)) > sit.now:
            ready_at = max(ready_at, again)
            pending.append(Interval(every, last_own))
            if trace.on:
                notes.append(f"repeat every {every}, last {fmt.ago(sit.now - last_own)}")
        if day_full and per_day is not None:
            ready_at = max(ready_at, start_of_day(sit.today + _DAY, sit.tz))
            pending.append(DayFull(sit.actions_today, per_day))
            if trace.on:
                notes.append(f"{sit.actions_today} action(s) today, limit {per_day} a day")

        if ready_at > sit.now:
            # Not due yet: its guards are only worth evaluating (at the instant it
            # becomes due) if no less severe tier can act now.
            if trace.on:
                note = f"eligible; not due before {fmt.instant(ready_at, sit)} ({'; '.join(notes)})"
                trace.add(rule=rule, matched=True, facts=facts, note=note)
            deferred.append((tier, ready_at, pending))
            continue

        channels = _check_channels(plan, tier, sit.now, sit, truth, matcher, trace, first_open=True)
        open_now = [c for c in channels if not c.blocks]
        if open_now:
            chosen = open_now[0]
            for ch in channels:
                if ch is chosen:
                    break
                why.block(tier, ch, sit)
            if trace.on:
                trace.add(
                    rule=rule, matched=True, facts=facts, note=f"actionable now by {chosen.channel.value}"
                )
            # offers: the one hook every evaluator shares (escalation/offers/evaluate.py)
            offered = after_ladder(policy, sit, truth, trace, tier, chosen.channel)
            if offered.before is not None:
                parts = OfferParts(tier, tuple(offered.offers))
                return decision("offer", parts, offers=offered.offers, blocked=why.blocked)
            return decision(
                "act",
                ActParts(tier, chosen.channel, tuple(why.held)),
                action=model.id,
                channel=chosen.channel.value,
                severity=tier.severity,
                tags=model.tags,
                blocked=why.blocked,
                offers=offered.offers,
                agency=agency_of(tier, sit.values),
            )
        note = _settle(tier, channels, [], sit, why, trace.on)
        trace.add(rule=rule, matched=True, facts=facts, note=note)

    # Nothing acts now: when will the tiers that are not yet due be permitted?
    for tier, ready_at, pending in deferred:
        channels = _check_channels(plan, tier, ready_at, sit, truth, matcher, trace)
        note = _settle(tier, channels, pending, sit, why, trace.on)
        trace.add(rule=f"tier:{tier.model.id}", matched=True, facts={}, note=note)

    if why.waiting:
        when, tier, channel, why_not = min(why.waiting, key=lambda item: (item[0], -item[1].severity))
        local = when.astimezone(sit.tz)
        return decision(
            "wait", WaitParts(tier, channel, local, why_not), next_eligible_at=local, blocked=why.blocked
        )

    # the tiers a strategist would look at next: the steps above what is used up
    # (side tracks only when the account has no stage yet)
    floor = max(exhausted_top, sit.stage_severity)
    above = sorted((t for t in unmet if t.severity > floor and not t.model.ongoing), key=lambda t: t.severity)
    if not above and sit.stage is None:
        above = sorted(unmet, key=lambda t: (t.model.ongoing, t.severity))
    return decision(
        "none", NoneParts(tuple(why.indefinite), tuple(why.exhausted), tuple(above)), blocked=why.blocked
    )
