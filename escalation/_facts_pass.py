"""The one pass of :func:`escalation._facts.derive` over an account's history
(oldest first): per-tier counts, contact windows, conversations, payments,
promises, consent given, call attempts and the agency placement, read from
each event once. A helper of ``derive``; the placement it finds is
:func:`escalation.placement.placement_facts`' (``tests/test_dident_facts.py``
holds them equal)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING

from escalation.record import Channel, Direction, HistoryEvent, Outcome

if TYPE_CHECKING:
    from escalation._facts_static import PolicyStatic

__all__ = ["Scan", "scan"]

# Enum members bound once: attribute access on an Enum class is slow on the hot path.
_OUTBOUND = Direction.OUTBOUND
_CONVERSATION, _PAYMENT, _PROMISE = Outcome.CONVERSATION, Outcome.PAYMENT, Outcome.PROMISE_TO_PAY
_CHANNELS = tuple(Channel)
_PHONE = Channel.PHONE
# the event fields the facts read, in one call on the event's `__dict__` (no attribute lookups)
_EVENT_FIELDS = itemgetter("at", "action", "channel", "outcome", "direction", "consent_until", "misdirected")


@dataclass(slots=True)
class Scan:
    """What one pass over the history found."""

    done: dict[str, int]  # counting actions per tier, this cycle
    tried: dict[str, int]  # actions per tier, this cycle, whatever their outcome
    counted_last: dict[str, dt.datetime]  # last counting action per tier, this cycle
    last_in_cycle: dict[str, dt.datetime]  # last action per tier, this cycle
    last_ever: dict[str, dt.datetime]  # last action per tier, ever
    actions_today: int  # outbound tier actions (not misdirected) since the start of today
    contacts_7d: dict[Channel, int]  # empty when not counted (the policy reads none)
    contacts_30d: dict[Channel, int]
    conversations_30d: int
    consent: list[tuple[dt.datetime, dt.datetime]]  # (given at, until)
    talks: list[float]  # conversations, oldest first: each ends the consent given before it
    attempts: list[HistoryEvent]  # this cycle's call attempts to the debtor, oldest first
    payments: list[HistoryEvent]
    promises: list[dt.datetime]  # this cycle's `promise_to_pay` outcomes
    placed: tuple[str | None, dt.datetime | None]  # the agency holding the account, since when


def scan(
    events: tuple[HistoryEvent, ...],
    stamps: tuple[float, ...],
    static: PolicyStatic,
    now_ts: float,
    today_ts: float,
    cycle_ts: float,
    contacts: bool,
) -> Scan:
    """One pass over ``events`` (oldest first, with their ``stamps``);
    ``contacts``: count the per-channel contact windows."""
    tier_set, counting, pending_counts = static.tier_set, static.counting, static.pending_counts
    third_party, placing = static.third_party, static.placing
    done = dict.fromkeys(static.tier_ids, 0)
    tried = dict.fromkeys(static.tier_ids, 0)
    counted_last: dict[str, dt.datetime] = {}
    last_in_cycle: dict[str, dt.datetime] = {}
    last_ever: dict[str, dt.datetime] = {}
    actions_today = 0
    week_ago, month_ago = now_ts - 7 * 86_400, now_ts - 30 * 86_400
    contacts_7d: dict[Channel, int] = dict.fromkeys(_CHANNELS, 0) if contacts else {}
    contacts_30d: dict[Channel, int] = dict.fromkeys(_CHANNELS, 0) if contacts else {}
    conversations_30d = 0
    consent: list[tuple[dt.datetime, dt.datetime]] = []
    talks: list[float] = []
    attempts: list[HistoryEvent] = []
    payments: list[HistoryEvent] = []
    promises: list[dt.datetime] = []
    agency: str | None = None
    since: dt.datetime | None = None
    for ts, event in zip(stamps, events, strict=True):
        at, action, channel, outcome, direction, consent_until, misdirected = _EVENT_FIELDS(event.__dict__)
        if direction is _OUTBOUND:
            if action in tier_set:  # a str: None is in no tier set
                last_ever[action] = at
                if ts >= today_ts and not misdirected:  # a wrong number reached someone else
                    actions_today += 1
                # an action without an outcome yet was dispatched: it counts as sent
                made = pending_counts[action] if outcome is None else outcome in counting[action]
                if ts >= cycle_ts:
                    tried[action] += 1
                    last_in_cycle[action] = at
                    if made:
                        done[action] += 1
                        counted_last[action] = at
                if made and action in placing:  # placement is not bound to the cycle
                    agency = placing[action]  # a recall's is None
                    since = at if agency is not None else None
            if channel is not None:
                if contacts and ts > month_ago:
                    contacts_30d[channel] += 1
                    if ts > week_ago:
                        contacts_7d[channel] += 1
                if (
                    channel is _PHONE
                    and ts >= cycle_ts
                    and not misdirected
                    and action not in third_party
                    and outcome is not None
                ):
                    attempts.append(event)
        if outcome is not None:
            if outcome is _CONVERSATION:
                talks.append(ts)
                if ts > month_ago:
                    conversations_30d += 1
            elif outcome is _PAYMENT:
                payments.append(event)
            elif outcome is _PROMISE and ts >= cycle_ts:
                promises.append(at)
        if consent_until is not None:
            consent.append((at, consent_until))
    return Scan(
        done,
        tried,
        counted_last,
        last_in_cycle,
        last_ever,
        actions_today,
        contacts_7d,
        contacts_30d,
        conversations_30d,
        consent,
        talks,
        attempts,
        payments,
        promises,
        (agency, since),
    )
