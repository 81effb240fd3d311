"""What every guard kind shares: the common model fields, the verdict, which
tiers a guard covers, and the matcher that selects history events.

Each kind lives in its own module beside this one (its model and its
checker together) and is registered once in :data:`escalation.guards.KINDS`."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from escalation._calendar import start_of_day
from escalation._language import MODEL, Authority, EventFilter, Identifier, Label, Labels, RuleId, Tag
from escalation.record import Channel, HistoryEvent

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule, Tier

__all__ = [
    "EventMatcher",
    "GuardBase",
    "GuardKind",
    "GuardVerdict",
    "Truth",
    "address_label",
    "applies",
    "figures_wanted",
]

Truth = Callable[[str], bool]
DAY = dt.timedelta(days=1)
EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


class GuardBase(BaseModel):
    """Fields every guard kind has: what it applies to, why, and its source."""

    model_config = MODEL

    if TYPE_CHECKING:
        kind: str  # each kind declares its own literal name (kept last in the schema)
    id: RuleId
    channels: tuple[Channel, ...] = ()
    tags: tuple[Tag, ...] = ()
    actions: tuple[Identifier, ...] = ()
    reason: str = Field(min_length=1, max_length=500)
    cite: str = Field(min_length=1, max_length=500)
    authority: Authority | None = None
    except_tags: tuple[Tag, ...] = Field(
        default=(),
        description="tiers carrying any of these tags are outside the guard "
        "(e.g. the notices a cease-communication request still allows)",
    )
    all_tags: tuple[Tag, ...] = Field(
        default=(),
        description="the guard covers only tiers carrying every one of these tags "
        "(with `tags`: every one of these and any one of those)",
    )
    unless: str | None = None
    exclude: tuple[EventFilter, ...] = ()
    description: str | None = None
    label: Label | None = Field(
        default=None,
        description="what the guard stands for in a reason, in `en` (not fingerprinted); "
        "without one, reasons quote the start of `reason`",
    )
    labels: Labels = {}


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """What one guard said about one (tier, channel) at one instant."""

    rule: GuardRule
    blocked: bool
    until: dt.datetime | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    note: str = ""


Checker = Callable[["GuardRule", Any, "Situation", Channel, dt.datetime, Truth, "EventMatcher"], GuardVerdict]


@dataclass(frozen=True)
class GuardKind:
    """One guard kind: everything the loader and the evaluator need of it.

    ``model`` is its pydantic model (its ``kind`` literal is the name);
    ``check(rule, guard, sit, channel, at, truth, matcher)`` gives the verdict;
    ``filters`` names the model fields that hold history-event filters (checked
    at load for unknown tiers); ``conditions`` the fields that hold expressions
    (compiled at load; the evaluator asks ``truth("guard:<id>:<field>")``);
    ``record_dates`` the fields that must name a record date; ``doc`` is the
    heading of its section in ``docs/policy-language.md``."""

    name: str
    model: type[GuardBase]
    check: Checker
    doc: str
    filters: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    record_dates: tuple[str, ...] = ()


def applies(rule: GuardRule, tier: Tier, channel: Channel) -> bool:
    """Whether the guard covers this tier on this channel: every criterion it
    gives (channels, tags, actions) must match; an empty one matches all."""
    guard = rule.model
    if guard.channels and channel not in guard.channels:
        return False
    if guard.tags and not set(guard.tags) & set(tier.tags):
        return False
    if guard.all_tags and not set(guard.all_tags) <= set(tier.tags):
        return False
    if guard.except_tags and set(guard.except_tags) & set(tier.tags):
        return False
    return not (guard.actions and tier.id not in guard.actions)


class EventMatcher:
    """Matches history events against filters, knowing each tier's tags and
    the customer's consent windows. Selections are memoised per decision."""

    def __init__(self, sit: Situation, tags_of: Mapping[str, tuple[str, ...]]) -> None:
        self.sit = sit
        self.tags_of = tags_of

    def in_consent(self, event: HistoryEvent, days: int | None = None) -> bool:
        """Whether ``event`` falls after a consent was given and before it ended
        (at most ``days`` calendar days, the consent's own day being day 1)."""
        for start, end in self.sit.consent_windows:
            if not start < event.at <= end:
                continue
            if days is None or event.at < start_of_day(self.sit.local_date(start) + days * DAY, self.sit.tz):
                return True
        return False

    def matches(self, flt: EventFilter, event: HistoryEvent, channels: tuple[Channel, ...] = ()) -> bool:
        # StrEnum members compare equal to their string values: no `.value` lookups here.
        if flt.direction != "any" and event.direction != flt.direction:
            return False
        channels = flt.channels or channels
        if channels and event.channel not in channels:
            return False
        if flt.outcomes and event.outcome not in flt.outcomes:
            return False
        if flt.actions and event.action not in flt.actions:
            return False
        if flt.tags:
            tags = self.tags_of.get(event.action or "", ())
            if not set(flt.tags) & set(tags):
                return False
        if flt.misdirected is not None and event.misdirected != flt.misdirected:
            return False
        if flt.in_cycle is not None and (event.at >= self.sit.cycle_start) != flt.in_cycle:
            return False
        return flt.during_consent is None or self.in_consent(event, flt.consent_days) == flt.during_consent

    def select(
        self,
        flt: EventFilter,
        exclude: tuple[EventFilter, ...],
        default_channels: Iterable[Channel] = (),
        before: dt.datetime | None = None,
        since: dt.datetime | None = None,
    ) -> list[int]:
        """Indices (into ``sit.events``, oldest first) of the events that match
        ``flt`` and no ``exclude`` filter, at or after ``since`` and up to the
        instant ``before``."""
        defaults = tuple(default_channels)
        limit = before.timestamp() if before is not None else None
        first = bisect.bisect_left(self.sit.stamps, since.timestamp()) if since is not None else 0
        key = ("select", id(flt), id(exclude), defaults, limit, first)
        cached = self.sit.cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        events, stamps = self.sit.events, self.sit.stamps
        # stamps are sorted (oldest first): the events up to `before` end at one bisection
        end = len(events) if limit is None else bisect.bisect_right(stamps, limit, first)
        out = scanner(flt, defaults, self.tags_of)(events, first, end, self)
        if exclude and out:
            excluded = [predicate(x, (), self.tags_of) for x in exclude]
            out = [i for i in out if not any(x(events[i], self) for x in excluded)]
        self.sit.cache[key] = out
        return out


