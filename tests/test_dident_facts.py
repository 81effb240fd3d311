"""``derive`` (escalation/_facts.py) and its one pass over the history
(escalation/_facts_pass.py) agree with the function they replaced, kept here
verbatim as ``reference_derive``: every Situation field and every fact
(``read_only=False``); with ``read_only=True`` (the engine's call) only facts
no condition of the policy names are left out, and the decision — reason and
trace included — is the one the full facts give."""

from __future__ import annotations

import bisect
import datetime as dt
import random
from operator import itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, load_policy
from escalation._bundled import SHIPPED_POLICIES
from escalation._calendar import start_of_day
from escalation._facts import (
    _CONTACT_KEYS,
    _DAY,
    _NO_CHANNELS,
    _PRE_DUE_CYCLE_DAYS,
    WEEKDAY_NAMES,
    Situation,
    account_zone,
    derive,
)
from escalation._facts_static import policy_static
from escalation._ladder import evaluate
from escalation._money import money_facts
from escalation._notices import notice_facts, reachability, time_barred, validation_period_end
from escalation.backends import named_conditions
from escalation.placement import placement_facts
from escalation.plans import plan_facts
from escalation.policy import Policy
from escalation.record import (
    Account,
    Channel,
    Direction,
    HistoryEvent,
    Outcome,
    PlanStatus,
    days_overdue_on,
    zone,
)

from .strategies import cases

ROOT = Path(__file__).resolve().parent.parent
POLICIES = {name: load_policy(ROOT / f"policies/{name}.yaml") for name in SHIPPED_POLICIES}
ENGINES = {name: Engine(policy) for name, policy in POLICIES.items()}
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
OPTIONAL = ("contacts_7d.", "contacts_30d.", "days_since.")

# ---------------------------------------------------------------- the reference (5c53727), verbatim

_OUTBOUND = Direction.OUTBOUND
_CONVERSATION, _PAYMENT, _PROMISE = Outcome.CONVERSATION, Outcome.PAYMENT, Outcome.PROMISE_TO_PAY
_ACTIVE = PlanStatus.ACTIVE
_CHANNELS = tuple(Channel)
_PHONE = Channel.PHONE
_EVENT_FIELDS = itemgetter("at", "action", "channel", "outcome", "direction", "consent_until", "misdirected")


def event_stamps(account: Account) -> tuple[float, ...]:
    """The reference's timestamps: converted on every call."""
    return tuple([e.at.timestamp() for e in account.history])


