"""Semantic checks and compilation of a loaded policy: tiers, holds and every
included guard are checked against each other (unknown or unreachable tiers,
duplicates, record dates) and their conditions compiled against the fact
catalogue. Every problem is collected, located, before anything is built."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from escalation._currencies import MINOR_UNITS
from escalation._facts import fact_catalogue
from escalation._language import RECORD_DATES, EventFilter
from escalation.errors import PolicyIssue
from escalation.guards import KINDS
from escalation.policy._compile import (
    CompiledOffer,
    GuardRule,
    HoldRule,
    Policy,
    TierRule,
    canonical_json,
)
from escalation.policy._expr import Compiled, ExprError, FactType, compile_expression
from escalation.policy._load import Collector, Loaded, hint
from escalation.policy._yaml import Located
from escalation.policy.schema import PackDocument, PolicyDocument
from escalation.record import KNOWN_FLAGS

__all__ = ["build", "check_raw_expressions"]


def build(
    document: PolicyDocument, located: Located, packs: list[Loaded], collector: Collector
) -> Policy | None:
    """The compiled policy, or ``None`` when ``collector`` gained any problem."""
    tiers = document.tiers
    tier_ids = [t.id for t in tiers]
    catalogue = fact_catalogue(tier_ids, document.policy.attributes)
    positions = {t.id: i for i, t in enumerate(tiers)}

    _unique(located, [("tiers", i, "id", t.id) for i, t in enumerate(tiers)], collector, "duplicate-tier")
    _unique(
        located, [("holds", i, "id", h.id) for i, h in enumerate(document.holds)], collector, "duplicate-hold"
    )

    tier_rules: list[TierRule] = []
    for index, tier in enumerate(tiers):
        for needed in tier.requires:
            if needed not in positions:
                collector.add(
                    located, ("tiers", index, "requires", needed), "unknown-tier",
                    f"`requires` names unknown tier `{needed}`" + hint(needed, tier_ids), key=True,
                )  # fmt: skip
            elif positions[needed] >= index:
                collector.add(
                    located, ("tiers", index, "requires", needed), "unreachable-tier",
                    f"tier `{tier.id}` requires `{needed}`, which is not below it on the ladder", key=True,
                )  # fmt: skip
            elif (cap := tiers[positions[needed]].repeat.max) is not None and cap < tier.requires[needed]:
                collector.add(
                    located, ("tiers", index, "requires", needed), "unreachable-tier",
                    f"tier `{tier.id}` requires {tier.requires[needed]} of `{needed}`, "
                    f"which may be taken at most {cap} times", key=True,
                )  # fmt: skip
        compiled = _compile(tier.when, catalogue, located, ("tiers", index, "when"), collector)
        if compiled is not None:
            tier_rules.append(TierRule(tier, index + 1, compiled))

    hold_rules: list[HoldRule] = []
    for index, hold in enumerate(document.holds):
        compiled = _compile(hold.when, catalogue, located, ("holds", index, "when"), collector)
        if hold.until is not None and hold.until not in RECORD_DATES:
            collector.add(
                located, ("holds", index, "until"), "unknown-date",
                f"`until` must name a record date: one of {', '.join(sorted(RECORD_DATES))}",
            )  # fmt: skip
        if compiled is not None:
            hold_rules.append(HoldRule(hold, compiled))

    guard_sources: list[tuple[Located, str, tuple[Any, ...]]] = [
        (located, document.policy.id, document.guards)
    ]
    pack_ids: list[str] = []
    for pack in packs:
        if isinstance(pack.document, PackDocument):
            guard_sources.append((pack.located, pack.document.pack.id, pack.document.guards))
            pack_ids.append(pack.document.pack.id)

    declared = set(document.policy.flags)
    for pack in packs:
        if isinstance(pack.document, PackDocument):
            declared.update(pack.document.pack.flags)
    vocabulary = sorted(KNOWN_FLAGS | declared)
    for index, tier in enumerate(tiers):
        _check_flags(tier.when, vocabulary, located, ("tiers", index, "when"), collector)
    for index, hold in enumerate(document.holds):
        _check_flags(hold.when, vocabulary, located, ("holds", index, "when"), collector)

    offers = _offers(document, catalogue, vocabulary, located, collector)
    _agencies(document, pack_ids, located, collector)

    guard_rules: list[GuardRule] = []
    seen_ids: dict[str, str] = {}
    for source_located, source, guards in guard_sources:
        for index, guard in enumerate(guards):
            loc: tuple[str | int, ...] = ("guards", index)
            if guard.id in seen_ids:
                collector.add(
                    source_located, (*loc, "id"), "duplicate-guard",
                    f"guard `{guard.id}` is already defined in `{seen_ids[guard.id]}`",
                )  # fmt: skip
                continue
            seen_ids[guard.id] = source
            for i, action in enumerate(guard.actions):
                if action not in positions:
                    collector.add(
                        source_located, (*loc, "actions", i), "unknown-tier",
                        f"guard names unknown tier `{action}`" + hint(action, tier_ids),
                    )  # fmt: skip
            kind = KINDS[guard.kind]
            _check_filters(guard, kind.filters, positions, source_located, loc, collector)
            conditions: dict[str, Compiled] = {}
            for name in kind.conditions:
                compiled = _compile(getattr(guard, name), catalogue, source_located, (*loc, name), collector)
                if compiled is not None:
                    conditions[name] = compiled
            for name in kind.record_dates:
                value = getattr(guard, name)
                if value is not None and value not in RECORD_DATES:
                    collector.add(
                        source_located, (*loc, name), "unknown-date", f"`{name}` must name a record date"
                    )
            for name in (*kind.conditions, "unless"):
                text = getattr(guard, name)
                if isinstance(text, str):
                    _check_flags(text, vocabulary, source_located, (*loc, name), collector)
            unless = None
            if guard.unless is not None:
                unless = _compile(guard.unless, catalogue, source_located, (*loc, "unless"), collector)
            guard_rules.append(GuardRule(guard, kind, source, conditions, unless))

    if collector.issues:
        return None
    canonical = canonical_json(document, guard_rules, tier_rules, hold_rules, frozenset(declared), offers)
    fingerprint = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    return Policy(
        header=document.policy,
        holds=tuple(hold_rules),
        tiers=tuple(tier_rules),
        guards=tuple(guard_rules),
        fingerprint=fingerprint,
        canonical=canonical,
        path=located.path,
        packs=tuple(pack_ids),
        flags=frozenset(declared),
        offers=offers,
    )


def _agencies(document: PolicyDocument, packs: list[str], located: Located, collector: Collector) -> None:
    """Every `place` tier names a declared agency; every agency follows every
    rule pack the policy includes (PRC outsourcing: the lender stays liable for
    its agencies' conduct; Regulation F binds a third-party collector)."""
    _unique(
        located,
        [("agencies", i, "id", a.id) for i, a in enumerate(document.agencies)],
        collector,
        "duplicate-agency",
    )
    ids = [a.id for a in document.agencies]
    for index, tier in enumerate(document.tiers):
        if tier.agency is not None and tier.agency not in ids:
            collector.add(
                located, ("tiers", index, "agency"), "unknown-agency",
                f"tier `{tier.id}` places with unknown agency `{tier.agency}`" + hint(tier.agency, ids),
            )  # fmt: skip
    for index, agency in enumerate(document.agencies):
        missing = [p for p in packs if p not in agency.regimes]
        if missing:
            collector.add(
                located, ("agencies", index, "regimes"), "agency-regimes",
                f"agency `{agency.id}` does not follow {', '.join(f'`{p}`' for p in missing)}, "
                "which the policy includes: its contacts must keep the same rules",
            )  # fmt: skip


def _offers(
    document: PolicyDocument,
    catalogue: Mapping[str, FactType],
    vocabulary: list[str],
    located: Located,
    collector: Collector,
) -> tuple[CompiledOffer, ...]:
    """The policy's offers compiled; every tier's ``offer_first`` must name one,
    and amounts fit the currency's minor unit."""
    _unique(
        located,
        [("offers", i, "id", o.id) for i, o in enumerate(document.offers)],
        collector,
        "duplicate-offer",
    )
    ids = [o.id for o in document.offers]
    places = MINOR_UNITS[document.policy.currency]
    compiled: list[CompiledOffer] = []
    for index, offer in enumerate(document.offers):
        where = ("offers", index, "when")
        _check_flags(offer.when, vocabulary, located, where, collector)
        minimum = getattr(offer, "min_instalment", None)
        if minimum is not None and minimum != minimum.quantize(Decimal(1).scaleb(-places)):
            collector.add(
                located, ("offers", index, "min_instalment"), "bad-amount",
                f"`{minimum}` has more decimal places than {document.policy.currency} allows ({places})",
            )  # fmt: skip
        when = _compile(offer.when, catalogue, located, where, collector)
        if when is not None:
            compiled.append(CompiledOffer(offer, when))
    for t_index, tier in enumerate(document.tiers):
        for o_index, name in enumerate(tier.offer_first):
            if name not in ids:
                collector.add(
                    located, ("tiers", t_index, "offer_first", o_index), "unknown-offer",
                    f"`offer_first` names unknown offer `{name}`" + hint(name, ids),
                )  # fmt: skip
    return tuple(compiled)


def _check_flags(
    text: str, vocabulary: list[str], located: Located, loc: tuple[str | int, ...], collector: Collector
) -> None:
    """A condition may only test for a known or declared flag (``'Dispute' in
    flags`` would never hold: a record carrying it is refused)."""
    try:
        tree = ast.parse(" ".join(text.split()), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return  # reported by the compiler
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        right, left = node.comparators[0], node.left
        if not (isinstance(node.ops[0], ast.In | ast.NotIn) and isinstance(right, ast.Name)):
            continue
        flag = left.value if isinstance(left, ast.Constant) else None
        if right.id == "flags" and isinstance(flag, str) and flag not in vocabulary:
            collector.add(
                located, loc, "unknown-flag",
                f"flag `{flag[:64]}` is neither known nor declared in `flags`" + hint(flag, vocabulary),
            )  # fmt: skip


def _check_filters(
    guard: Any,
    fields: tuple[str, ...],
    positions: Mapping[str, int],
    located: Located,
    loc: tuple[str | int, ...],
    collector: Collector,
) -> None:
    """Every tier a history-event filter of the guard names must exist."""
    filters: list[tuple[tuple[str | int, ...], EventFilter]] = []

    def collect(where: tuple[str | int, ...], value: Any) -> None:
        if isinstance(value, EventFilter):
            filters.append((where, value))
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                collect((*where, i), item)
        elif isinstance(value, BaseModel):  # a nested model (`any_of` items)
            for name in type(value).model_fields:
                collect((*where, name), getattr(value, name))

    for name in dict.fromkeys((*fields, "exclude")):  # every kind has `exclude`
        collect((*loc, name), getattr(guard, name))
    for where, flt in filters:
        for i, action in enumerate(flt.actions):
            if action not in positions:
                collector.add(
                    located, (*where, "actions", i), "unknown-tier", f"filter names unknown tier `{action}`"
                )


def _unique(
    located: Located, items: list[tuple[str, int, str, str]], collector: Collector, code: str
) -> None:
    seen: set[str] = set()
    for section, index, key, value in items:
        if value in seen:
            collector.add(located, (section, index, key), code, f"`{value}` is defined twice")
        seen.add(value)


def _compile(
    text: str,
    catalogue: Mapping[str, FactType],
    located: Located,
    loc: tuple[str | int, ...],
    collector: Collector,
) -> Compiled | None:
    try:
        return compile_expression(text, catalogue)
    except ExprError as exc:
        line, col = located.position(loc)
        collector.issues.append(PolicyIssue(located.path, line, col + exc.column, exc.code, exc.message))
        return None


def check_raw_expressions(loaded: Loaded, collector: Collector) -> None:
    """Compile the conditions of a file whose schema check failed, so that a
    schema error does not hide the expression errors of the same file."""
    data = loaded.located.data
    if not isinstance(data, dict):
        return
    raw_section = data.get("policy")
    section: dict[str, Any] = raw_section if isinstance(raw_section, dict) else {}
    raw_tiers = data.get("tiers")
    tiers: list[Any] = raw_tiers if isinstance(raw_tiers, list) else []
    tier_ids = [t["id"] for t in tiers if isinstance(t, dict) and isinstance(t.get("id"), str)]
    attributes = section.get("attributes") if isinstance(section.get("attributes"), dict) else {}
    catalogue = fact_catalogue(tier_ids, attributes)
    groups = (
        ("tiers", ("when",)),
        ("holds", ("when",)),
        ("guards", ("when", "unless")),
        ("offers", ("when",)),
    )
    for group, fields in groups:
        items = data.get(group)
        for index, item in enumerate(items if isinstance(items, list) else []):
            for name in fields:
                text = item.get(name) if isinstance(item, dict) else None
                if isinstance(text, str):
                    _compile(text, catalogue, loaded.located, (group, index, name), collector)
