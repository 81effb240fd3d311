"""Holds: conditions that stop everything (a dispute, bankruptcy, a promise
to pay). The first hold that applies — and has not expired — decides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from escalation import _reasons as fmt
from escalation._calendar import start_of_day
from escalation._facts import Situation
from escalation._trace import Recorder, entry
from escalation.policy import HoldRule

__all__ = ["HoldOutcome", "first_hold", "first_hold_planned"]

Truth = Callable[[str], bool]
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    """The hold that applies, and until when (local time); the reason is
    rendered from it (:class:`escalation.reasons.parts.HoldParts`)."""

    rule: HoldRule
    until: dt.datetime | None

    @property
    def hold(self) -> str:
        """The hold's id."""
        return self.rule.model.id


def _hold_until(hold: HoldRule, sit: Situation) -> dt.datetime | None:
    if hold.model.until is None:
        return None
    recorded = sit.record_date(hold.model.until)
    if recorded is None:
        return None
    # a date: the hold lasts to the end of that day
    until = recorded if isinstance(recorded, dt.datetime) else start_of_day(recorded + _DAY, sit.tz)
    if hold.model.grace is not None:
        until += hold.model.grace
    return until


def first_hold(
    holds: Iterable[HoldRule], sit: Situation, truth: Truth, trace: Recorder
) -> HoldOutcome | None:
    """The first hold that applies at ``sit.now`` (each one evaluated is traced)."""
    return first_hold_planned(tuple((hold, f"hold:{hold.model.id}") for hold in holds), sit, truth, trace)


def first_hold_planned(
    holds: tuple[tuple[HoldRule, str], ...],
    sit: Situation,
    truth: Truth | None,
    trace: Recorder,
) -> HoldOutcome | None:
    """The first of the plan's holds (each with its rule name) that applies at
    ``sit.now``, each one evaluated traced; ``truth`` ``None`` means the native
    evaluator: each hold's own closure is asked directly."""
    on = trace.on
    add = trace.entries.append
    figures = trace.facts
    values = sit.values
    for hold, rule in holds:
        when = hold.when
        if not (when.truth(values) is True if truth is None else truth(rule)):
            if on:
                add(entry(rule, False, figures(when.fact_order, sit)))
            continue
        until = _hold_until(hold, sit)
        if until is not None and until <= sit.now:
            if on:
                note = f"expired at {fmt.instant(until, sit)}"
                add(entry(rule, False, figures(when.fact_order, sit), None, None, note))
            continue
        until_local = until.astimezone(sit.tz) if until else None
        if on:
            note = (
                f"holds until {until_local.isoformat()}" if until_local else "holds until an event lifts it"
            )
            add(entry(rule, True, figures(when.fact_order, sit), None, None, note))
        return HoldOutcome(hold, until_local)
    return None