Predicate = Callable[[HistoryEvent, "EventMatcher"], bool]
TagsOf = Mapping[str, tuple[str, ...]]
_PREDICATES: dict[tuple[int, tuple[Channel, ...], int], tuple[EventFilter, TagsOf, Predicate]] = {}


def predicate(flt: EventFilter, default_channels: tuple[Channel, ...], tags_of: TagsOf) -> Predicate:
    """:meth:`EventMatcher.matches` for one filter, its criteria read once: a
    policy's filters are asked about every event of every decision. Built
    once per (filter, default channels, tier tags)."""
    key = (id(flt), default_channels, id(tags_of))
    found = _PREDICATES.get(key)
    if found is not None and found[0] is flt and found[1] is tags_of:  # the entry holds both: ids not reused
        return found[2]
    made = _compile(flt, default_channels, tags_of)
    if len(_PREDICATES) >= 4096:
        _PREDICATES.clear()
    _PREDICATES[key] = (flt, tags_of, made)
    return made


def _compile(flt: EventFilter, defaults: tuple[Channel, ...], tags_of: TagsOf) -> Predicate:
    direction = None if flt.direction == "any" else flt.direction
    channels = frozenset(flt.channels or defaults)
    outcomes, actions = frozenset(flt.outcomes), frozenset(flt.actions)
    # the tiers (actions) carrying any of the filter's tags
    tagged = frozenset(a for a, tags in tags_of.items() if set(flt.tags) & set(tags)) if flt.tags else None
    misdirected, in_cycle = flt.misdirected, flt.in_cycle
    during, days = flt.during_consent, flt.consent_days

    def matches(event: HistoryEvent, m: EventMatcher) -> bool:
        if direction is not None and event.direction != direction:
            return False
        if channels and event.channel not in channels:
            return False
        if outcomes and event.outcome not in outcomes:
            return False
        if actions and event.action not in actions:
            return False
        if tagged is not None and (event.action or "") not in tagged:
            return False
        if misdirected is not None and event.misdirected != misdirected:
            return False
        if in_cycle is not None and (event.at >= m.sit.cycle_start) != in_cycle:
            return False
        return during is None or m.in_consent(event, days) == during

    return matches


