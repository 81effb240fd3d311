"""Collections practice (design v2) under every shipped policy: the ladder does
not step back, one action a day, failed letters do not count, promises are
kept by their amount, hardship and vulnerability never see a legal tier, and
the daily-batch simulation over the bundled 1,000-account sample."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Decision, Engine, Policy
from escalation._facts import derive

from .conftest import ROOT, SHIPPED
from .strategies import cases

POLICIES = SHIPPED
ENGINES = {p.stem: Engine.from_file(p) for p in POLICIES}
IDS = sorted(ENGINES)
LEGAL = {"legal_threat", "legal_action"}
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The letter each policy's legal steps rest on, and those legal steps.
LETTER_BEFORE_LEGAL = {
    "consumer-credit-cn": ("demand_letter", {"lawyer_letter", "litigation_referral", "criminal_referral"}),
    "ie-consumer-loan": ("arrears_letter", {"legal_referral"}),
    "uk-consumer-loan": ("default_notice", {"termination", "letter_of_claim", "issue_claim"}),
    "us-card-collector": ("demand_letter", {"intent_to_sue_letter", "litigation_referral"}),
}
_CHANNEL_OUTCOME = {"phone": "no_answer", "sms": "delivered", "email": "delivered"}


def counting_outcome(policy: Policy, action: str, channel: str) -> str:
    """A plausible outcome of ``action`` on ``channel`` that counts as the tier done."""
    counting = [o.value for o in policy.tier(action).model.counting_outcomes]
    wanted = _CHANNEL_OUTCOME.get(channel, "sent")
    return wanted if wanted in counting else counting[0]


def appended(record: dict[str, Any], decision: Decision, policy: Policy, at: dt.datetime) -> dict[str, Any]:
    """``record`` with the action just decided in its history, with a counting outcome."""
    assert decision.action is not None and decision.channel is not None
    event = {
        "at": at.isoformat(),
        "action": decision.action,
        "channel": decision.channel,
        "outcome": counting_outcome(policy, decision.action, decision.channel),
    }
    return {**record, "history": [*record.get("history", []), event]}


def severity(policy: Policy, tier: str | None) -> int:
    """The tier's position on the ladder (0 for none)."""
    return policy.tier(tier).severity if tier else 0


def ongoing(policy: Policy, tier: str | None) -> bool:
    """Whether the tier is an ongoing side track (allowed below the stage)."""
    return tier is not None and policy.tier(tier).model.ongoing


@pytest.mark.parametrize("name", IDS)
def test_every_shipped_policy_allows_one_action_a_day(name: str) -> None:
    """Every shipped policy sets `limits.actions_per_day: 1`."""
    assert 1 == ENGINES[name].policy.header.limits.actions_per_day


@pytest.mark.parametrize("name", IDS)
def test_deciding_again_after_the_action_never_steps_back_or_acts_twice(name: str) -> None:
    """With the action just decided appended, no second action and no lower stage that local day."""
    engine = ENGINES[name]
    policy = engine.policy

    @given(case=cases(policy), later=st.integers(0, 24 * 60))
    @SETTINGS
    def check(case: tuple[dict[str, Any], dt.datetime], later: int) -> None:
        record, now = case
        first = engine.decide(record, now=now)
        if first.status != "act":
            return
        again_record = appended(record, first, policy, now)
        zone = derive(engine.validate(again_record, now=now), now, policy).tz
        local = now.astimezone(zone)
        end_of_day = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        again_at = min(now + dt.timedelta(minutes=later), end_of_day - dt.timedelta(minutes=1))
        again = engine.decide(again_record, now=again_at)
        assert "act" != again.status, (first.action, again.action, again.reason)
        assert again.stage is None or severity(policy, again.stage) >= severity(policy, first.stage)

    check()


@pytest.mark.parametrize("name", IDS)
def test_the_stage_floor_holds_for_generated_records(name: str) -> None:
    """No `act` is ever a non-ongoing tier less severe than the account's stage."""
    engine = ENGINES[name]
    policy = engine.policy

    @given(case=cases(policy))
    @SETTINGS
    def check(case: tuple[dict[str, Any], dt.datetime]) -> None:
        record, now = case
        decision = engine.decide(record, now=now)
        if decision.status == "act" and not ongoing(policy, decision.action):
            assert severity(policy, decision.action) >= severity(policy, decision.stage)

    check()


@pytest.mark.parametrize("name", IDS)
def test_an_undeliverable_letter_never_leads_to_a_legal_step(name: str) -> None:
    """With every letter before legal steps undeliverable or returned, no legal step follows it."""
    engine = ENGINES[name]
    policy = engine.policy
    letter, legal = LETTER_BEFORE_LEGAL[name]
    assert {"legal_threat", "legal_action"} & {t for step in legal for t in policy.tier(step).model.tags}

    @given(case=cases(policy), outcome=st.sampled_from(["undeliverable", "returned", "failed"]))
    @SETTINGS
    def check(case: tuple[dict[str, Any], dt.datetime], outcome: str) -> None:
        record, now = case
        history = []
        for event in record["history"]:
            if event["action"] in legal:
                continue  # the account never got that far
            if event["action"] == letter:
                event = {**event, "outcome": outcome}
            history.append(event)
        history.append({"at": now.isoformat(), "action": letter, "channel": "letter", "outcome": outcome})
        decision = engine.decide({**record, "history": history}, now=now)
        assert decision.action not in legal, decision.reason

    check()


