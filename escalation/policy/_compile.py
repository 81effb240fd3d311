"""A policy as evaluated: compiled conditions beside each model, and the
canonical form whose hash is the policy's fingerprint."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from escalation.policy._expr import Compiled
from escalation.policy.schema import Hold, PolicyDocument, PolicyHeader, Tier

if TYPE_CHECKING:
    from escalation.guards import GuardKind, GuardModel
    from escalation.offers import OfferRule

__all__ = ["CompiledOffer", "GuardRule", "HoldRule", "Policy", "TierRule", "canonical_json"]


@dataclass(frozen=True)
class GuardRule:
    """A guard as evaluated: the model, its kind, where it came from, and its
    compiled conditions (``conditions`` by field name, e.g. a block's ``when``)."""

    model: GuardModel
    kind: GuardKind
    source: str
    conditions: Mapping[str, Compiled]
    unless: Compiled | None

    @property
    def when(self) -> Compiled | None:
        """The guard's ``when`` condition, for kinds that have one."""
        return self.conditions.get("when")


@dataclass(frozen=True)
class HoldRule:
    """A hold as evaluated."""

    model: Hold
    when: Compiled


@dataclass(frozen=True)
class TierRule:
    """A tier as evaluated; ``severity`` is its 1-based position."""

    model: Tier
    severity: int
    when: Compiled


@dataclass(frozen=True)
class CompiledOffer:
    """An offer as evaluated: its model and compiled eligibility."""

    model: OfferRule
    when: Compiled


@dataclass(frozen=True)
class Policy:
    """A loaded, validated, compiled policy with all includes resolved."""

    header: PolicyHeader
    holds: tuple[HoldRule, ...]
    tiers: tuple[TierRule, ...]
    guards: tuple[GuardRule, ...]
    fingerprint: str
    canonical: str
    path: str
    packs: tuple[str, ...]
    flags: frozenset[str] = frozenset()  # declared by the policy and its packs
    offers: tuple[CompiledOffer, ...] = ()

    @property
    def id(self) -> str:
        return self.header.id

    @property
    def version(self) -> str:
        return self.header.version

    def to_bundle(self) -> bytes:
        """This policy and every file it includes as one self-contained blob
        (see :mod:`escalation.policy.bundle`); ``load_policy_bundle`` rebuilds it."""
        from escalation.policy.bundle import to_bundle

        return to_bundle(self)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # pickled as its bundle (compiled conditions are closures): rebuilt on load
        from escalation.policy.bundle import load_policy_bundle

        return (load_policy_bundle, (self.to_bundle(),))

    def tier(self, tier_id: str) -> TierRule:
        """The tier named ``tier_id`` (KeyError when unknown)."""
        for rule in self.tiers:
            if rule.model.id == tier_id:
                return rule
        raise KeyError(tier_id)


# ----------------------------------------------------------------- loading

# Labels and the default locale are presentation: a translated label must not
# make the same policy hash differently (fingerprints, decision ids and golden
# snapshots stay stable across translations).
_PRESENTATION = frozenset({"label", "labels"})


def canonical_json(
    document: PolicyDocument,
    guards: list[GuardRule],
    tiers: list[TierRule],
    holds: list[HoldRule],
    flags: frozenset[str] = frozenset(),
    offers: tuple[CompiledOffer, ...] = (),
) -> str:
    """Canonical JSON of the fully included policy: what it *means*, not how it
    is written (comments, key order, quoting, spacing, default values, labels
    and the reason locale do not change it; includes are replaced by their
    guards)."""
    header = document.policy.model_dump(mode="json", by_alias=True, exclude={"include", "flags", "locale"})
    tier_data = []
    for rule in tiers:
        data = rule.model.model_dump(
            mode="json", by_alias=True, exclude={"channel", "channels", "description", *_PRESENTATION}
        )
        data["channels"] = [c.value for c in rule.model.channel_order]
        data["when"] = rule.when.canonical
        for name, unused in (("offer_first", []), ("kind", "contact"), ("agency", None)):
            if data[name] == unused:  # absent when unused: older fingerprints stay valid
                del data[name]
        tier_data.append(data)
    hold_data = []
    for hold in holds:
        data = hold.model.model_dump(mode="json", by_alias=True, exclude=set(_PRESENTATION))
        data["when"] = hold.when.canonical
        hold_data.append(data)
    guard_data = []
    for guard in guards:
        data = guard.model.model_dump(mode="json", by_alias=True, exclude={"description", *_PRESENTATION})
        data["source"] = guard.source
        for name, compiled in guard.conditions.items():
            data[name] = compiled.canonical
        if guard.unless is not None:
            data["unless"] = guard.unless.canonical
        guard_data.append(data)
    doc = {
        "escalation": document.escalation,
        "policy": header,
        "holds": hold_data,
        "tiers": tier_data,
        "guards": guard_data,
    }
    if flags:  # absent when none are declared: older fingerprints stay valid
        doc["flags"] = sorted(flags)
    if offers:  # likewise
        offer_data = []
        for offer in offers:
            data = offer.model.model_dump(mode="json", by_alias=True, exclude={"description", *_PRESENTATION})
            data["when"] = offer.when.canonical
            offer_data.append(data)
        doc["offers"] = offer_data
    if document.agencies:
        doc["agencies"] = [
            a.model_dump(mode="json", exclude={"description", "name"}) for a in document.agencies
        ]
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
