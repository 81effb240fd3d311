"""Facts: everything the rules read, derived from (account, now) alone.

The result, a :class:`Situation`, is a pure function of the validated record,
the evaluation instant and the policy's static settings (time zone, tier
ids, limitation period). Nothing here reads the clock."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from escalation._facts_pass import scan
from escalation._facts_static import day_start, event_stamps, in_order, local_now, policy_static
from escalation._language import FactType
from escalation._money import money_facts
from escalation._notices import notice_facts, reachability, time_barred, validation_period_end
from escalation.plans import plan_facts
from escalation.record import (
    Account,
    Channel,
    HistoryEvent,
    PlanStatus,
    days_overdue_on,
    zone,
)

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["FACTS", "Fact", "Situation", "derive", "fact_catalogue", "policy_catalogue"]


@dataclass(frozen=True)
class Fact:
    """A fact conditions may read: its type, whether it is money (formatted
    with the currency in reasons) and what it means."""

    type: FactType
    doc: str
    money: bool = False


_N, _M, _S, _B, _SET = FactType.NUMBER, FactType.MONEY, FactType.STRING, FactType.BOOL, FactType.SET

#: Every fact of an account, by name: the one place a fact is declared.
#: :func:`derive` computes them; per-tier and per-channel families
#: (``done.<tier>``, ``days_since.<tier>``, ``contacts_7d.<channel>``,
#: ``contacts_30d.<channel>``) are added by :func:`fact_catalogue`.
#: A fact may be missing (unknown) for an account: it is then never true.
FACTS: dict[str, Fact] = {
    "days_overdue": Fact(_N, "days since the earliest unpaid due date, in the account's local days"),
    "amount_overdue": Fact(_M, "the past-due amount", money=True),
    "balance": Fact(_M, "the total outstanding", money=True),
    "currency": Fact(_S, "the account's ISO 4217 currency"),
    "flags": Fact(_SET, "the account's flags (`dispute`, `hardship`, …)"),
    "opt_out": Fact(_SET, "channels the customer refused"),
    "segment": Fact(_S, "the lender's segment, when given"),
    "product": Fact(_S, "the product, when given"),
    "jurisdiction": Fact(_S, "the jurisdiction, when given (e.g. `GB-SCT`)"),
    "conversations_30d": Fact(_N, "right-party conversations in the last 30 days"),
    "broken_promises": Fact(_N, "promises to pay broken in this delinquency cycle"),
    "promise_active": Fact(_B, "a promise to pay is outstanding: neither kept nor broken yet"),
    "promise_kept": Fact(_B, "payments since the promise reached its amount (less `promise.tolerance`)"),
    "promise_broken": Fact(_B, "the promise's due date plus `promise.grace` passed without it kept"),
    "promise_shortfall": Fact(_M, "what is still missing to keep the promise", money=True),
    "paid_in_cycle": Fact(_M, "payments received in this delinquency cycle", money=True),
    "last_payment_amount": Fact(_M, "the amount of the latest payment in the history", money=True),
    "days_since_payment": Fact(_N, "local calendar days since the latest payment (missing if none)"),
    "plan_active": Fact(_B, "a payment plan is active (with terms: and no instalment missed)"),
    "time_barred": Fact(_B, "the limitation period has run (unknown without a start date)"),
    "in_validation_period": Fact(_B, "inside the Regulation F validation period"),
    "local_hour": Fact(_N, "the hour of `now` in the account's zone"),
    "weekday": Fact(_S, "the weekday of `now` in the account's zone (`mon`…`sun`)"),
    "promise_to_pay.amount": Fact(_M, "the amount promised", money=True),
    "actor_type": Fact(_S, "who collects: `creditor`, `debt_collector`, …"),
    "principal": Fact(_M, "the principal outstanding, when given", money=True),
    "dispute_open": Fact(_B, "a dispute was received and not yet answered by verification"),
    "cease_received": Fact(_B, "a cease-communication request was received"),
    "breathing_space_active": Fact(_B, "a Breathing Space moratorium is in force today"),
    "consent_day": Fact(_N, "day of an active consent window to be contacted (1 = the day it was given)"),
    "consecutive_failed_attempts": Fact(_N, "call attempts in a row that did not reach the debtor"),
    "number_invalid": Fact(_B, "every number last tried came back not in service"),
    "forbearance_assessed": Fact(_B, "a forbearance assessment is recorded (`forbearance_assessed_at`)"),
    "letter_of_claim_reply": Fact(
        _SET, "what the reply to a Letter of Claim says (`reply_form`, `seeking_advice`, …); empty if none"
    ),
    "plan_days_to_due": Fact(_N, "days from today to the payment plan's next due date (missing if none)"),
    "plan_status": Fact(_S, "a plan with terms: `current`, `missed` or `completed` (missing without terms)"),
    "plan_missed_instalment": Fact(_N, "the number of the plan's first missed instalment (missing if none)"),
    "days_since_missed_instalment": Fact(_N, "local days since the first missed instalment fell due"),
    "placed": Fact(_B, "the account is placed with a collection agency (a `place` tier, not yet recalled)"),
    "placed_with": Fact(_S, "the agency the account is placed with (missing if not placed)"),
    "days_placed": Fact(_N, "local calendar days since the account was placed (missing if not placed)"),
}

#: Families of facts, one per tier or per channel: prefix → (type, doc).
FACT_FAMILIES: dict[str, Fact] = {
    "done": Fact(_N, "counting actions of the tier in this delinquency cycle"),
    "attempts": Fact(_N, "actions of the tier in this delinquency cycle, whatever their outcome"),
    "days_since": Fact(_N, "days since the tier's last action (missing if never)"),
    "contacts_7d": Fact(_N, "outbound contacts on the channel in the last 7 days"),
    "contacts_30d": Fact(_N, "outbound contacts on the channel in the last 30 days"),
}
_TIER_FAMILIES = ("done", "attempts", "days_since")
#: The fact type of each declared attribute type (`policy.attributes`).
ATTRIBUTE_TYPES = {"number": FactType.NUMBER, "string": FactType.STRING, "boolean": FactType.BOOL}
_CHANNEL_FAMILIES = ("contacts_7d", "contacts_30d")


def fact_catalogue(
    tier_ids: list[str] | tuple[str, ...], attributes: Mapping[str, object] | None = None
) -> dict[str, FactType]:
    """Every fact a condition of a policy with these tiers (and declared
    attributes, read as ``attributes.<name>``) may read, with its type."""
    catalogue = {name: fact.type for name, fact in FACTS.items()}
    for name, kind in (attributes or {}).items():
        # an `{enum: [...]}` attribute is a string with a closed set of values
        catalogue[f"attributes.{name}"] = ATTRIBUTE_TYPES.get(kind, _S) if isinstance(kind, str) else _S
    for tier in tier_ids:
        for family in _TIER_FAMILIES:
            catalogue[f"{family}.{tier}"] = FACT_FAMILIES[family].type
    for channel in Channel:
        for family in _CHANNEL_FAMILIES:
            catalogue[f"{family}.{channel.value}"] = FACT_FAMILIES[family].type
    return catalogue


def policy_catalogue(policy: Policy) -> dict[str, FactType]:
    """The fact catalogue of a loaded policy (its tiers and declared attributes)."""
    return fact_catalogue([t.model.id for t in policy.tiers], policy.header.attributes)


def is_money(name: str) -> bool:
    """Whether the fact ``name`` is an amount of money."""
    fact = FACTS.get(name)
    return fact is not None and fact.money


WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Before the due date (negative days overdue) the cycle is the 30 days before it.
_PRE_DUE_CYCLE_DAYS = 30
_DAY = dt.timedelta(days=1)
# Enum members bound once: attribute access on an Enum class is slow on the hot path.
_ACTIVE = PlanStatus.ACTIVE
_NO_CHANNELS: frozenset[str] = frozenset()
_CONTACT_KEYS = tuple((c, f"contacts_7d.{c.value}", f"contacts_30d.{c.value}") for c in Channel)


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
    stamps: tuple[float, ...]
    tier_done: dict[str, int]  # counting actions per tier, this cycle
    tier_last: dict[str, dt.datetime]  # last action per tier (any outcome), this cycle
    tier_counted: dict[str, dt.datetime]  # last counting action per tier, this cycle
    stage: str | None  # the most severe non-ongoing tier with a counting action, this cycle
    stage_severity: int  # its severity (0: no stage)
    actions_today: int  # outbound tier actions on the local day of `now`
    values: dict[str, Any]
    consent_windows: tuple[tuple[dt.datetime, dt.datetime], ...]
    cache: dict[Any, Any]  # per-decision memo for guards (selected events, local dates)

    def event_day(self, index: int) -> dt.date:
        """The local calendar date of ``events[index]`` (memoised)."""
        days: dict[int, dt.date] | None = self.cache.get("days")
        if days is None:
            days = self.cache["days"] = {}
        day = days.get(index)
        if day is None:
            day = days[index] = self.events[index].at.astimezone(self.tz).date()
        return day

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The calendar date of ``instant`` in the account's time zone."""
        return instant.astimezone(self.tz).date()

    def record_date(self, name: str) -> dt.datetime | dt.date | None:
        """A record date by its dotted name (``promise_to_pay.due_date``), or a
        date derived from the record (``validation_period_end``)."""
        if name == "validation_period_end":
            return validation_period_end(self.account, self.tz)
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


