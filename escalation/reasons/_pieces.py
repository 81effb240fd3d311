"""Pieces of reasons: what a missing step needs, why a tier waits, and what
a blocking guard found — in words, per locale."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from escalation._facts import Situation
from escalation._language import Locale, Span
from escalation.guards import ContactHoursGuard, FrequencyGuard, GuardVerdict, PrerequisiteGuard
from escalation.policy import TierRule
from escalation.policy.schema import COUNTING_OUTCOMES
from escalation.reasons import _format as f
from escalation.reasons._words import OUTCOMES, RECORD_DATES, word
from escalation.reasons.parts import AfterBelow, DayFull, Interval, Pending

if TYPE_CHECKING:
    from escalation.reasons._render import Renderer

__all__ = ["guard_detail", "pending", "required"]


def required(r: Renderer, need: str, n: int, done: int) -> str:
    """``a delivered demand letter (the one sent on 2 Nov was returned undeliverable)``."""
    tier = r.tier_of(need)
    entry, label = r._channel(tier), r.label(need)
    channel = tier.model.channel_order[0].value
    failed = last_failed(r, tier)
    if n == 1:
        if failed is not None:
            at, outcome = failed
            how = word(OUTCOMES, outcome, r.locale)
            if r.zh:
                done_word = "已接通" if channel == "phone" else "已送达"
                return f"一{entry[4]}{done_word}的{label}（{r.day(at)}{entry[3]}的一{entry[4]}{how}）"
            adjective = "answered" if channel == "phone" else "delivered"
            return f"{f.article(adjective)} {label} (the one {entry[1]} on {r.day(at)} was {how})"
        return f"一{entry[4]}{label}" if r.zh else f.article(label)
    if r.zh:
        return f"{label}{n}{entry[4]}（目前{done}{entry[4]}）"
    return f"{f.count_noun(n, label)} ({done} so far)"


def last_failed(r: Renderer, tier: TierRule) -> tuple[dt.datetime, str] | None:
    """The latest action of the tier this cycle whose outcome did not count."""
    counting = set(tier.model.counting_outcomes or COUNTING_OUTCOMES)
    for event in reversed(r.sit.events):
        if event.action != tier.model.id or event.at < r.sit.cycle_start:
            continue
        if event.outcome is not None and event.outcome not in counting:
            return event.at, event.outcome.value
    return None


def pending(r: Renderer, item: Pending, tier: TierRule) -> str:
    if isinstance(item, GuardVerdict):
        return r._guard(item, with_until=False)
    if isinstance(item, DayFull):
        if r.zh:
            return f"今日已达每日{item.limit}次行动上限"
        return f"the limit of {f.count_noun(item.limit, 'action')} a day is reached today"
    if isinstance(item, AfterBelow):
        wait = span(r, item.wait)
        below = r.label(item.below.model.id)
        if r.zh:
            return f"须在{r.day(item.last)}的{below}之后满{wait}"
        return f"{wait} after the {below} of {r.day(item.last)}"
    assert isinstance(item, Interval)
    return interval(r, item, tier)


def span(r: Renderer, span: Span) -> str:
    if span.unit in ("d", "w"):
        return f.span(span.amount * (7 if span.unit == "w" else 1), r.locale)
    if span.unit == "h":
        return f.hours(span.amount, r.locale)
    return f"{span.amount}分钟" if r.zh else f"{span.amount} minutes"


def interval(r: Renderer, item: Interval, tier: TierRule) -> str:
    label, every = r.label(tier.model.id), item.every
    last = r.instant(item.last)
    if r.zh:
        what = r.do(tier)
        if every.calendar:
            per = "每天" if every.amount == 1 and every.unit == "d" else f"每{span(r, every)}"
            return f"{per}最多{what}1次（上次{last}）"
        return f"两次{what}至少间隔{span(r, every)}（上次{last}）"
    if every.calendar:
        per = "a day" if every.amount == 1 and every.unit == "d" else f"every {span(r, every)}"
        return f"one {label} {per} at most (last on {last})"
    return f"{span(r, every)} between {f.plural(label)} (last at {last})"


def guard_detail(verdict: GuardVerdict, sit: Situation, locale: Locale, with_until: bool = True) -> str:
    """What a blocking guard found, in words: the missing input of a
    prerequisite, the count of a frequency limit, the local time outside
    contact hours, the date a block or cooldown ends."""
    zh = locale == "zh-CN"
    guard = verdict.rule.model
    until = verdict.until.astimezone(sit.tz) if verdict.until is not None else None
    if isinstance(guard, PrerequisiteGuard):
        for alt in guard.alternatives():
            if alt.record_date is not None and sit.record_date(alt.record_date) is None:
                missing = word(RECORD_DATES, alt.record_date, locale)
                return f"无{missing}记录" if zh else f"{missing} is not on record"
        if until is None:
            return "尚未发生" if zh else "not yet"
    elif isinstance(guard, ContactHoursGuard):
        local = verdict.facts.get("local_time", {}).get(str(sit.tz))
        # only when checked at the decision's instant (a deferred tier is checked later)
        if local and local == sit.now.astimezone(sit.tz).strftime("%a %H:%M"):
            clock = local.split()[-1]
            return f"当地现在{clock}" if zh else f"now {clock} local time"
    elif isinstance(guard, FrequencyGuard):
        counted = verdict.facts.get("counted") or {}
        if counted:
            total = max(counted.values())
            return f"已{total}次" if zh else f"{total} so far"
    if with_until and until is not None:
        shown = f.date_time(until, locale, sit.today)
        return f"{shown}起" if zh else f"until {shown}"
    return ""
