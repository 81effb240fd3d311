"""Holds → ladder → guards → decision, for one situation.

The semantics are those of the design's "Stage" and "Tier semantics": tiers
less severe than the account's stage are not considered (unless ``ongoing``);
the decision is the most severe considered tier that is *actionable now*;
otherwise ``wait`` with the earliest instant a considered tier will be (the
next local day when ``limits.actions_per_day`` is used up); otherwise
``none`` with why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from escalation import _reasons as fmt
from escalation._calendar import start_of_day
from escalation._facts import Situation
from escalation._holds import first_hold_planned
from escalation._ladder_channels import Memo, Why, check_channels, settle
from escalation._ladder_plan import LadderPlan, TierPlan
from escalation._trace import Recorder, entry
from escalation.decision import BlockedAction, Decision, EngineInfo, Offer, construct, decision_id
from escalation.guards import EventMatcher
from escalation.offers.evaluate import after_ladder
from escalation.placement import agency_of
from escalation.policy import TierRule
from escalation.reasons import Locale, render
from escalation.reasons.parts import (
    ActParts,
    AfterBelow,
    DayFull,
    HoldParts,
    Interval,
    NoneParts,
    OfferParts,
    Parts,
    Pending,
    WaitParts,
)

__all__ = ["LadderPlan", "evaluate"]

Truth = Callable[[str], bool]
_DAY = dt.timedelta(days=1)
_NOT_MET = "condition not met"


def evaluate(
    plan: LadderPlan,
    sit: Situation,
    truth: Truth,
    engine: EngineInfo,
    record_trace: bool = True,
    locale: Locale = "en",
    direct: bool = False,
    *,
    row: bool = False,
) -> Decision:
    """The decision for one situation; ``truth(name)`` answers each named
    condition; the reason is rendered in ``locale``. ``direct``: ``truth``
    answers with the compiled closures (the evaluator's ``Conditions.direct``),
    so those of holds and tiers, which the plan holds, are called directly.
    ``row``: the caller reads only the output row's fields
    (:func:`~escalation.portfolio.writer.decision_row`), so the decision id is
    left empty and an ``act`` carries no offers (a changed row's reasons)."""
    policy = plan.policy
    trace = Recorder(record_trace)
    on = trace.on
    sit.cache["trace"] = record_trace  # guards skip figures only the trace reads
    decided_at = sit.now.astimezone(sit.tz)

    def decision(
        status: str,
        parts: Parts,
        *,
        action: str | None = None,
        channel: str | None = None,
        severity: int | None = None,
        next_eligible_at: dt.datetime | None = None,
        hold: str | None = None,
        tags: tuple[str, ...] = (),
        blocked: list[BlockedAction] | None = None,
        agency: str | None = None,
        offers: list[Offer] | None = None,
    ) -> Decision:
        return construct(
            Decision,
            account_id=sit.account.id,
            decided_at=decided_at,
            status=status,
            action=action,
            channel=channel,
            severity=severity,
            reason=render(parts, policy, sit, locale),
            next_eligible_at=next_eligible_at,
            hold=hold,
            stage=sit.stage,
            tags=list(tags),
            id="" if row else decision_id(plan.policy_info.fingerprint, sit.account, sit.now),
            blocked=[] if blocked is None else blocked,
            agency=agency,
            offers=[] if offers is None else offers,
            trace=trace.entries,
            experiment=None,
            policy=plan.policy_info,
            engine=engine,
        )

    values = sit.values

    # 1. holds: the first that applies stops everything
    held = first_hold_planned(plan.holds, sit, None if direct else truth, trace)
    if held is not None:
        return decision("hold", HoldParts(held.rule, held.until), hold=held.hold, next_eligible_at=held.until)

    # 2. the ladder, most severe first
    matcher = EventMatcher(sit, plan.tags_of)
    memo: Memo = {}
    entries = trace.entries if on else None
    why = Why([], [], [], [], [])
    exhausted_top = 0
    unmet: list[TierRule] = []
    deferred: list[tuple[TierPlan, dt.datetime, list[Pending]]] = []
    per_day = policy.header.limits.actions_per_day
    day_full = per_day is not None and sit.actions_today >= per_day
    now, stage_severity = sit.now, sit.stage_severity
    tier_done = sit.tier_done
    add = trace.entries.append
    figures = trace.facts
    below_note = f"not considered: below the stage {sit.stage} (the ladder does not step back)" if on else ""
    for tp in plan.descending:
        tier, model, rule = tp.tier, tp.model, tp.rule
        if tp.severity < stage_severity and not model.ongoing:
            if on:
                met = tp.when(values) is True if direct else truth(rule)
                add(entry(rule, met, figures(tp.facts, sit), None, None, below_note))
            continue
        if not (tp.when(values) is True if direct else truth(rule)):
            unmet.append(tier)
            if on:
                add(entry(rule, False, figures(tp.facts, sit), None, None, _NOT_MET))
            continue
        facts = figures(tp.facts, sit) if on else {}
        # The stage tier itself is the step the account is on: its own `requires`
        # were the way onto it (a v1 history may have reached it without them).
        if tp.requires and tp.severity != stage_severity:
            missing = {
                need: (count, done) for need, count in tp.requires if (done := tier_done.get(need, 0)) < count
            }
            if missing:
                if on:
                    text = ", ".join(
                        f"{n} {done} of {count} required" for n, (count, done) in missing.items()
                    )
                    add(entry(rule, True, facts, None, None, f"not eligible: {text}"))
                unmet.append(tier)
                continue
        done = tier_done[model.id]
        repeat = model.repeat
        limit = repeat.max
        if limit is not None and done >= limit:
            why.exhausted.append(tier)
            exhausted_top = max(exhausted_top, tp.severity)
            if on:
                add(entry(rule, True, facts, None, None, f"used {done} of {limit} in this delinquency cycle"))
            continue
        ready_at = now
        pending: list[Pending] = []
        notes: list[str] = []
        below = tp.below
        wait = model.wait
        if wait is not None and below is not None:
            last_below = sit.tier_counted.get(below.model.id)
            if last_below is not None and (after := wait.after(last_below, sit.tz)) > now:
                ready_at = max(ready_at, after)
                pending.append(AfterBelow(below, wait, last_below))
                if on:
                    notes.append(f"wait {wait} after {below.model.id} ({fmt.ago(now - last_below)})")
        every = repeat.every
        if every is not None:
            last_own = sit.tier_last.get(model.id)
            if last_own is not None and (again := every.after(last_own, sit.tz)) > now:
                ready_at = max(ready_at, again)
                pending.append(Interval(every, last_own))
                if on:
                    notes.append(f"repeat every {every}, last {fmt.ago(now - last_own)}")
        if day_full and per_day is not None:
            ready_at = max(ready_at, start_of_day(sit.today + _DAY, sit.tz))
            pending.append(DayFull(sit.actions_today, per_day))
            if on:
                notes.append(f"{sit.actions_today} action(s) today, limit {per_day} a day")

        if ready_at > now:
            # Not due yet: its guards are only worth evaluating (at the instant it
            # becomes due) if no less severe tier can act now.
            if on:
                note = f"eligible; not due before {fmt.instant(ready_at, sit)} ({'; '.join(notes)})"
                add(entry(rule, True, facts, note=note))
            deferred.append((tp, ready_at, pending))
            continue

        channels = check_channels(tp, now, sit, truth, matcher, memo, entries, first_open=True)
        # with first_open only the last channel checked can be open: the ones before it are blocked
        if channels and not channels[-1].blocks:
            for ch in channels[:-1]:
                why.block(plan, tier, ch, sit)
            chosen = channels[-1].plan
            channel = chosen.channel
            if on:
                add(entry(rule, True, facts, None, None, f"actionable now by {chosen.value}"))
            # offers: the one hook every evaluator shares (escalation/offers/evaluate.py)
            offered = after_ladder(policy, sit, truth, trace, tier, channel, kept=not row)
            if offered.before is not None:
                parts = OfferParts(tier, tuple(offered.offers))
                return decision("offer", parts, offers=offered.offers, blocked=why.blocked)
            return decision(
                "act",
                ActParts(tier, channel, tuple(why.held)),
                action=model.id,
                channel=chosen.value,
                severity=tp.severity,
                tags=model.tags,
                blocked=why.blocked,
                offers=offered.offers,
                agency=agency_of(tier, values),
            )
        note = settle(plan, tier, channels, [], sit, why, on)
        if on:
            add(entry(rule, True, facts, note=note))

    # Nothing acts now: when will the tiers that are not yet due be permitted?
    for tp, ready_at, pending in deferred:
        channels = check_channels(tp, ready_at, sit, truth, matcher, memo, entries)
        note = settle(plan, tp.tier, channels, pending, sit, why, on)
        if on:
            add(entry(tp.rule, True, {}, note=note))

    if why.waiting:
        when, tier, channel, why_not = min(why.waiting, key=lambda item: (item[0], -item[1].severity))
        local = when.astimezone(sit.tz)
        return decision(
            "wait", WaitParts(tier, channel, local, why_not), next_eligible_at=local, blocked=why.blocked
        )

    # the tiers a strategist would look at next: the steps above what is used up
    # (side tracks only when the account has no stage yet)
    floor = max(exhausted_top, stage_severity)
    above = sorted((t for t in unmet if t.severity > floor and not t.model.ongoing), key=lambda t: t.severity)
    if not above and sit.stage is None:
        above = sorted(unmet, key=lambda t: (t.model.ongoing, t.severity))
    return decision(
        "none", NoneParts(tuple(why.indefinite), tuple(why.exhausted), tuple(above)), blocked=why.blocked
    )
