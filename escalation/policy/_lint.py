"""Warnings about a valid policy: things that are allowed but probably not meant."""

from __future__ import annotations

from escalation.guards import applies
from escalation.policy import Policy

__all__ = ["lint"]


def lint(policy: Policy) -> list[str]:
    """Human-readable warnings (never errors)."""
    warnings = []
    for guard in policy.guards:
        covered = any(
            applies(guard, tier.model, channel)
            for tier in policy.tiers
            for channel in tier.model.channel_order
        )
        # a guard refusing a combination of tags (`all_tags`) is meant to apply to no tier
        if not covered and not guard.model.all_tags:
            warnings.append(f"guard `{guard.model.id}` ({guard.source}) applies to no tier of this policy")
    for tier in policy.tiers:
        if tier.model.repeat.max is None and tier.model.repeat.every is None:
            warnings.append(f"tier `{tier.model.id}` has no `repeat`: it may be taken at every evaluation")
    return warnings
