"""A tier's channels at one instant: every guard that covers each channel
(through the policy's specialised checkers, each verdict memoised for the
decision), when each channel is permitted, and what the ladder learns from
the blocked ones for the reason (:class:`Why`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from escalation import _reasons as fmt
from escalation._facts import Situation
from escalation._ladder_plan import ChannelPlan, LadderPlan, TierPlan
from escalation._trace import entry, json_facts
from escalation.decision import BlockedAction, TraceEntry, construct
from escalation.guards import EventMatcher, GuardVerdict, next_open
from escalation.guards._base import Truth
from escalation.policy import ContactHoursGuard, TierRule
from escalation.reasons import guard_detail
from escalation.reasons.parts import HeldBack, Pending
from escalation.record import Channel

__all__ = ["Memo", "Why", "check_channels", "settle"]

#: A decision's guard verdicts: by instant, then by the (guard, channel) number of the plan.
Memo = dict[dt.datetime, dict[int, GuardVerdict]]


def _reopen(moment: dt.datetime, hours: tuple[ContactHoursGuard, ...], sit: Situation) -> dt.datetime | None:
    """Move ``moment`` forward into every applicable contact-hours window."""
    if not hours:
        return moment  # no window to move into: the loop below would return it unchanged
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


@dataclass(slots=True)
class Checked:
    plan: ChannelPlan
    verdicts: list[GuardVerdict]
    blocks: list[GuardVerdict]
    time: dt.datetime | None  # when this channel is permitted (None: only an event lifts it)

    @property
    def channel(self) -> Channel:
        return self.plan.channel


def _blocked(plan: LadderPlan, tier: TierRule, ch: Checked, sit: Situation) -> list[BlockedAction]:
    """The channel's blocks, each ``until`` moved to when contact is actually
    allowed (a frequency window reopens at midnight; the call at 08:00)."""
    hours = ch.plan.hours
    out = []
    for v in ch.blocks:
        until = _reopen(v.until, hours, sit) if v.until is not None else None
        detail = guard_detail(v, sit, "en", with_until=False)
        reason = plan.reasons[id(v.rule)]
        out.append(
            construct(
                BlockedAction,
                action=tier.model.id,
                channel=ch.plan.value,
                guard=v.rule.model.id,
                reason=reason + (f" ({detail})" if detail else ""),
                cite=v.rule.model.cite,
                until=until.astimezone(sit.tz) if until is not None else None,
            )
        )
    return out


def check_channels(
    tp: TierPlan,
    at: dt.datetime,
    sit: Situation,
    truth: Truth,
    matcher: EventMatcher,
    memo: Memo,
    entries: list[TraceEntry] | None,
    first_open: bool = False,
) -> list[Checked]:
    """Every applicable guard for each of the tier's channels at instant ``at``
    (trace entries added to ``entries`` unless it is ``None``); with
    ``first_open``, channels after the first one no guard blocks are not
    needed (it will be used) and are not evaluated."""
    model = tp.model
    channels: list[Checked] = []
    known = memo.get(at)
    if known is None:
        known = memo[at] = {}
    for cp in tp.channels:
        channel = cp.channel
        verdicts: list[GuardVerdict] = []
        blocks: list[GuardVerdict] = []
        # a verdict depends only on (guard, channel, instant): asked once per decision
        for key, check in cp.checks:
            v = known.get(key)
            if v is None:
                v = known[key] = check(sit, channel, at, truth, matcher)
            verdicts.append(v)
            if v.blocked:
                blocks.append(v)
        time: dt.datetime | None = at
        if blocks:
            untils = [v.until for v in blocks]
            time = None if any(u is None for u in untils) else max(u for u in untils if u is not None)
            if time is not None:
                time = _reopen(time, cp.hours, sit)
        channels.append(Checked(cp, verdicts, blocks, time))
        if entries is not None:
            value = cp.value
            for name, v in zip(cp.names, verdicts, strict=True):
                entries.append(entry(name, v.blocked, json_facts(v.facts), model.id, value, v.note or None))
        if first_open and not blocks:
            break
    return channels


@dataclass
class Why:
    """What the ladder learnt on the way down, for the reason: blocked
    actions, tiers waiting (and for what), blocked until an event, used up."""

    blocked: list[BlockedAction]
    held: list[HeldBack]
    waiting: list[tuple[dt.datetime, TierRule, Channel, tuple[Pending, ...]]]
    indefinite: list[tuple[TierRule, tuple[GuardVerdict, ...]]]
    exhausted: list[TierRule]

    def block(self, plan: LadderPlan, tier: TierRule, ch: Checked, sit: Situation) -> None:
        if ch.blocks:
            self.blocked.extend(_blocked(plan, tier, ch, sit))
            self.held.append((tier, ch.channel, tuple(ch.blocks)))


def settle(
    plan: LadderPlan,
    tier: TierRule,
    channels: list[Checked],
    pending: list[Pending],
    sit: Situation,
    why: Why,
    noted: bool = True,
) -> str:
    """Record why an eligible tier cannot act now and when it could; the trace
    note (empty unless ``noted``: only the trace reads it)."""
    for ch in channels:
        why.block(plan, tier, ch, sit)
    timed = [(c.time, c) for c in channels if c.time is not None]
    if timed:
        when, best = min(timed, key=lambda item: item[0])
        why.waiting.append((when, tier, best.channel, (*pending, *best.blocks)))
        return f"eligible; permitted from {fmt.instant(when, sit)} by {best.plan.value}" if noted else ""
    verdicts = tuple(v for c in channels for v in c.blocks)
    why.indefinite.append((tier, verdicts))
    if not noted:
        return ""
    guards_named = sorted({v.rule.model.id for v in verdicts})
    return "eligible; blocked until an event lifts " + ", ".join(guards_named)