def reference_derive(
    account: Account, now: dt.datetime, policy: Policy, stamps: tuple[float, ...] | None = None
) -> Situation:
    """Derive every fact for ``account`` at ``now`` under ``policy``'s settings
    (``stamps``: :func:`event_stamps` of the account, when already known)."""
    tz = account_zone(account, policy)
    # The account's own zone is always one the customer may be in: `timezones`
    # adds zones (an address, a phone's area code); it never removes that one.
    zones: tuple[ZoneInfo, ...] = (tz,)
    if account.timezones:
        zones = tuple(dict.fromkeys((tz, *(zone(name) for name in account.timezones))))
    local_now = now.astimezone(tz)
    today = local_now.date()

    days_overdue = days_overdue_on(account, today)
    if days_overdue >= 0:
        cycle_day = today - dt.timedelta(days=days_overdue)
    else:
        cycle_day = today + dt.timedelta(days=-days_overdue - _PRE_DUE_CYCLE_DAYS)
    cycle_start = start_of_day(cycle_day, tz)

    # Compare instants as POSIX timestamps: far cheaper than aware datetimes.
    if stamps is None:
        stamps = event_stamps(account)
    history = account.history
    if sorted(stamps) == list(stamps):
        events = history  # already oldest first (the usual case): no re-sort
    else:
        stamped = sorted(zip(stamps, range(len(history)), history, strict=True))
        events = tuple(item[2] for item in stamped)
        stamps = tuple(item[0] for item in stamped)
    static = policy_static(policy)
    tier_ids, tier_set, counting, pending_counts, third_party = (
        static.tier_ids,
        static.tier_set,
        static.counting,
        static.pending_counts,
        static.third_party,
    )
    done = dict.fromkeys(tier_ids, 0)
    tried = dict.fromkeys(tier_ids, 0)
    counted_last: dict[str, dt.datetime] = {}
    today_ts = start_of_day(today, tz).timestamp()
    actions_today = 0
    last_in_cycle: dict[str, dt.datetime] = {}
    last_ever: dict[str, dt.datetime] = {}
    now_ts = now.timestamp()
    cycle_ts = cycle_start.timestamp()
    week_ago, month_ago = now_ts - 7 * 86_400, now_ts - 30 * 86_400
    contacts_7d = dict.fromkeys(_CHANNELS, 0)
    contacts_30d = dict.fromkeys(_CHANNELS, 0)
    conversations_30d = 0
    consent: list[tuple[dt.datetime, dt.datetime]] = []
    talks: list[float] = []  # conversations, oldest first: each ends the consent given before it
    attempts: list[HistoryEvent] = []  # this cycle's call attempts to the debtor, oldest first
    payments: list[HistoryEvent] = []
    promises: list[dt.datetime] = []
    for ts, event in zip(stamps, events, strict=True):
        at, action, channel, outcome, direction, consent_until, misdirected = _EVENT_FIELDS(event.__dict__)
        if direction is _OUTBOUND:
            if action in tier_set:  # a str: None is in no tier set
                last_ever[action] = at
                if ts >= today_ts and not misdirected:  # a wrong number reached someone else
                    actions_today += 1
                if ts >= cycle_ts:
                    tried[action] += 1
                    last_in_cycle[action] = at
                    # an action without an outcome yet was dispatched: it counts as sent
                    made = pending_counts[action] if outcome is None else outcome in counting[action]
                    if made:
                        done[action] += 1
                        counted_last[action] = at
            if channel is not None:
                if ts > month_ago:
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
    # Consent to be contacted ends at its own `consent_until`, or earlier at the
    # first conversation after it was given (Reg F comment 14(b)(3)(i)-2).
    windows = []
    for start, end in consent:
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
        "conversations_30d": conversations_30d,
        "plan_active": account.payment_plan is not None and account.payment_plan.status is _ACTIVE,
        "local_hour": local_now.hour,
        "weekday": WEEKDAY_NAMES[local_now.weekday()],
    }
    for name in ("segment", "product", "jurisdiction"):
        value = getattr(account, name)
        if value is not None:
            values[name] = value
    if promise is not None:
        values["promise_to_pay.amount"] = promise.amount
    values.update(
        money_facts(account, payments, promises, cycle_start, now, tz, rules.tolerance, rules.grace or 0)
    )
    for name, value in account.attributes.items():
        values[f"attributes.{name}"] = value
    for tier, done_key, attempts_key, days_key in static.tier_keys:
        values[done_key] = done[tier]
        values[attempts_key] = tried[tier]
        if tier in last_ever:
            values[days_key] = (now - last_ever[tier]) // _DAY
    for channel, key_7d, key_30d in _CONTACT_KEYS:
        values[key_7d] = contacts_7d[channel]
        values[key_30d] = contacts_30d[channel]

    values.update(notice_facts(account, today))
    values.update(reachability(attempts))
    active = [(today - start.astimezone(tz).date()).days + 1 for start, end in windows if start < now <= end]
    if active:
        values["consent_day"] = min(active)

    values.update(placement_facts(policy, events, today, tz))
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
        tier_last=last_in_cycle,
        tier_counted=counted_last,
        stage=stage,
        stage_severity=stage_severity,
        actions_today=actions_today,
        values=values,
        consent_windows=tuple(windows),
        cache={},
    )


# ---------------------------------------------------------------- the properties

SITUATION_FIELDS = [name for name in Situation.__slots__ if name not in ("values", "cache")]


def _cases(draw: st.DrawFn) -> tuple[str, dict[str, Any], dt.datetime]:
    name = draw(st.sampled_from(SHIPPED_POLICIES))
    record, now = draw(cases(POLICIES[name]))
    history = record["history"]
    if history and draw(st.booleans()):  # out of order: derive sorts (stably) by instant
        random.Random(draw(st.integers(0, 99))).shuffle(history)
    if history and draw(st.integers(0, 4)) == 0:  # a long history: the same events many times
        record["history"] = history * draw(st.integers(2, 20))
    return name, record, now


policy_cases = st.composite(_cases)


def _same_situation(expected: Situation, actual: Situation) -> None:
    for name in SITUATION_FIELDS:
        assert (name, getattr(expected, name)) == (name, getattr(actual, name))


