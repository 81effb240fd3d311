"""Guards: compliance limits on channels and actions.

Each kind answers, for one (tier, channel) at one instant: does it block,
and if so from when it would not (``until``), or ``None`` when only an event
(a payment, a withdrawn dispute, renewed consent) can lift it. Windows of
calendar days are counted in the account's time zone; contact hours must
hold in every zone the customer may be in.

**Adding a guard kind** is one module here (its model, subclassing
:class:`GuardBase` with a ``kind`` literal, and its ``check``) and one entry
in :data:`KINDS`, plus its section in ``docs/policy-language.md`` and its
tests; ``tests/test_architecture.py`` fails when an entry is incomplete."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from escalation.guards import block, consent, contact_hours, cooldown, frequency, inconvenient, prerequisite
from escalation.guards._base import (
    EventMatcher,
    GuardBase,
    GuardKind,
    GuardVerdict,
    Truth,
    address_label,
    applies,
    figures_wanted,
)
from escalation.guards.block import BlockGuard
from escalation.guards.consent import ConsentGuard
from escalation.guards.contact_hours import ContactHoursGuard, next_open, window_open
from escalation.guards.cooldown import CooldownGuard
from escalation.guards.frequency import FrequencyGuard
from escalation.guards.inconvenient import InconvenientGuard
from escalation.guards.prerequisite import Prerequisite, PrerequisiteGuard
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule, Tier

__all__ = [
    "KINDS",
    "BlockGuard",
    "ConsentGuard",
    "ContactHoursGuard",
    "CooldownGuard",
    "EventMatcher",
    "FrequencyGuard",
    "Guard",
    "GuardBase",
    "GuardKind",
    "GuardModel",
    "GuardVerdict",
    "InconvenientGuard",
    "Prerequisite",
    "PrerequisiteGuard",
    "address_label",
    "applies",
    "check_guard",
    "next_open",
    "window_open",
]

#: Every guard kind, by name: the one place a kind is registered.
KINDS: dict[str, GuardKind] = {
    kind.name: kind
    for kind in (
        contact_hours.KIND,
        frequency.KIND,
        cooldown.KIND,
        block.KIND,
        consent.KIND,
        prerequisite.KIND,
        inconvenient.KIND,
    )
}

if TYPE_CHECKING:
    GuardModel = GuardBase
else:
    #: Any guard's model: the union of the registered kinds' models.
    GuardModel = Union[tuple(kind.model for kind in KINDS.values())]  # noqa: UP007
#: A guard in a policy or pack document, told apart by its ``kind``.
Guard = Annotated[GuardModel, Field(discriminator="kind")]


def check_guard(
    rule: GuardRule,
    sit: Situation,
    tier: Tier,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    matcher: EventMatcher,
) -> GuardVerdict:
    """Evaluate one guard for (tier, channel) at instant ``at``.

    Which tiers a guard covers is settled (by :func:`applies`) before this is
    called; its verdict depends only on the channel and the instant, so it is
    memoised per decision (the same quiet-hours guard is asked about every
    tier and channel)."""
    key = ("verdict", id(rule), channel, at)
    verdict: GuardVerdict | None = sit.cache.get(key)
    if verdict is None:
        verdict = sit.cache[key] = _check(rule, sit, channel, at, truth, matcher)
    return verdict


def _check(
    rule: GuardRule, sit: Situation, channel: Channel, at: dt.datetime, truth: Truth, matcher: EventMatcher
) -> GuardVerdict:
    # Deliberately not given the tier: a verdict must depend only on (guard,
    # channel, instant) for the memo above to be right. Tier selection is `applies`.
    if rule.unless is not None and truth(f"guard:{rule.model.id}:unless"):
        if not figures_wanted(sit):
            return GuardVerdict(rule, False)  # lifted: its figures and note are the trace's
        facts = {name: sit.values.get(name) for name in rule.unless.fact_order}  # sorted
        return GuardVerdict(rule, False, facts=facts, note=f"lifted: `{rule.unless.source}` holds")
    return rule.kind.check(rule, rule.model, sit, channel, at, truth, matcher)
