"""Guards: compliance limits on channels and actions.

Each kind answers, for one (tier, channel) at one instant: does it block,
and if so from when it would not (``until``), or ``None`` when only an event
(a payment, a withdrawn dispute, renewed consent) can lift it. Windows of
calendar days are counted in the account's time zone; contact hours must
hold in every zone the customer may be in."""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from escalation._calendar import is_holiday, start_of_day
from escalation._facts import Situation
from escalation.policy import (
    BlockGuard,
    ConsentGuard,
    ContactHoursGuard,
    CooldownGuard,
    EventFilter,
    FrequencyGuard,
    GuardRule,
    PrerequisiteGuard,
    Tier,
)
from escalation.record import Channel, HistoryEvent

__all__ = ["GuardVerdict", "applies", "check_guard", "next_open"]

Truth = Callable[[str], bool]
_DAY = dt.timedelta(days=1)
_SEARCH_DAYS = 21  # how far ahead to look for an open contact window


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """What one guard said about one (tier, channel) at one instant."""

    rule: GuardRule
    blocked: bool
    until: dt.datetime | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def applies(rule: GuardRule, tier: Tier, channel: Channel) -> bool:
    """Whether the guard covers this tier on this channel: every criterion it
    gives (channels, tags, actions) must match; an empty one matches all."""
    guard = rule.model
    if guard.channels and channel not in guard.channels:
        return False
    if guard.tags and not set(guard.tags) & set(tier.tags):
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
            if days is None or event.at < start_of_day(self.sit.local_date(start) + days * _DAY, self.sit.tz):
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
        out = []
        events, stamps = self.sit.events, self.sit.stamps
        for index in range(first, len(events)):
            if limit is not None and stamps[index] > limit:
                break
            event = events[index]
            if not self.matches(flt, event, defaults):
                continue
            if exclude and any(self.matches(x, event) for x in exclude):
                continue
            out.append(index)
        self.sit.cache[key] = out
        return out


@functools.lru_cache(maxsize=65_536)
def pseudonym(address: str | None) -> str:
    """A stable, non-reversible label for a contact address (phone number,
    e-mail) so that traces and decisions never carry the address itself."""
    if address is None:
        return "(no address)"
    return "addr:" + hashlib.sha256(address.encode()).hexdigest()[:10]


# ------------------------------------------------------------ contact hours


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _open_in(guard: ContactHoursGuard, instant: dt.datetime, tz: ZoneInfo) -> bool:
    local = instant.astimezone(tz)
    if ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()] not in guard.days:
        return False
    if guard.holidays is not None and is_holiday(guard.holidays, local.date()):
        return False
    minute = local.hour * 60 + local.minute
    return _minutes(guard.from_) <= minute < _minutes(guard.to)


def window_open(guard: ContactHoursGuard, instant: dt.datetime, zones: tuple[ZoneInfo, ...]) -> bool:
    """Whether ``instant`` is inside the window in every zone."""
    return all(_open_in(guard, instant, tz) for tz in zones)


