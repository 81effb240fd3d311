"""Facts: everything the rules read, derived from (account, now) alone.

The result, a :class:`Situation`, is a pure function of the validated record,
the evaluation instant and the policy's static settings (time zone, tier
ids, limitation period). Nothing here reads the clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from escalation._calendar import add_years, business_days_after, start_of_day
from escalation.policy import Policy
from escalation.record import Account, Channel, Direction, HistoryEvent, Outcome, PlanStatus, zone

__all__ = ["Situation", "derive"]

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Regulation F 1006.34(b)(5): receipt assumed 5 business days after mailing, then 30 days.
_VALIDATION_RECEIPT_DAYS = 5
_VALIDATION_PERIOD_DAYS = 30
# Before the due date (negative days overdue) the cycle is the 30 days before it.
_PRE_DUE_CYCLE_DAYS = 30
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Situation:
    """One account at one instant, with every derived fact."""

    account: Account
    now: dt.datetime
    tz: ZoneInfo
    zones: tuple[ZoneInfo, ...]
    today: dt.date
    days_overdue: int
    cycle_start: dt.datetime
    events: tuple[HistoryEvent, ...]
    tier_done: dict[str, int]
    tier_last: dict[str, dt.datetime]
    values: dict[str, Any]
    consent_windows: tuple[tuple[dt.datetime, dt.datetime], ...]

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The calendar date of ``instant`` in the account's time zone."""
        return instant.astimezone(self.tz).date()

    def record_date(self, name: str) -> dt.datetime | dt.date | None:
        """A record date by its dotted name (``promise_to_pay.due_date``)."""
        target: Any = self.account
        for part in name.split("."):
            target = getattr(target, part, None)
            if target is None:
                return None
        if isinstance(target, dt.date):
            return target
        return None  # pragma: no cover - names are checked at load time


def account_zone(account: Account, policy: Policy) -> ZoneInfo:
    """The zone the account's calendar days are counted in."""
    return zone(account.timezone or policy.header.timezone)


def derive(account: Account, now: dt.datetime, policy: Policy) -> Situation:
    """Derive every fact for ``account`` at ``now`` under ``policy``'s settings."""
    tz = account_zone(account, policy)
    zones = tuple(zone(name) for name in account.timezones) or (tz,)
    local_now = now.astimezone(tz)
    today = local_now.date()

    if account.days_overdue is not None:
        days_overdue = account.days_overdue
    elif account.overdue_since is not None:
        days_overdue = (today - account.overdue_since).days
    else:
        assert account.due_date is not None
        days_overdue = (today - account.due_date).days
    if days_overdue >= 0:
        cycle_day = today - dt.timedelta(days=days_overdue)
    else:
        cycle_day = today + dt.timedelta(days=-days_overdue - _PRE_DUE_CYCLE_DAYS)
    cycle_start = start_of_day(cycle_day, tz)

    events = tuple(sorted(account.history, key=lambda e: e.at))
    tier_ids = [t.model.id for t in policy.tiers]
    tier_set = set(tier_ids)
    done = dict.fromkeys(tier_ids, 0)
    last_in_cycle: dict[str, dt.datetime] = {}
    last_ever: dict[str, dt.datetime] = {}
    week_ago, month_ago = now - 7 * _DAY, now - 30 * _DAY
    contacts_7d = dict.fromkeys(Channel, 0)
    contacts_30d = dict.fromkeys(Channel, 0)
    conversations_30d = 0
    consent: list[tuple[dt.datetime, dt.datetime]] = []
    payments: list[dt.datetime] = []
    promises: list[dt.datetime] = []
    for event in events:
        outbound = event.direction is Direction.OUTBOUND
        if event.action in tier_set and outbound:
            last_ever[event.action] = event.at
            if event.at >= cycle_start:
                done[event.action] += 1
                last_in_cycle[event.action] = event.at
        if outbound and event.channel is not None and event.at > month_ago:
            contacts_30d[event.channel] += 1
            if event.at > week_ago:
                contacts_7d[event.channel] += 1
        if event.outcome is Outcome.CONVERSATION and event.at > month_ago:
            conversations_30d += 1
        if event.consent_until is not None:
            consent.append((event.at, event.consent_until))
        if event.outcome is Outcome.PAYMENT:
            payments.append(event.at)
        elif event.outcome is Outcome.PROMISE_TO_PAY and event.at >= cycle_start:
            promises.append(event.at)

    promise = account.promise_to_pay
    promise_active = promise is not None and not any(p >= promise.made_at for p in payments)
    broken = 0
    for made in promises:
        if any(p > made for p in payments):
            continue  # kept
        if promise is not None and promise_active and today <= promise.due_date and made >= promise.made_at:
            continue  # the current promise, not yet due
        broken += 1

    values: dict[str, Any] = {
        "days_overdue": days_overdue,
        "amount_overdue": account.amount_overdue,
        "balance": account.balance,
        "currency": account.currency,
        "flags": account.flags,
        "opt_out": frozenset(c.value for c in account.opt_out),
        "conversations_30d": conversations_30d,
        "broken_promises": broken,
        "promise_active": promise_active,
        "plan_active": account.payment_plan is not None
        and account.payment_plan.status is PlanStatus.ACTIVE,
        "local_hour": local_now.hour,
        "weekday": WEEKDAY_NAMES[local_now.weekday()],
    }
    for name in ("segment", "product", "jurisdiction"):
        value = getattr(account, name)
        if value is not None:
            values[name] = value
    if promise is not None:
        values["promise_to_pay.amount"] = promise.amount
    for tier in tier_ids:
        values[f"done.{tier}"] = done[tier]
        if tier in last_ever:
            values[f"days_since.{tier}"] = (now - last_ever[tier]) // _DAY
    for channel in Channel:
        values[f"contacts_7d.{channel.value}"] = contacts_7d[channel]
        values[f"contacts_30d.{channel.value}"] = contacts_30d[channel]

    time_barred = _time_barred(account, today, policy)
    if time_barred is not None:
        values["time_barred"] = time_barred
    if account.validation_notice_sent_at is not None:
        sent = account.validation_notice_sent_at.astimezone(tz).date()
        receipt = business_days_after(sent, _VALIDATION_RECEIPT_DAYS, "US")
        values["in_validation_period"] = today <= receipt + dt.timedelta(days=_VALIDATION_PERIOD_DAYS)

    return Situation(
        account=account,
        now=now,
        tz=tz,
        zones=zones,
        today=today,
        days_overdue=days_overdue,
        cycle_start=cycle_start,
        events=events,
        tier_done=done,
        tier_last=last_in_cycle,
        values=values,
        consent_windows=tuple(consent),
    )


def _time_barred(account: Account, today: dt.date, policy: Policy) -> bool | None:
    """Whether the limitation period has run; ``None`` (unknown) when the
    policy sets none or the record lacks every start date."""
    limitation = policy.header.limitation
    if limitation is None:
        return None
    starts = [getattr(account, name) for name in limitation.start]
    known = [d for d in starts if d is not None]
    if not known:
        return None
    return today >= add_years(max(known), limitation.years)


def json_value(value: Any) -> Any:
    """A fact value in a deterministic JSON-safe form (for traces)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted(str(v) for v in value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
