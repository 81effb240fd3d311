"""The decision's trace: one entry per rule evaluated, with the figures it
read. Built only when asked for (bulk runs pass ``trace=False`` and pay
nothing for it)."""

from __future__ import annotations

from escalation._facts import Situation
from escalation._facts_static import json_value
from escalation.decision import TraceEntry, construct

__all__ = ["Recorder"]


def facts_of(names: tuple[str, ...], sit: Situation) -> dict[str, object]:
    """The named facts of ``sit`` in their JSON form."""
    values = sit.values
    return {name: json_value(values.get(name)) for name in names}


class Recorder:
    """Collects trace entries, or nothing at all when the caller wants no trace
    (bulk dry-runs): then neither entries nor their figures are built."""

    __slots__ = ("entries", "on")

    def __init__(self, on: bool) -> None:
        self.on = on
        self.entries: list[TraceEntry] = []

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
            entry = construct(
                TraceEntry, rule=rule, matched=matched, facts=facts, action=action, channel=channel, note=note
            )
            self.entries.append(entry)

    def facts(self, names: tuple[str, ...], sit: Situation) -> dict[str, object]:
        return facts_of(names, sit) if self.on else {}