def next_open(
    guard: ContactHoursGuard, instant: dt.datetime, zones: tuple[ZoneInfo, ...]
) -> dt.datetime | None:
    """The first instant at or after ``instant`` inside the window in every
    zone (the intersection of windows opens when the last of them opens)."""
    if window_open(guard, instant, zones):
        return instant
    opening = _minutes(guard.from_)
    candidates = []
    for tz in zones:
        first = instant.astimezone(tz).date()
        for offset in range(_SEARCH_DAYS):
            day = first + offset * _DAY
            local = dt.datetime.combine(day, dt.time(opening // 60, opening % 60), tzinfo=tz)
            # normalise through UTC so a wall time in a DST gap lands on a real instant
            candidate = local.astimezone(dt.UTC)
            if candidate > instant:
                candidates.append(candidate)
    for candidate in sorted(candidates):
        if window_open(guard, candidate, zones):
            return candidate.astimezone(instant.tzinfo)
    return None


# ------------------------------------------------------------ the kinds


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

    Which tiers a guard covers is settled (by :func:`applies`) before this is called; its verdict
    depends only on the channel and the instant, so it is memoised per decision
    (the same quiet-hours guard is asked about every tier and channel)."""
    key = ("verdict", id(rule), channel, at)
    verdict: GuardVerdict | None = sit.cache.get(key)
    if verdict is None:
        verdict = sit.cache[key] = _check(rule, sit, channel, at, truth, matcher)
    return verdict


def _check(
    rule: GuardRule,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    truth: Truth,
    matcher: EventMatcher,
) -> GuardVerdict:
    # Deliberately not given the tier: a verdict must depend only on (guard,
    # channel, instant) for the memo above to be right. Tier selection is `applies`.
    if rule.unless is not None and truth(f"guard:{rule.model.id}:unless"):
        facts = {name: sit.values.get(name) for name in sorted(rule.unless.facts)}
        return GuardVerdict(rule, False, facts=facts, note=f"lifted: `{rule.unless.source}` holds")
    guard = rule.model
    if isinstance(guard, ContactHoursGuard):
        return _contact_hours(rule, guard, sit, at)
    if isinstance(guard, FrequencyGuard):
        return _frequency(rule, guard, sit, channel, at, matcher)
    if isinstance(guard, CooldownGuard):
        return _cooldown(rule, guard, sit, channel, at, matcher)
    if isinstance(guard, BlockGuard):
        return _block(rule, guard, sit, at, truth)
    if isinstance(guard, ConsentGuard):
        opted = channel.value in sit.values["opt_out"]
        note = f"the customer opted out of {channel.value}" if opted else ""
        return GuardVerdict(rule, opted, None, {"opt_out": sorted(sit.values["opt_out"])}, note)
    assert isinstance(guard, PrerequisiteGuard)
    return _prerequisite(rule, guard, sit, at, matcher)


def _contact_hours(
    rule: GuardRule, guard: ContactHoursGuard, sit: Situation, at: dt.datetime
) -> GuardVerdict:
    key = ("local_times", at)
    local_times = sit.cache.get(key)
    if local_times is None:
        local_times = sit.cache[key] = {str(tz): at.astimezone(tz).strftime("%a %H:%M") for tz in sit.zones}
    if window_open(guard, at, sit.zones):
        return GuardVerdict(rule, False, facts={"local_time": local_times})
    opens = next_open(guard, at, sit.zones)
    window = f"{guard.from_}-{guard.to}"
    note = f"outside {window} in " + ", ".join(f"{z} ({t})" for z, t in local_times.items())
    return GuardVerdict(rule, True, opens, {"local_time": local_times, "window": window}, note)


def _window_days(guard: FrequencyGuard, day: dt.date) -> tuple[dt.date, dt.date]:
    if guard.window == "calendar_month":
        return day.replace(day=1), day
    assert isinstance(guard.window, int)
    return day - (guard.window - 1) * _DAY, day


def _release_day(guard: FrequencyGuard, day: dt.date, dates: list[dt.date]) -> dt.date | None:
    """First day after ``day`` whose window holds fewer than ``max`` of ``dates``
    (no new events assumed)."""
    if guard.max == 0:
        return None
    if guard.window == "calendar_month":
        return (day.replace(day=28) + 4 * _DAY).replace(day=1)
    assert isinstance(guard.window, int)
    for offset in range(1, guard.window + 1):
        candidate = day + offset * _DAY
        first = candidate - (guard.window - 1) * _DAY
        if sum(1 for d in dates if first <= d <= candidate) < guard.max:
            return candidate
    return day + guard.window * _DAY  # pragma: no cover - loop always finds one


def _strictest(verdicts: list[GuardVerdict]) -> GuardVerdict:
    """One verdict from the same guard counted in several zones: blocked if any
    zone blocks, until the latest release (none if any zone has none)."""
    blocking = [v for v in verdicts if v.blocked]
    if not blocking:
        return verdicts[0]
    for verdict in blocking:
        if verdict.until is None:
            return verdict
    return max(blocking, key=lambda v: v.until or _EPOCH)


_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _day_zones(guard: FrequencyGuard | CooldownGuard, sit: Situation) -> tuple[ZoneInfo, ...]:
    return (sit.tz,) if guard.days_in == "account" else sit.zones


def _day_of(sit: Situation, index: int, tz: ZoneInfo) -> dt.date:
    return sit.event_day(index) if tz is sit.tz else sit.events[index].at.astimezone(tz).date()


def _frequency(
    rule: GuardRule, guard: FrequencyGuard, sit: Situation, channel: Channel, at: dt.datetime, m: EventMatcher
) -> GuardVerdict:
    zones = _day_zones(guard, sit)
    verdicts = [_frequency_in(rule, guard, sit, channel, at, m, tz) for tz in zones]
    return _strictest(verdicts)


def _frequency_in(
    rule: GuardRule,
    guard: FrequencyGuard,
    sit: Situation,
    channel: Channel,
    at: dt.datetime,
    m: EventMatcher,
    tz: ZoneInfo,
) -> GuardVerdict:
    day = at.astimezone(tz).date()
    first, last = _window_days(guard, day)
    # Only events inside the window can count, now or on any later day.
    since = start_of_day(first, tz)
    selected = m.select(guard.count, guard.exclude, guard.channels or (channel,), before=at, since=since)
    groups: dict[str, list[dt.date]] = {}
    for index in selected:
        key = pseudonym(sit.events[index].address) if guard.per == "address" else "account"
        groups.setdefault(key, []).append(_day_of(sit, index, tz))
    if guard.per == "account":
        groups.setdefault("account", [])
    else:  # an address last used before the window is available: it counts 0
        for index in m.select(guard.count, guard.exclude, guard.channels or (channel,), before=at):
            groups.setdefault(pseudonym(sit.events[index].address), [])
    counts = {}
    for key, dates in groups.items():
        n = 0
        for d in dates:
            if first <= d <= last:
                n += 1
        counts[key] = n
    window = guard.window if guard.window == "calendar_month" else f"{guard.window}d"
    facts: dict[str, Any] = {"counted": counts, "max": guard.max, "window": f"{first}..{last} ({window})"}
    if tz is not sit.tz:
        facts["zone"] = str(tz)
    at_limit = {key for key, n in counts.items() if n >= guard.max}
    if not groups or at_limit != set(counts):
        if guard.max == 0:
            return GuardVerdict(rule, True, None, facts, "no such contact is allowed")
        return GuardVerdict(rule, False, facts=facts)
    releases = [_release_day(guard, day, groups[key]) for key in at_limit]
    known = [r for r in releases if r is not None]
    until = start_of_day(min(known), tz) if known and len(known) == len(releases) else None
    total = max(counts.values())
    note = f"{total} counted in {first}..{last}; the limit is {guard.max}"
    return GuardVerdict(rule, True, until, facts, note)


def _cooldown(
    rule: GuardRule, guard: CooldownGuard, sit: Situation, channel: Channel, at: dt.datetime, m: EventMatcher
) -> GuardVerdict:
    del channel
    return _strictest([_cooldown_in(rule, guard, sit, at, m, tz) for tz in _day_zones(guard, sit)])


def _cooldown_in(
    rule: GuardRule, guard: CooldownGuard, sit: Situation, at: dt.datetime, m: EventMatcher, tz: ZoneInfo
) -> GuardVerdict:
    day = at.astimezone(tz).date()
    since = start_of_day(day - (guard.wait - 1) * _DAY, tz)  # older events have run out
    selected = m.select(guard.after, guard.exclude, before=at, since=since)
    if not selected:
        return GuardVerdict(rule, False, facts={"last_event": None, "wait_days": guard.wait})
    last = max(_day_of(sit, index, tz) for index in selected)
    ends = last + guard.wait * _DAY  # the event's day is day 1
    facts: dict[str, Any] = {"last_event": last.isoformat(), "wait_days": guard.wait}
    if tz is not sit.tz:
        facts["zone"] = str(tz)
    if day < ends:
        note = f"within {guard.wait} days of {last.isoformat()} (day 1); ends {ends.isoformat()}"
        return GuardVerdict(rule, True, start_of_day(ends, tz), facts, note)
    return GuardVerdict(rule, False, facts=facts)


def _block(rule: GuardRule, guard: BlockGuard, sit: Situation, at: dt.datetime, truth: Truth) -> GuardVerdict:
    assert rule.when is not None
    facts = {name: sit.values.get(name) for name in sorted(rule.when.facts)}
    if not truth(f"guard:{guard.id}:when"):
        return GuardVerdict(rule, False, facts=facts)
    until: dt.datetime | None = None
    if guard.until is not None:
        value = sit.record_date(guard.until)
        if isinstance(value, dt.datetime):
            until = value
        elif isinstance(value, dt.date):
            until = start_of_day(value + _DAY, sit.tz)
        if until is not None and until <= at:
            until = None  # the date has passed yet the condition still holds
    return GuardVerdict(rule, True, until, facts, f"`{rule.when.source}` holds")


def _prerequisite(
    rule: GuardRule, guard: PrerequisiteGuard, sit: Situation, at: dt.datetime, m: EventMatcher
) -> GuardVerdict:
    pending: list[dt.datetime] = []
    seen: list[str] = []
    for alt in guard.alternatives():
        starts: list[dt.datetime] = []
        if alt.record_date is not None:
            value = sit.record_date(alt.record_date)
            if isinstance(value, dt.datetime):
                starts.append(value)
            elif isinstance(value, dt.date):
                starts.append(start_of_day(value, sit.tz))
        else:
            assert alt.event is not None
            starts.extend(sit.events[i].at for i in m.select(alt.event, guard.exclude, before=at))
        undo = (
            [sit.events[i].at for i in m.select(alt.undone_by, (), before=at)]
            if alt.undone_by is not None
            else []
        )
        # undone since (e.g. the letter came back undeliverable)
        valid = [start for start in starts if not any(u >= start for u in undo)]
        if alt.nth > 1 or alt.min_gap is not None:
            valid = _nth(valid, alt.nth, alt.min_gap or 0, sit)
        for start in valid:
            if alt.calendar_days:  # whole local days: met when day `date + N` begins
                ready = start_of_day(sit.local_date(start) + alt.at_least // _DAY * _DAY, sit.tz)
            else:
                ready = start + alt.at_least
            seen.append(start.isoformat())
            if ready <= at:
                return GuardVerdict(rule, False, facts={"satisfied_by": start.isoformat()})
            pending.append(ready)
    until = min(pending) if pending else None
    note = (
        "prerequisite not met" if not pending else f"prerequisite met at {until.isoformat() if until else ''}"
    )
    return GuardVerdict(rule, True, until, {"events": seen}, note)


def _nth(starts: list[dt.datetime], nth: int, gap: int, sit: Situation) -> list[dt.datetime]:
    """The earliest ``nth`` event of a chain in which each counted event is at
    least ``gap`` calendar days after the one counted before it (empty when
    there are not that many)."""
    chain: list[dt.datetime] = []
    for start in sorted(starts):
        if not chain or (sit.local_date(start) - sit.local_date(chain[-1])).days >= gap:
            chain.append(start)
            if len(chain) == nth:
                return [start]
    return []