@pytest.mark.parametrize("name", IDS)
def test_hardship_and_vulnerable_never_see_a_legal_tier(name: str) -> None:
    """An account flagged `hardship` or `vulnerable` never gets a `legal_threat`/`legal_action` tier."""
    engine = ENGINES[name]

    @given(case=cases(engine.policy), flag=st.sampled_from(["hardship", "vulnerable"]))
    @SETTINGS
    def check(case: tuple[dict[str, Any], dt.datetime], flag: str) -> None:
        record, now = case
        flagged = {**record, "flags": sorted({*record.get("flags", []), flag})}
        decision = engine.decide(flagged, now=now)
        assert not LEGAL & set(decision.tags), decision.reason

    check()


@pytest.mark.parametrize("name", IDS)
def test_a_token_payment_never_keeps_a_promise(name: str) -> None:
    """A payment of 1 never keeps a promise of 600: the hold runs to its grace, then it is broken."""
    engine = ENGINES[name]
    policy = engine.policy
    zone = policy.header.timezone
    made = dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC)
    record: dict[str, Any] = {
        "id": "P-1",
        "currency": policy.header.currency,
        "amount_overdue": "600.00",
        "balance": "5000.00",
        "days_overdue": 20,
        "timezone": zone,
        "last_payment_at": "2026-11-01",
        "promise_to_pay": {"amount": "600.00", "due_date": "2026-11-25", "made_at": made.isoformat()},
        "history": [
            {
                "at": "2026-11-21T09:00:00+00:00",
                "direction": "inbound",
                "outcome": "payment",
                "amount": "1.00",
            }
        ],
    }
    before = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    facts = derive(engine.validate(record, now=before), before, policy).values
    assert (False, True, Decimal("599.00")) == (
        facts["promise_kept"],
        facts["promise_active"],
        facts["promise_shortfall"],
    )
    assert ("hold", "promise-to-pay") == (
        engine.decide(record, now=before).status,
        engine.decide(record, now=before).hold,
    )
    after = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    late = {**record, "days_overdue": 28}
    facts = derive(engine.validate(late, now=after), after, policy).values
    assert (False, True, 1) == (facts["promise_kept"], facts["promise_broken"], facts["broken_promises"])
    assert "hold" != engine.decide(late, now=after).status


def test_daily_batch_simulation_over_the_bundled_sample(capsys: pytest.CaptureFixture[str]) -> None:
    """The 1,000-account batch at 10:00, 12:00 and 09:55 next day: 0 second actions, 0 steps back."""
    engine = ENGINES["consumer-credit-cn"]
    policy = engine.policy
    shanghai = dt.timezone(dt.timedelta(hours=8))
    first_at = dt.datetime(2026, 11, 23, 10, 0, tzinfo=shanghai)
    second_at = dt.datetime(2026, 11, 23, 12, 0, tzinfo=shanghai)
    next_at = dt.datetime(2026, 11, 24, 9, 55, tzinfo=shanghai)
    records = [
        json.loads(line) for line in Path(ROOT / "examples" / "portfolio-cn.jsonl").read_text().splitlines()
    ]
    figures = {"accounts": len(records), "acted_10:00": 0, "acted_12:00": 0, "acted_09:55_next_day": 0}
    same_day_second = steps_back = 0
    statuses_12: dict[str, int] = {}
    for record in records:
        first = engine.decide(record, now=first_at, trace=False)
        if first.status != "act":
            continue
        figures["acted_10:00"] += 1
        after = appended(record, first, policy, first_at)
        second = engine.decide(after, now=second_at, trace=False)
        statuses_12[second.status] = statuses_12.get(second.status, 0) + 1
        if second.status == "act":
            figures["acted_12:00"] += 1
            same_day_second += 1
        third = engine.decide(after, now=next_at, trace=False)
        for decision in (second, third):
            if decision.status == "act" and not ongoing(policy, decision.action):
                steps_back += severity(policy, decision.action) < severity(policy, decision.stage)
        figures["acted_09:55_next_day"] += third.status == "act"
    figures.update(same_day_second_actions=same_day_second, steps_back=steps_back)
    with capsys.disabled():
        print(f"\ndaily-batch simulation: {figures}; 12:00 statuses {dict(sorted(statuses_12.items()))}")
    assert (0, 0) == (same_day_second, steps_back)
    assert figures["acted_10:00"] > 100