class TestDerive:
    @SETTINGS
    @given(case=policy_cases())
    def test_every_fact_is_the_reference(self, case: tuple[str, dict[str, Any], dt.datetime]) -> None:
        """derive() gives the reference's Situation, every fact with its type."""
        name, record, now = case
        engine = ENGINES[name]
        account, stamps = engine._checked(record, now)
        expected = reference_derive(account, now, engine.policy, event_stamps(account))
        for actual in (derive(account, now, engine.policy), derive(account, now, engine.policy, stamps)):
            _same_situation(expected, actual)
            assert expected.values == actual.values
            assert [type(v) for v in expected.values.values()] == [type(v) for v in actual.values.values()]

    @SETTINGS
    @given(case=policy_cases())
    def test_read_only_leaves_out_only_facts_no_condition_names(
        self, case: tuple[str, dict[str, Any], dt.datetime]
    ) -> None:
        """With read_only, every fact a condition names is the reference's, and
        only unnamed optional families are missing."""
        name, record, now = case
        engine = ENGINES[name]
        account, stamps = engine._checked(record, now)
        expected = reference_derive(account, now, engine.policy, event_stamps(account))
        actual = derive(account, now, engine.policy, stamps, read_only=True)
        _same_situation(expected, actual)
        named = {fact for c in named_conditions(engine.policy).values() for fact in c.facts}
        assert {k: v for k, v in expected.values.items() if k in actual.values} == actual.values
        left_out = set(expected.values) - set(actual.values)
        assert set() == {k for k in left_out if k in named or not k.startswith(OPTIONAL)}

    @SETTINGS
    @given(case=policy_cases(), trace=st.booleans())
    def test_the_decision_is_the_one_every_fact_gives(
        self, case: tuple[str, dict[str, Any], dt.datetime], trace: bool
    ) -> None:
        """decide() (read_only facts) equals evaluating the reference's full
        facts: status, reason, trace, id, everything."""
        name, record, now = case
        engine = ENGINES[name]
        account, _stamps = engine._checked(record, now)
        full = reference_derive(account, now, engine.policy, event_stamps(account))
        truth = engine._conditions.truth_for(full)
        expected = evaluate(engine._plan, full, truth, engine._info, trace, engine.locale)
        actual = engine.decide(record, now=now, trace=trace)
        assert expected.model_dump(mode="json") == actual.model_dump(mode="json")


def test_placement_from_the_one_pass_is_placement_facts() -> None:
    """Placed, recalled, placed again (and a non-counting placement ignored):
    the facts from the one pass are placement_facts'."""
    policy = POLICIES["consumer-credit-cn"]
    agency_tiers = [t.model for t in policy.tiers if t.model.kind != "contact"]
    assert {"place", "recall"} <= {t.kind for t in agency_tiers}, "the CN policy places accounts"
    now = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    rng = random.Random(5)
    seen = set()
    for _ in range(300):
        events = []
        for k in range(rng.randint(0, 6)):
            tier = rng.choice(agency_tiers)
            events.append(
                {
                    "at": (now - dt.timedelta(days=40 - 5 * k, hours=rng.randint(0, 4))).isoformat(),
                    "action": tier.id,
                    "channel": "agency",
                    "outcome": rng.choice(["sent", "delivered", "failed", None]),
                    "direction": rng.choice(["outbound"] * 4 + ["inbound"]),
                }
            )
        record = {"id": "P-1", "currency": "CNY", "amount_overdue": "100.00", "balance": "500.00"}
        record.update(days_overdue=rng.randint(0, 120), timezone="Asia/Shanghai", history=events)
        account, stamps = ENGINES["consumer-credit-cn"]._checked(record, now)
        sit = derive(account, now, policy, stamps, read_only=True)
        tz = account_zone(account, policy)
        expected = placement_facts(policy, sit.events, sit.today, tz)
        assert expected == {
            k: sit.values[k] for k in ("placed", "placed_with", "days_placed") if k in sit.values
        }
        seen.add(expected["placed"])
    assert {True, False} == seen


def test_the_policy_plan_names_what_the_conditions_read() -> None:
    """policy_static's read set is every fact a condition names; a policy
    with no contact-window condition does not count contact windows."""
    for policy in POLICIES.values():
        static = policy_static(policy)
        named = {fact for c in named_conditions(policy).values() for fact in c.facts}
        assert named == static.read
        assert static.reads_contacts == any(n.startswith(("contacts_7d.", "contacts_30d.")) for n in named)
        assert {t.model.id for t in policy.tiers if t.model.kind != "contact"} == set(static.placing)
