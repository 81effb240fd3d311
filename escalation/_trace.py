"""The decision's trace: one entry per rule evaluated, with the figures it
read. Built only when asked for (bulk runs pass ``trace=False`` and pay
nothing for it); when asked for, built cheaply: each fact is put in its JSON
form once per decision, and rules reading the same facts share one dict of
figures."""

from __future__ import annotations

from typing import Any

from escalation._facts import Situation
from escalation._facts_static import json_value
from escalation.decision import TraceEntry, new_model, set_extra, set_fields, set_private

__all__ = ["Recorder", "entry"]

# values json_value returns unchanged (guards build lists and dicts from JSON-ready parts)
_READY = frozenset((int, str, bool, type(None), list, dict))
_PLAIN = frozenset((int, str, bool))


def facts_of(names: tuple[str, ...], sit: Situation) -> dict[str, object]:
    """The named facts of ``sit`` in their JSON form."""
    values = sit.values
    return {name: json_value(values.get(name)) for name in names}


def entry(
    rule: str,
    matched: bool,
    facts: dict[str, Any],
    action: str | None = None,
    channel: str | None = None,
    note: str | None = None,
) -> TraceEntry:
    """A :class:`TraceEntry` from values the engine knows to be valid (positional:
    the ladder and holds make some twenty per traced decision): what
    ``decision.construct`` builds, without its keyword dict and field-name set
    built per call (a third cheaper)."""
    model = new_model(TraceEntry)
    _set(
        model,
        "__dict__",
        {
            "rule": rule,
            "matched": matched,
            "facts": facts,
            "action": action,
            "channel": channel,
            "note": note,
        },
    )
    set_fields(model, set(_ENTRY_FIELDS))
    set_extra(model, None)
    set_private(model, None)
    return model


_set = object.__setattr__
_ENTRY_FIELDS = frozenset(TraceEntry.model_fields)


def json_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` in JSON form: the dict itself when every value already is
    (most guards' figures are built JSON-ready), else a converted copy."""
    for value in facts.values():
        if value.__class__ not in _READY:
            return {k: json_value(x) for k, x in facts.items()}
    return facts


class Recorder:
    """Collects trace entries, or nothing at all when the caller wants no trace
    (bulk dry-runs): then neither entries nor their figures are built."""

    __slots__ = ("_json", "entries", "on", "shared")

    def __init__(self, on: bool) -> None:
        self.on = on
        self.entries: list[TraceEntry] = []
        # the figures dict of each fact-name tuple read so far in this decision
        # (the ladder looks there first), and each fact's JSON form (a set of
        # flags is sorted once, not per rule)
        self.shared: dict[tuple[str, ...], dict[str, object]] = {}
        self._json: dict[str, object] = {}

    def add(
        self,
        *,
        rule: str,
        matched: bool,
        facts: dict[str, object],
        action: str | None = None,
        channel: str | None = None,
        note: str | None = None,
    ) -> None:
        if self.on:
            self.entries.append(entry(rule, matched, facts, action, channel, note))

    def facts(self, names: tuple[str, ...], sit: Situation) -> dict[str, object]:
        """The named facts in JSON form; rules naming the same facts (the same
        sorted tuple) in one decision share one dict."""
        if not self.on:
            return {}
        shared = self.shared.get(names)
        if shared is None:
            known, values = self._json, sit.values
            shared = self.shared[names] = {}
            for name in names:
                if name in known:  # (operators, not `get` calls: some fifty a traced decision)
                    shared[name] = known[name]
                    continue
                raw = values.get(name)
                # most facts are already in JSON form (json_value would return them as they are)
                value = known[name] = raw if raw is None or raw.__class__ in _PLAIN else json_value(raw)
                shared[name] = value
        return shared