def derive(
    account: Account,
    now: dt.datetime,
    policy: Policy,
    stamps: tuple[float, ...] | None = None,
    *,
    read_only: bool = False,
) -> Situation:
    """Derive every fact for ``account`` at ``now`` under ``policy``'s settings
    (``stamps``: :func:`event_stamps` of the account, when already known).
    ``read_only``: leave out the optional families no condition of the policy
    names (``contacts_7d.*``, ``contacts_30d.*``, ``days_since.*``): the engine's
    choice (conditions are all that read them; every other fact is always derived)."""
    tz = account_zone(account, policy)
    # The account's own zone is always one the customer may be in: `timezones`
    # adds zones (an address, a phone's area code); it never removes that one.
    zones: tuple[ZoneInfo, ...] = (tz,)
    if account.timezones:
        zones = tuple(dict.fromkeys((tz, *(zone(name) for name in account.timezones))))
    local = local_now(now, tz)
    today = local.today

    days_overdue = days_overdue_on(account, today)
    if days_overdue >= 0:
        cycle_day = today - dt.timedelta(days=days_overdue)
    else:
        cycle_day = today + dt.timedelta(days=-days_overdue - _PRE_DUE_CYCLE_DAYS)
    cycle_start, cycle_ts = day_start(cycle_day, tz)

    # Compare instants as POSIX timestamps: far cheaper than aware datetimes.
    if stamps is None:
        stamps = event_stamps(account)
    history = account.history
    if in_order(account, stamps):
        events = history  # already oldest first (the usual case): no re-sort
    else:
        stamped = sorted(zip(stamps, range(len(history)), history, strict=True))
        events = tuple(item[2] for item in stamped)
        stamps = tuple(item[0] for item in stamped)
    static = policy_static(policy)
    contacts = not read_only or static.reads_contacts
    found = scan(events, stamps, static, local.now_ts, local.today_ts, cycle_ts, contacts)
    done = found.done
    # Consent to be contacted ends at its own `consent_until`, or earlier at the
    # first conversation after it was given (Reg F comment 14(b)(3)(i)-2).
    windows = []
    talks = found.talks
    for start, end in found.consent:
        later = bisect.bisect_right(talks, start.timestamp())
        if later < len(talks) and talks[later] < end.timestamp():
            end = dt.datetime.fromtimestamp(talks[later], tz=end.tzinfo)
        windows.append((start, end))

    promise = account.promise_to_pay
    rules = policy.header.promise
    values: dict[str, Any] = {
        "days_overdue": days_overdue,
        "amount_overdue": account.amount_overdue,
        "balance": account.balance,
        "currency": account.currency,
        "flags": account.flags,
        "opt_out": frozenset(c.value for c in account.opt_out) if account.opt_out else _NO_CHANNELS,
        "conversations_30d": found.conversations_30d,
        "plan_active": account.payment_plan is not None and account.payment_plan.status is _ACTIVE,
        "local_hour": local.local.hour,
        "weekday": WEEKDAY_NAMES[local.local.weekday()],
    }
    for name in ("segment", "product", "jurisdiction"):
        value = getattr(account, name)
        if value is not None:
            values[name] = value
    if promise is not None:
        values["promise_to_pay.amount"] = promise.amount
    values.update(
        money_facts(
            account, found.payments, found.promises, cycle_start, now, tz, rules.tolerance, rules.grace or 0
        )
    )
    for name, value in account.attributes.items():
        values[f"attributes.{name}"] = value
    # `done` and `tried` hold every tier, in tier order (scan only counts up): zipped with their names
    values.update(zip(static.done_keys, done.values(), strict=True))
    values.update(zip(static.attempts_keys, found.tried.values(), strict=True))
    days_keys, read = static.days_keys, static.read
    for tier, last in found.last_ever.items():
        days_key = days_keys[tier]
        if not read_only or days_key in read:
            values[days_key] = (now - last) // _DAY
    if contacts:
        contacts_7d, contacts_30d = found.contacts_7d, found.contacts_30d
        for channel, key_7d, key_30d in _CONTACT_KEYS:
            values[key_7d] = contacts_7d[channel]
            values[key_30d] = contacts_30d[channel]

    values.update(notice_facts(account, today))
    values.update(reachability(found.attempts))
    active = [(today - start.astimezone(tz).date()).days + 1 for start, end in windows if start < now <= end]
    if active:
        values["consent_day"] = min(active)

    agency, since = found.placed
    if agency is None or since is None:
        values["placed"] = False
    else:  # placement_facts(policy, events, today, tz), from the one pass
        values.update(placed=True, placed_with=agency, days_placed=(today - since.astimezone(tz).date()).days)
    values.update(plan_facts(account, events, today, tz, rules.grace or 0))
    barred = time_barred(account, today, policy, events, tz)
    if barred is not None:
        values["time_barred"] = barred
    period_end = validation_period_end(account, tz)
    if period_end is not None:
        values["in_validation_period"] = today <= period_end

    # the stage: the last (most severe) non-ongoing tier with a counting action
    stage, stage_severity = None, 0
    for tier, severity in static.stages:
        if done[tier] > 0:
            stage, stage_severity = tier, severity
            break
    return Situation(
        account=account,
        now=now,
        tz=tz,
        zones=zones,
        today=today,
        days_overdue=days_overdue,
        cycle_start=cycle_start,
        events=events,
        stamps=stamps,
        tier_done=done,
        tier_last=found.last_in_cycle,
        tier_counted=found.counted_last,
        stage=stage,
        stage_severity=stage_severity,
        actions_today=found.actions_today,
        values=values,
        consent_windows=tuple(windows),
        cache={},
    )
