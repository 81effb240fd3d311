"""Per-guard checkers specialised once per policy: what ``check_guard`` (its
``_check``) answers for one guard, with the guard's condition names, fact
lists, notes and windows prepared when the policy is planned instead of on
every check. The ladder calls these; ``check_guard`` stays the reference
(``tests/test_dladder_guards.py`` holds them equal)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from escalation._calendar import is_holiday, start_of_day
from escalation._language import WEEKDAYS
from escalation.guards._base import DAY, EventMatcher, GuardVerdict, Truth
from escalation.guards.block import BlockGuard
from escalation.guards.consent import ConsentGuard
from escalation.guards.contact_hours import ContactHoursGuard, local_times, minutes
from escalation.guards.frequency import FrequencyGuard, _release_day
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation._facts import Situation
    from escalation.policy import GuardRule

__all__ = ["FastCheck", "specialise"]

#: ``check(sit, channel, at, truth, matcher)``: one guard's verdict.
FastCheck = Callable[["Situation", Channel, dt.datetime, Truth, EventMatcher], GuardVerdict]


def specialise(rule: GuardRule) -> FastCheck:
    """The checker of one guard: ``check_guard``'s verdict, without its memo
    (the ladder keeps one per decision).

    A verdict that does not block, asked without a trace, has no figures: the
    one such verdict of each guard is built here and returned every time (a
    frozen dataclass costs microseconds to build; its empty ``facts`` is
    never filled — verdicts are not modified once made)."""
    model = rule.model
    inner: FastCheck
    if isinstance(model, BlockGuard):
        inner = _block(rule, model)
    elif isinstance(model, ConsentGuard) and not model.confirm_on:
        inner = _consent(rule)
    elif isinstance(model, ContactHoursGuard):
        inner = _hours(rule, model)
    elif isinstance(model, FrequencyGuard) and model.per == "account":
        inner = _frequency(rule, model)
    else:  # the kinds that read the history: their own checker, bound once
        inner = partial(rule.kind.check, rule, model)
    if rule.unless is None:
        return inner
    return _lifted(rule, rule.unless.fact_order, rule.unless.source, inner)


def _lifted(rule: GuardRule, order: tuple[str, ...], source: str, inner: FastCheck) -> FastCheck:
    name = f"guard:{rule.model.id}:unless"
    clear = GuardVerdict(rule, False)
    note = f"lifted: `{source}` holds"

    def check(
        sit: Situation, channel: Channel, at: dt.datetime, truth: Truth, m: EventMatcher
    ) -> GuardVerdict:
        if truth(name):
            if sit.cache.get("trace") is False:
                return clear  # lifted: its figures and note are the trace's
            values = sit.values
            return GuardVerdict(rule, False, facts={n: values.get(n) for n in order}, note=note)
        return inner(sit, channel, at, truth, m)

    return check


def _block(rule: GuardRule, model: BlockGuard) -> FastCheck:
    when = rule.conditions["when"]
    name, order, note, until_date = (
        f"guard:{model.id}:when",
        when.fact_order,
        f"`{when.source}` holds",
        model.until,
    )
    clear = GuardVerdict(rule, False)

    def check(
        sit: Situation, channel: Channel, at: dt.datetime, truth: Truth, m: EventMatcher
    ) -> GuardVerdict:
        holds = truth(name)
        if not holds and sit.cache.get("trace") is False:
            return clear
        values = sit.values
        facts = {n: values.get(n) for n in order}
        if not holds:
            return GuardVerdict(rule, False, facts=facts)
        until: dt.datetime | None = None
        if until_date is not None:
            value = sit.record_date(until_date)
            if isinstance(value, dt.datetime):
                until = value
            elif isinstance(value, dt.date):
                until = start_of_day(value + DAY, sit.tz)
            if until is not None and until <= at:
                until = None  # the date has passed yet the condition still holds
        return GuardVerdict(rule, True, until, facts, note)

    return check


def _consent(rule: GuardRule) -> FastCheck:
    clear = GuardVerdict(rule, False)

    def check(
        sit: Situation, channel: Channel, at: dt.datetime, truth: Truth, m: EventMatcher
    ) -> GuardVerdict:
        opted_out = sit.values["opt_out"]
        value = channel.value
        opted = value in opted_out
        if not opted and sit.cache.get("trace") is False:
            return clear
        note = f"the customer opted out of {value}" if opted else ""
        return GuardVerdict(rule, opted, None, {"opt_out": sorted(opted_out)}, note)

    return check


def _hours(rule: GuardRule, model: ContactHoursGuard) -> FastCheck:
    start, end = minutes(model.from_), minutes(model.to)
    weekdays = frozenset(i for i, day in enumerate(WEEKDAYS) if day in model.days)
    holidays = model.holidays
    reference = rule.kind.check
    clear = GuardVerdict(rule, False)

    def inside(at: dt.datetime, zones: tuple[ZoneInfo, ...]) -> bool:
        # `window_open` with the window's minutes and weekdays read once
        for tz in zones:
            local = at.astimezone(tz)
            if local.weekday() not in weekdays:
                return False
            if holidays is not None and is_holiday(holidays, local.date()):
                return False
            if not start <= local.hour * 60 + local.minute < end:
                return False
        return True

    def check(
        sit: Situation, channel: Channel, at: dt.datetime, truth: Truth, m: EventMatcher
    ) -> GuardVerdict:
        if inside(at, sit.zones):
            if sit.cache.get("trace") is False:
                return clear  # the local times are only read by the trace
            return GuardVerdict(rule, False, facts={"local_time": local_times(sit, at)})
        return reference(rule, model, sit, channel, at, truth, m)  # closed: when it opens, as ever

    return check


def _frequency(rule: GuardRule, model: FrequencyGuard) -> FastCheck:
    """``frequency`` counted per account: the reference's one group, its
    window and limit read once; several zones (``days_in: every_zone``) go to
    the reference, which takes the strictest."""
    limit, window, count, exclude, fixed = model.max, model.window, model.count, model.exclude, model.channels
    month = window == "calendar_month"
    back = DAY * ((0 if month else int(window)) - 1)
    shown = window if month else f"{window}d"
    reference = rule.kind.check
    per_zone = model.days_in != "account"
    clear = GuardVerdict(rule, False)

    def check(
        sit: Situation, channel: Channel, at: dt.datetime, truth: Truth, m: EventMatcher
    ) -> GuardVerdict:
        if per_zone and len(sit.zones) > 1:
            return reference(rule, model, sit, channel, at, truth, m)
        tz = sit.tz
        day = at.astimezone(tz).date()
        first = day.replace(day=1) if month else day - back
        # only events inside the window can count, now or on any later day
        selected = m.select(count, exclude, fixed or (channel,), before=at, since=start_of_day(first, tz))
        dates = [sit.event_day(i) for i in selected]
        n = 0
        for d in dates:
            if first <= d <= day:
                n += 1
        free = n < limit
        if free and sit.cache.get("trace") is False:
            return clear  # not blocked: only the trace reads the figures
        facts: dict[str, object] = {
            "counted": {"account": n},
            "max": limit,
            "window": f"{first}..{day} ({shown})",
        }
        if free:
            return GuardVerdict(rule, False, facts=facts)
        release = _release_day(model, day, dates)
        until = start_of_day(release, tz) if release is not None else None
        return GuardVerdict(rule, True, until, facts, f"{n} counted in {first}..{day}; the limit is {limit}")

    return check
