"""Design v2 semantics on small policies: lender attributes, calendar-day and
exact intervals, counting outcomes, the stage floor with ongoing tiers, and
the decision's stage, tags and id (native and rete alike)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine, RecordError
from escalation.backends.rete import rete_unavailable_reason

from .conftest import NOW, SHANGHAI

HEADER = "escalation: 1\npolicy: {id: p, version: '1', currency: CNY, timezone: Asia/Shanghai%s}\n"
ATTRIBUTES = ", attributes: {risk_score: number, lender: string, vip: boolean, team: {enum: [a, b]}}"
LADDER = """tiers:
  - {id: statement, channel: sms, tags: [statement], ongoing: true, when: 'days_overdue >= 9',
     repeat: {every: 30d}}
  - {id: sms, channel: sms, tags: [reminder], when: 'days_overdue >= 1', repeat: {every: %s, max: 5}}
  - id: call
    channel: phone
    tags: [contact]
    when: 'days_overdue >= 5'
    requires: {sms: 1}
    repeat: {every: 1d, max: 5}
  - id: letter
    channel: letter
    tags: [demand]
    when: 'days_overdue >= 20 and attributes.risk_score >= 0.75'
    requires: {call: 1}
    counts: {outcomes: [delivered]}
    repeat: {every: 7d, max: 2}
  - {id: lawyer, channel: letter, tags: [legal_threat], when: 'days_overdue >= 30', requires: {letter: 1},
     wait: 36h}
"""


def engine(tmp_path: Path, every: str = "1d", backend: str = "native") -> Engine:
    """A five-tier policy with declared attributes."""
    path = tmp_path / "p.yaml"
    path.write_text(HEADER % ATTRIBUTES + LADDER % every)
    return Engine.from_file(path, backend=backend)  # type: ignore[arg-type]


def record(days: int = 25, **extra: Any) -> dict[str, Any]:
    """A CNY record ``days`` overdue."""
    return {
        "id": "V-1",
        "currency": "CNY",
        "amount_overdue": "600",
        "balance": "5000",
        "days_overdue": days,
        **extra,
    }


def event(at: str, action: str, channel: str, outcome: str = "delivered") -> dict[str, Any]:
    """An outbound history event (Shanghai time)."""
    return {"at": f"2026-11-{at}:00+08:00", "action": action, "channel": channel, "outcome": outcome}


class TestAttributes:
    def test_declared_attributes_are_read_in_conditions(self, tmp_path: Path) -> None:
        """`attributes.risk_score` decides whether the letter tier applies."""
        eng = engine(tmp_path)
        history = [event("10T10:00", "sms", "sms"), event("15T10:00", "call", "phone", "conversation")]
        high = eng.decide(record(attributes={"risk_score": 0.8, "team": "a"}, history=history), now=NOW)
        low = eng.decide(record(attributes={"risk_score": 0.7}, history=history), now=NOW)
        assert ("letter", "call") == (high.action, low.action)

    def test_a_missing_attribute_is_unknown_never_true(self, tmp_path: Path) -> None:
        """Without `risk_score` the letter tier's condition is unknown, so it never applies."""
        history = [event("10T10:00", "sms", "sms"), event("15T10:00", "call", "phone", "conversation")]
        assert "call" == engine(tmp_path).decide(record(history=history), now=NOW).action

    @pytest.mark.parametrize(
        ("attributes", "message"),
        [
            ({"risk_scor": 0.5}, "is not declared by policy `p`; did you mean `risk_score`?"),
            ({"risk_score": "high"}, "must be a number"),
            ({"risk_score": True}, "must be a number"),
            ({"vip": "yes"}, "must be a boolean"),
            ({"lender": 3}, "must be a string"),
            ({"team": "c"}, "must be one of `a`, `b`"),
        ],
    )
    def test_undeclared_or_mistyped_attributes_are_record_errors(
        self, tmp_path: Path, attributes: dict[str, Any], message: str
    ) -> None:
        """An attribute the policy does not declare, or of the wrong type, is a record error naming it."""
        with pytest.raises(RecordError) as caught:
            engine(tmp_path).decide(record(attributes=attributes), now=NOW)
        assert message in str(caught.value) and "attributes." in caught.value.issues[0].field


