"""What the ladder prepares once per policy, so that a decision only looks
things up: each tier's rule name, facts, requirements and the tier below it;
for each of its channels the guards that cover it (and which of those are
contact hours, and each one's checker specialised for the policy); each
guard's rule name and its reason on one line; each hold's rule name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from escalation.decision import PolicyInfo
from escalation.guards import applies
from escalation.guards._fast import FastCheck, specialise
from escalation.policy import ContactHoursGuard, GuardRule, HoldRule, Policy, Tier, TierRule
from escalation.policy._tree import TruthFn
from escalation.record import Channel

__all__ = ["ChannelPlan", "LadderPlan", "TierPlan"]


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """One channel of one tier: the guards covering it, in policy order."""

    channel: Channel
    value: str  # the channel's value (an enum's ``.value`` is a Python-level property)
    guards: tuple[GuardRule, ...]
    names: tuple[str, ...]  # ``guard:<id>`` of each guard (its trace rule)
    hours: tuple[ContactHoursGuard, ...]  # the contact-hours guards among them
    # each guard's checker, with a number unique to its (guard, channel) in the
    # policy: the key of its verdict in a decision's memo
    checks: tuple[tuple[int, FastCheck], ...]


@dataclass(frozen=True, slots=True)
class TierPlan:
    """One tier with everything a decision reads of it but its condition."""

    tier: TierRule
    model: Tier
    rule: str  # ``tier:<id>``: its condition's name and its trace rule
    when: TruthFn  # its condition's closure (what the native evaluator answers ``rule`` with)
    severity: int
    facts: tuple[str, ...]  # the facts its condition reads, sorted
    requires: tuple[tuple[str, int], ...]
    below: TierRule | None  # the tier one step less severe (its ``wait`` counts from it)
    channels: tuple[ChannelPlan, ...]  # in the tier's channel order


@dataclass(frozen=True)
class LadderPlan:
    """Per-policy lookups prepared once: which guards cover each (tier, channel)."""

    policy: Policy
    guards_for: Mapping[tuple[str, Channel], tuple[GuardRule, ...]]
    tags_of: Mapping[str, tuple[str, ...]]
    policy_info: PolicyInfo
    descending: tuple[TierPlan, ...]  # most severe first
    reasons: Mapping[int, str]  # id(guard rule) → its reason on one line
    holds: tuple[tuple[HoldRule, str], ...]  # each hold and its rule name, in policy order

    @classmethod
    def build(cls, policy: Policy) -> LadderPlan:
        table: dict[tuple[str, Channel], tuple[GuardRule, ...]] = {}
        for tier in policy.tiers:
            for channel in tier.model.channel_order:
                table[(tier.model.id, channel)] = tuple(
                    g for g in policy.guards if applies(g, tier.model, channel)
                )
        checkers = {id(g): specialise(g) for g in policy.guards}
        numbers: dict[tuple[int, Channel], int] = {}
        return cls(
            policy=policy,
            guards_for=table,
            tags_of={t.model.id: t.model.tags for t in policy.tiers},
            policy_info=PolicyInfo(id=policy.id, version=policy.version, fingerprint=policy.fingerprint),
            descending=tuple(
                _tier_plan(policy, tier, table, checkers, numbers) for tier in reversed(policy.tiers)
            ),
            reasons={id(g): " ".join(g.model.reason.split()) for g in policy.guards},
            holds=tuple((h, f"hold:{h.model.id}") for h in policy.holds),
        )


def _tier_plan(
    policy: Policy,
    tier: TierRule,
    table: Mapping[tuple[str, Channel], tuple[GuardRule, ...]],
    checkers: Mapping[int, FastCheck],
    numbers: dict[tuple[int, Channel], int],
) -> TierPlan:
    model = tier.model
    channels = []
    for channel in model.channel_order:
        guards = table[(model.id, channel)]
        channels.append(
            ChannelPlan(
                channel=channel,
                value=channel.value,
                guards=guards,
                names=tuple(f"guard:{g.model.id}" for g in guards),
                hours=tuple(g.model for g in guards if isinstance(g.model, ContactHoursGuard)),
                checks=tuple(
                    (numbers.setdefault((id(g), channel), len(numbers)), checkers[id(g)]) for g in guards
                ),
            )
        )
    return TierPlan(
        tier=tier,
        model=model,
        rule=f"tier:{model.id}",
        when=tier.when.truth,
        severity=tier.severity,
        facts=tier.when.fact_order,
        requires=tuple(model.requires.items()),
        below=policy.tiers[tier.severity - 2] if tier.severity > 1 else None,
        channels=tuple(channels),
    )
