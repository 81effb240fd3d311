"""``consent``: never use a channel the customer opted out of — or, with
``confirm_on``, allow the tiers it covers one confirmation of the opt-out on
that channel and nothing else."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from escalation._language import EventFilter
from escalation.guards._base import EventMatcher, GuardBase, GuardKind, GuardVerdict, Truth, figures_wanted
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["KIND", "ConsentGuard"]


class ConsentGuard(GuardBase):
    """Never use a channel the customer opted out of."""

    kind: Literal["consent"]
    confirm_on: tuple[Channel, ...] = Field(
        default=(),
        description="confirmation mode: the tiers this guard covers (give `tags`) may use a channel "
        "listed here once after the customer opted out of it (`opt_out_at`), to confirm the "
        "opt-out; never a channel the customer did not opt out of, never a second time",
    )


def check(
    rule: GuardRule,
    guard: ConsentGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    matcher: EventMatcher,
) -> GuardVerdict:
    """Blocked on a channel in ``opt_out``; only renewed consent lifts it."""
    opted = channel.value in sit.values["opt_out"]
    if not opted and not guard.confirm_on and not figures_wanted(sit):
        return GuardVerdict(rule, False)
    facts: dict[str, object] = {"opt_out": sorted(sit.values["opt_out"])}
    if guard.confirm_on:
        return _confirmation(rule, guard, sit, channel, at, matcher, opted, facts)
    note = f"the customer opted out of {channel.value}" if opted else ""
    return GuardVerdict(rule, opted, None, facts, note)


def _confirmation(
    rule: GuardRule,
    guard: ConsentGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    matcher: EventMatcher,
    opted: bool,
    facts: dict[str, object],
) -> GuardVerdict:
    if not opted or channel not in guard.confirm_on:
        return GuardVerdict(rule, True, None, facts, f"no opt-out of {channel.value} to confirm")
    received = sit.account.opt_out_at.get(channel)
    if received is None:
        return GuardVerdict(
            rule, True, None, facts, f"when the opt-out of {channel.value} came is not recorded"
        )
    facts["opt_out_at"] = received.isoformat()
    sent = EventFilter(channels=(channel,), tags=guard.tags + guard.all_tags)
    # not `matcher.select`: its memo is keyed by the filter's id, and this filter is temporary
    done = [e.at for e in sit.events if received <= e.at <= at and matcher.matches(sent, e)]
    if done:
        facts["confirmed_at"] = min(done).isoformat()
        return GuardVerdict(rule, True, None, facts, f"the opt-out of {channel.value} was already confirmed")
    return GuardVerdict(rule, False, facts=facts)


KIND = GuardKind("consent", ConsentGuard, check, doc="consent")
