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
from escalation._facts import Situation, json_value
from escalation._holds import first_hold
from escalation._trace import Recorder
from escalation.decision import BlockedAction, Decision, EngineInfo, PolicyInfo, construct, decision_id
from escalation.guards import EventMatcher, GuardVerdict, applies, check_guard, next_open
from escalation.policy import ContactHoursGuard, GuardRule, Policy, TierRule
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
        out.append(
            construct(
                BlockedAction,
                action=tier.model.id,
                channel=ch.channel.value,
                guard=v.rule.model.id,
                reason=v.rule.model.reason + (f" ({v.note})" if v.note else ""),
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


def _settle(
    tier: TierRule,
    channels: list[_Channel],
    pending: list[str],
    sit: Situation,
    blocked: list[BlockedAction],
    waiting: list[tuple[dt.datetime, TierRule, Channel, str]],
    indefinite: list[str],
) -> str:
    """Record why an eligible tier cannot act now and when it could; the trace note."""
    for ch in channels:
        blocked.extend(_blocked(tier, ch, sit))
    timed = [(c.time, c) for c in channels if c.time is not None]
    if timed:
        when, best = min(timed, key=lambda item: item[0])
        why = "; ".join(pending + [f"{v.rule.model.id}: {v.note}" for v in best.blocks if v.note])
        waiting.append((when, tier, best.channel, why))
        return f"eligible; permitted from {fmt.instant(when, sit)} by {best.channel.value}"
    guards_named = sorted({v.rule.model.id for c in channels for v in c.blocks})
    indefinite.append(f"{tier.model.id} blocked by {', '.join(guards_named)}")
    return "eligible; blocked until an event lifts " + ", ".join(guards_named)


def evaluate(
    plan: LadderPlan, sit: Situation, truth: Truth, engine: EngineInfo, record_trace: bool = True
) -> Decision:
    """The decision for one situation; ``truth(name)`` answers each named condition."""
    policy = plan.policy
    trace = Recorder(record_trace)
    decided_at = sit.now.astimezone(sit.tz)

    def decision(status: str, reason: str, **extra: object) -> Decision:
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
            trace=trace.entries,
            policy=plan.policy_info,
            engine=engine,
        )

    # 1. holds: the first that applies stops everything
    held = first_hold(policy.holds, sit, truth, trace)
    if held is not None:
        return decision("hold", held.reason, hold=held.hold, next_eligible_at=held.until)

    # 2. the ladder, most severe first
    matcher = EventMatcher(sit, plan.tags_of)
    blocked: list[BlockedAction] = []
    waiting: list[tuple[dt.datetime, TierRule, Channel, str]] = []
    exhausted: list[str] = []
    exhausted_top = 0
    indefinite: list[str] = []
    unmet: list[TierRule] = []
    deferred: list[tuple[TierRule, dt.datetime, list[str]]] = []
    per_day = policy.header.limits.actions_per_day
    day_full = per_day is not None and sit.actions_today >= per_day
    for tier in reversed(policy.tiers):
        model = tier.model
        rule = f"tier:{model.id}"
        facts = trace.facts(tier.when.fact_order, sit)
        if tier.severity < sit.stage_severity and not model.ongoing:
            note = f"not considered: below the stage {sit.stage} (the ladder does not step back)"
            trace.add(rule=rule, matched=truth(rule), facts=facts, note=note)
            continue
        if not truth(rule):
            unmet.append(tier)
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
            text = ", ".join(f"{n} {done} of {count} required" for n, (count, done) in missing.items())
            trace.add(rule=rule, matched=True, facts=facts, note=f"not eligible: {text}")
            unmet.append(tier)
            continue
        done = sit.tier_done[model.id]
        limit = model.repeat.max
        if limit is not None and done >= limit:
            note = f"used {done} of {limit} in this delinquency cycle"
            exhausted.append(f"{model.id} used {done} of {limit}")
            exhausted_top = max(exhausted_top, tier.severity)
            trace.add(rule=rule, matched=True, facts=facts, note=note)
            continue
        ready_at = sit.now
        pending: list[str] = []
        if model.wait is not None and tier.severity > 1:
            below = policy.tiers[tier.severity - 2].model.id
            last_below = sit.tier_counted.get(below)
            if last_below is not None and (after := model.wait.after(last_below, sit.tz)) > sit.now:
                ready_at = max(ready_at, after)
                pending.append(f"wait {model.wait} after {below} ({fmt.ago(sit.now - last_below)})")
        last_own = sit.tier_last.get(model.id)
        every = model.repeat.every
        if every is not None and last_own is not None and (again := every.after(last_own, sit.tz)) > sit.now:
            ready_at = max(ready_at, again)
            pending.append(f"repeat every {every}, last {fmt.ago(sit.now - last_own)}")
        if day_full:
            ready_at = max(ready_at, start_of_day(sit.today + _DAY, sit.tz))
            pending.append(f"{sit.actions_today} action(s) today, limit {per_day} a day")

        if ready_at > sit.now:
            # Not due yet: its guards are only worth evaluating (at the instant it
            # becomes due) if no less severe tier can act now.
            note = f"eligible; not due before {fmt.instant(ready_at, sit)} ({'; '.join(pending)})"
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
                blocked.extend(_blocked(tier, ch, sit))
            parts = [f"{model.id} by {chosen.channel.value}: {fmt.condition_figures(tier.when, sit)}"]
            if model.requires:
                parts.append(
                    ", ".join(
                        f"{need} done {sit.tier_done[need]} (requires {n}"
                        + (", waived: the account is on this step)" if sit.tier_done[need] < n else ")")
                        for need, n in model.requires.items()
                    )
                )
            attempt = f"attempt {done + 1}" + (f" of {limit}" if limit is not None else "")
            if last_own is not None:
                attempt += f", last {fmt.ago(sit.now - last_own)}"
            parts.append(attempt)
            if blocked:
                parts.append(
                    "more severe or preferred blocked: "
                    + ", ".join(sorted({f"{b.action}/{b.channel} by {b.guard}" for b in blocked}))
                )
            note = f"actionable now by {chosen.channel.value}"
            trace.add(rule=rule, matched=True, facts=facts, note=note)
            return decision(
                "act",
                "; ".join(parts),
                action=model.id,
                channel=chosen.channel.value,
                severity=tier.severity,
                tags=model.tags,
                blocked=blocked,
            )
        note = _settle(tier, channels, [], sit, blocked, waiting, indefinite)
        trace.add(rule=rule, matched=True, facts=facts, note=note)

    # Nothing acts now: when will the tiers that are not yet due be permitted?
    for tier, ready_at, pending in deferred:
        channels = _check_channels(plan, tier, ready_at, sit, truth, matcher, trace)
        note = _settle(tier, channels, pending, sit, blocked, waiting, indefinite)
        trace.add(rule=f"tier:{tier.model.id}", matched=True, facts={}, note=note)

    if waiting:
        when, tier, channel, why = min(waiting, key=lambda item: (item[0], -item[1].severity))
        local = when.astimezone(sit.tz)
        reason = f"{tier.model.id} by {channel.value} is next permitted at {local.isoformat()}"
        if why:
            reason += f" ({why})"
        return decision("wait", reason, next_eligible_at=local, blocked=blocked)

    parts = []
    if indefinite:
        parts.append("; ".join(indefinite) + " (only an event can lift this)")
    if exhausted:
        parts.append("; ".join(exhausted) + " in this delinquency cycle")
    if unmet:
        # the tier a strategist would look at next: just above what is used up
        above = [t for t in unmet if t.severity > exhausted_top]
        nxt = min(above or unmet, key=lambda t: t.severity)
        needs = f"`{nxt.when.canonical}`" + _requires_text(nxt, sit)
        parts.append(f"next tier {nxt.model.id} needs {needs} ({fmt.condition_figures(nxt.when, sit)})")
    if sit.stage is not None and sit.stage_severity > 1:
        parts.append(f"stage {sit.stage}: milder tiers are not considered")
    if sit.days_overdue <= 0 and not exhausted and not indefinite:
        parts.insert(0, f"not overdue (days_overdue {sit.days_overdue})")
    return decision("none", "nothing to do: " + "; ".join(parts), blocked=blocked)


def _requires_text(tier: TierRule, sit: Situation) -> str:
    if not tier.model.requires:
        return ""
    return " and " + ", ".join(
        f"{need} {sit.tier_done.get(need, 0)} of {n}" for need, n in tier.model.requires.items()
    )
