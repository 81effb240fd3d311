"""Invariants of decisions, over generated records and instants."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from escalation import Engine, RecordError

from .conftest import CN_POLICY
from .strategies import cases

ENGINE = Engine.from_file(CN_POLICY)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def severity(decision: Any) -> int:
    return int(decision.severity or 0) if decision.status == "act" else 0


@given(cases(ENGINE.policy))
@SETTINGS
def test_same_input_same_decision(case: tuple[dict[str, Any], dt.datetime]) -> None:
    """Same record and instant → byte-identical decision."""
    record, now = case
    assert ENGINE.decide(record, now=now).to_json() == ENGINE.decide(record, now=now).to_json()


@given(cases(ENGINE.policy))
@SETTINGS
def test_act_is_never_a_blocked_action(case: tuple[dict[str, Any], dt.datetime]) -> None:
    """An `act` decision's (action, channel) is never among the blocked ones, and
    no guard blocked it in the trace."""
    record, now = case
    decision = ENGINE.decide(record, now=now)
    if decision.status != "act":
        return
    assert (decision.action, decision.channel) not in {(b.action, b.channel) for b in decision.blocked}
    for entry in decision.trace:
        if entry.action == decision.action and entry.channel == decision.channel:
            assert not entry.matched, entry


@given(cases(ENGINE.policy))
@SETTINGS
def test_act_respects_requires_and_repeat_max(case: tuple[dict[str, Any], dt.datetime]) -> None:
    """An `act` tier has its counted `requires` met (unless it is the stage) and `repeat.max` left."""
    record, now = case
    decision = ENGINE.decide(record, now=now)
    if decision.status != "act":
        return
    tier = ENGINE.policy.tier(decision.action or "").model
    tz = dt.timezone(dt.timedelta(hours=8)) if not record.get("timezone") else None
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(record.get("timezone") or "Asia/Shanghai")
    today = now.astimezone(zone).date()
    cycle = dt.datetime.combine(today - dt.timedelta(days=record["days_overdue"]), dt.time(), tzinfo=zone)
    del tz

    def count(action: str) -> int:
        counting = {o.value for o in ENGINE.policy.tier(action).model.counting_outcomes}
        return sum(
            1
            for e in record["history"]
            if e["action"] == action
            and e["direction"] == "outbound"
            and (e["outcome"] in counting if e["outcome"] is not None else "sent" in counting)
            and dt.datetime.fromisoformat(e["at"]) >= cycle
        )

    if decision.stage != tier.id:  # the stage tier's own requires were the way onto it
        for needed, n in tier.requires.items():
            assert count(needed) >= n
    if tier.repeat.max is not None:
        assert count(tier.id) < tier.repeat.max


@pytest.mark.parametrize("flag", ["dispute", "bankruptcy", "deceased"])
@given(case=cases(ENGINE.policy))
@SETTINGS
def test_blocking_flag_never_makes_it_more_severe(
    flag: str, case: tuple[dict[str, Any], dt.datetime]
) -> None:
    """Adding a blocking flag never yields a more severe action (it holds)."""
    record, now = case
    before = ENGINE.decide(record, now=now)
    flagged = {**record, "flags": sorted({*record.get("flags", []), flag})}
    after = ENGINE.decide(flagged, now=now)
    assert severity(after) <= severity(before)
    assert "hold" == after.status


@given(cases(ENGINE.policy))
@SETTINGS
def test_opting_out_never_uses_that_channel(case: tuple[dict[str, Any], dt.datetime]) -> None:
    """Opting out of the channel just chosen means it is never chosen again."""
    record, now = case
    decision = ENGINE.decide(record, now=now)
    if decision.status != "act" or decision.channel in (None, "legal", "letter"):
        return
    opted = {**record, "opt_out": sorted({*record.get("opt_out", []), decision.channel})}
    try:
        again = ENGINE.decide(opted, now=now)
    except RecordError:  # pragma: no cover - the generator makes valid records
        raise
    assert again.channel != decision.channel
    assert severity(again) <= severity(decision)
