"""Policies and rule packs: the YAML documents, loading with includes,
semantic checks, compilation and the fingerprint.

A policy file holds severity tiers, holds and policy-local guards, and
``include``s rule packs (files of guards with citations). Loading collects
*every* problem, each with its file, line and column, and raises one
:class:`~escalation.errors.PolicyError`.

The pipeline inside: :mod:`._yaml` (strict YAML) → :mod:`._load` (the
include walker) → :mod:`.schema` (documents) → :mod:`._checks` (checks and
compilation of :mod:`._expr` conditions) → :mod:`._compile` (the evaluated
policy and its fingerprint)."""

from __future__ import annotations

from pathlib import Path

from escalation._language import RECORD_DATES, Duration, EventFilter, format_duration, parse_duration
from escalation.errors import PolicyError, PolicyIssue
from escalation.guards import (
    BlockGuard,
    ConsentGuard,
    ContactHoursGuard,
    CooldownGuard,
    FrequencyGuard,
    Guard,
    Prerequisite,
    PrerequisiteGuard,
)
from escalation.policy._checks import build, check_raw_expressions
from escalation.policy._compile import GuardRule, HoldRule, Policy, TierRule
from escalation.policy._load import LANGUAGE_VERSION, MAX_INCLUDE_DEPTH, Collector, Loaded, load_tree
from escalation.policy.schema import (
    Hold,
    Limitation,
    PackDocument,
    PackHeader,
    PolicyDocument,
    PolicyHeader,
    Repeat,
    Tier,
)

__all__ = [
    "LANGUAGE_VERSION",
    "MAX_INCLUDE_DEPTH",
    "RECORD_DATES",
    "BlockGuard",
    "ConsentGuard",
    "ContactHoursGuard",
    "CooldownGuard",
    "Duration",
    "EventFilter",
    "FrequencyGuard",
    "Guard",
    "GuardRule",
    "Hold",
    "HoldRule",
    "Limitation",
    "PackDocument",
    "PackHeader",
    "Policy",
    "PolicyDocument",
    "PolicyHeader",
    "Prerequisite",
    "PrerequisiteGuard",
    "Repeat",
    "Tier",
    "TierRule",
    "format_duration",
    "load_policy",
    "load_policy_bundle",
    "parse_duration",
]


def load_policy_bundle(data: bytes) -> Policy:
    """The policy in a bundle made by :meth:`Policy.to_bundle`, its fingerprint
    checked (see :mod:`escalation.policy.bundle`)."""
    from escalation.policy.bundle import load_policy_bundle as load

    return load(data)


def load_policy(path: str | Path, *, packs: str | Path | None = None) -> Policy:
    """Load, validate and compile the policy at ``path`` with its includes.

    ``include: [pack:<name>]`` names a rule pack shipped with the package
    (or, with ``packs``, the file ``<packs>/<name>.yaml``: how a journal
    rebuilds a policy from the pack text it stored). Raises
    :class:`~escalation.errors.PolicyError` listing every problem.
    """
    path = Path(path)
    collector = Collector()
    loaded: list[Loaded] = []
    load_tree(path, collector, (), None, loaded, set(), Path(packs) if packs is not None else None)
    for item in loaded:
        if item.document is None:  # a schema error must not hide its expression errors
            check_raw_expressions(item, collector)
    if not loaded or loaded[0].document is None or collector.issues:
        if not collector.issues:  # pragma: no cover - defensive
            collector.issues.append(PolicyIssue(str(path), 1, 1, "invalid-policy", "could not load"))
        raise PolicyError(collector.issues)
    root = loaded[0]
    document = root.document
    assert isinstance(document, PolicyDocument)
    policy = build(document, root.located, loaded[1:], collector)
    if collector.issues:
        raise PolicyError(collector.issues)
    assert policy is not None
    from escalation.policy.bundle import remember_files

    remember_files(policy, loaded)
    return policy