Scanner = Callable[[Sequence[HistoryEvent], int, int, "EventMatcher"], list[int]]
_SCANNERS: dict[tuple[int, tuple[Channel, ...], int], tuple[EventFilter, TagsOf, Scanner]] = {}


def scanner(flt: EventFilter, default_channels: tuple[Channel, ...], tags_of: TagsOf) -> Scanner:
    """``scan(events, first, end, matcher)``: the indices in ``first..end-1`` of
    the events :func:`predicate` accepts, its tests written out in one loop
    (no call per event; ``select`` scans a window of the history per guard)."""
    key = (id(flt), default_channels, id(tags_of))
    found = _SCANNERS.get(key)
    if found is not None and found[0] is flt and found[1] is tags_of:  # the entry holds both: ids not reused
        return found[2]
    made = _compile_scan(flt, default_channels, tags_of)
    if len(_SCANNERS) >= 4096:
        _SCANNERS.clear()
    _SCANNERS[key] = (flt, tags_of, made)
    return made


def _compile_scan(flt: EventFilter, defaults: tuple[Channel, ...], tags_of: TagsOf) -> Scanner:
    # the criteria `_compile` reads, read once; each event tested in the same order
    direction = None if flt.direction == "any" else flt.direction
    channels = frozenset(flt.channels or defaults)
    outcomes, actions = frozenset(flt.outcomes), frozenset(flt.actions)
    tagged = frozenset(a for a, tags in tags_of.items() if set(flt.tags) & set(tags)) if flt.tags else None
    misdirected, in_cycle = flt.misdirected, flt.in_cycle
    during, days = flt.during_consent, flt.consent_days

    def scan(events: Sequence[HistoryEvent], first: int, end: int, m: EventMatcher) -> list[int]:
        out = []
        for i in range(first, end):
            event = events[i]
            if direction is not None and event.direction != direction:
                continue
            if channels and event.channel not in channels:
                continue
            if outcomes and event.outcome not in outcomes:
                continue
            if actions and event.action not in actions:
                continue
            if tagged is not None and (event.action or "") not in tagged:
                continue
            if misdirected is not None and event.misdirected != misdirected:
                continue
            if in_cycle is not None and (event.at >= m.sit.cycle_start) != in_cycle:
                continue
            if during is not None and m.in_consent(event, days) != during:
                continue
            out.append(i)
        return out

    return scan


def figures_wanted(sit: Situation) -> bool:
    """Whether a verdict that does not block needs its figures: only the
    trace reads them, and the ladder marks a decision without one
    (``sit.cache["trace"] = False``); other callers always get them."""
    return sit.cache.get("trace") is not False


def address_label(sit: Situation, address: str | None) -> str:
    """The label of a contact address in traces: ``address 1``, ``address 2``…
    in order of first use in the account's history. Nothing derived from the
    address itself (a hash of a phone number is reversed by trying every
    number), so decisions and traces carry no personal data, and a masked
    record (equal addresses stay equal) gets the same labels on replay."""
    if address is None:
        return "(no address)"
    labels: dict[str, str] | None = sit.cache.get("address_labels")
    if labels is None:
        labels = {}
        for event in sit.events:
            if event.address is not None and event.address not in labels:
                labels[event.address] = f"address {len(labels) + 1}"
        sit.cache["address_labels"] = labels
    return labels[address]


def strictest(verdicts: list[GuardVerdict]) -> GuardVerdict:
    """One verdict from the same guard counted in several zones: blocked if any
    zone blocks, until the latest release (none if any zone has none)."""
    blocking = [v for v in verdicts if v.blocked]
    if not blocking:
        return verdicts[0]
    for verdict in blocking:
        if verdict.until is None:
            return verdict
    return max(blocking, key=lambda v: v.until or EPOCH)


def day_zones(days_in: str, sit: Situation) -> tuple[ZoneInfo, ...]:
    """The zones whose calendar days a window counts in."""
    return (sit.tz,) if days_in == "account" else sit.zones


def day_of(sit: Situation, index: int, tz: ZoneInfo) -> dt.date:
    """The calendar date of ``sit.events[index]`` in ``tz``."""
    return sit.event_day(index) if tz is sit.tz else sit.events[index].at.astimezone(tz).date()