class TestIntervals:
    def test_one_calendar_day_allows_the_next_morning(self, tmp_path: Path) -> None:
        """`every: 1d` after a 10:00 SMS allows one at 09:55 the next day."""
        eng = engine(tmp_path)
        decision = eng.decide(
            record(days=3, history=[event("22T10:00", "sms", "sms")]),
            now=NOW.replace(minute=0, hour=9) + dt.timedelta(minutes=55),
        )
        assert ("act", "sms") == (decision.status, decision.action)

    def test_exact_hours_count_from_the_instant(self, tmp_path: Path) -> None:
        """`every: 24h` after a 10:00 SMS waits until 10:00 the next day."""
        eng = engine(tmp_path, every="24h")
        at = NOW.replace(hour=9, minute=55)
        decision = eng.decide(record(days=3, history=[event("22T10:00", "sms", "sms")]), now=at)
        assert dt.datetime(2026, 11, 23, 10, tzinfo=SHANGHAI) == decision.next_eligible_at

    def test_wait_in_hours_after_the_tier_below(self, tmp_path: Path) -> None:
        """`wait: 36h` runs from the last counting action of the tier below, exactly."""
        eng = engine(tmp_path)
        history = [
            event("10T10:00", "sms", "sms"),
            event("15T10:00", "call", "phone", "conversation"),
            event("22T12:00", "letter", "letter", "delivered"),
            event("22T13:00", "statement", "sms"),
        ]
        decision = eng.decide(record(days=31, attributes={"risk_score": 1}, history=history), now=NOW)
        assert ("wait", dt.datetime(2026, 11, 24, 0, tzinfo=SHANGHAI)) == (
            decision.status,
            decision.next_eligible_at,
        )


class TestCountingAndStage:
    def test_a_letter_counts_only_when_delivered(self, tmp_path: Path) -> None:
        """`counts: {outcomes: [delivered]}`: a `sent` letter is no letter, so no lawyer's letter follows."""
        history = [
            event("01T10:00", "sms", "sms"),
            event("02T10:00", "call", "phone", "conversation"),
            event("10T10:00", "letter", "letter", "sent"),
        ]
        decision = engine(tmp_path).decide(
            record(days=31, attributes={"risk_score": 1}, history=history), now=NOW
        )
        assert ("letter", "call") == (decision.action, decision.stage)

    def test_the_stage_tier_waits_instead_of_a_milder_one(self, tmp_path: Path) -> None:
        """While the stage tier (call) waits for tomorrow, neither the SMS nor another call goes today."""
        history = [event("17T10:00", "sms", "sms"), event("23T09:00", "call", "phone", "no_answer")]
        decision = engine(tmp_path).decide(record(days=8, history=history), now=NOW)
        assert ("wait", "call") == (decision.status, decision.stage)

    def test_an_ongoing_tier_goes_on_below_the_stage(self, tmp_path: Path) -> None:
        """An `ongoing` tier is still considered below the stage and never sets it."""
        history = [event("10T10:00", "sms", "sms"), event("22T09:00", "call", "phone", "no_answer")]
        history.append(event("22T10:00", "statement", "sms"))
        eng = engine(tmp_path)
        decision = eng.decide(record(days=10, history=history[:2]), now=NOW)
        assert ("act", "call", "call", ["contact"]) == (
            decision.status,
            decision.action,
            decision.stage,
            decision.tags,
        )
        decision = eng.decide(record(days=10, history=history), now=NOW)
        assert "call" == decision.stage

    def test_attempts_count_every_try(self, tmp_path: Path) -> None:
        """`attempts.<tier>` counts every try while `done.<tier>` counts those that count."""
        from escalation._facts import derive

        eng = engine(tmp_path)
        rec = record(
            days=10, history=[event("20T10:00", "sms", "sms", "failed"), event("21T10:00", "sms", "sms")]
        )
        values = derive(eng.validate(rec, now=NOW), NOW, eng.policy).values
        assert (2, 1) == (values["attempts.sms"], values["done.sms"])


class TestDecisionFields:
    def test_id_is_deterministic_and_depends_on_input_and_instant(self, tmp_path: Path) -> None:
        """The decision id is the same for the same question and differs for another record or instant."""
        eng = engine(tmp_path)
        first = eng.decide(record(), now=NOW)
        assert first.id.startswith("dec_") and first.id == eng.decide(record(), now=NOW).id
        assert first.id != eng.decide(record(), now=NOW + dt.timedelta(seconds=1)).id
        assert first.id != eng.decide(record(days=26), now=NOW).id
        assert first.id == eng.decide(record(flags=[]), now=NOW).id  # a default changes nothing


@pytest.mark.skipif(rete_unavailable_reason() is not None, reason="rete backend unavailable")
@pytest.mark.parametrize("score", [0.7, 0.74, 0.75, 0.751, 1, 2])
def test_fractional_attributes_agree_on_both_backends(tmp_path: Path, score: float) -> None:
    """A fractional attribute compared with a fractional threshold decides the same on rete as on native."""
    history = [event("10T10:00", "sms", "sms"), event("15T10:00", "call", "phone", "conversation")]
    rec = record(attributes={"risk_score": score}, history=history)
    native, rete = (
        engine(tmp_path).decide(rec, now=NOW),
        engine(tmp_path, backend="rete").decide(rec, now=NOW),
    )
    assert native.outcome() == rete.outcome()
