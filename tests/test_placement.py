"""Agency placement (issue 13): `place`/`recall` tiers with a declared agency,
the `placed`, `placed_with` and `days_placed` facts, the decision's `agency`,
the pack rules for agencies, and — a property over the CN and US policies —
agency and lender contacts together never exceed a frequency limit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation import Engine
from escalation._facts import derive
from escalation.policy import load_policy

from .conftest import CN_POLICY, NOW, ROOT

US_POLICY = ROOT / "policies" / "us-card-collector.yaml"
NEW_YORK = dt.timezone(dt.timedelta(hours=-4))
_PLACED = [
    {"at": "2026-08-16T10:00:00+08:00", "action": "sms_reminder", "channel": "sms", "outcome": "delivered"},
    {
        "at": "2026-09-20T10:00:00+08:00",
        "action": "demand_letter",
        "channel": "letter",
        "outcome": "delivered",
    },
    {
        "at": "2026-11-20T10:00:00+08:00",
        "action": "agency_placement",
        "channel": "agency",
        "outcome": "delivered",
    },
]


def _cn(**extra: Any) -> dict[str, Any]:
    return {"id": "P-1", "currency": "CNY", "amount_overdue": "600.00", "balance": "5000.00", **extra}


class TestFacts:
    def test_placed_with_and_days_placed(self, cn_engine: Engine) -> None:
        """Placed on 20 Nov: placed, with east-recovery, 3 local days ago on 23 Nov."""
        account = cn_engine.validate(_cn(days_overdue=100, history=_PLACED), now=NOW)
        values = derive(account, NOW, cn_engine.policy).values
        assert (True, "east-recovery", 3) == (values["placed"], values["placed_with"], values["days_placed"])

    def test_a_recall_ends_the_placement(self, cn_engine: Engine) -> None:
        """After a recall: not placed, and the agency and days are missing (unknown, never true)."""
        recall = {
            "at": "2026-11-22T10:00:00+08:00",
            "action": "agency_recall",
            "channel": "agency",
            "outcome": "sent",
        }
        account = cn_engine.validate(_cn(days_overdue=100, history=[*_PLACED, recall]), now=NOW)
        values = derive(account, NOW, cn_engine.policy).values
        assert values["placed"] is False
        assert "placed_with" not in values and "days_placed" not in values

    def test_a_placement_that_failed_does_not_place(self, cn_engine: Engine) -> None:
        """A placement file the agency never received (`failed`) does not count."""
        failed = {**_PLACED[-1], "outcome": "failed"}
        account = cn_engine.validate(_cn(days_overdue=100, history=[*_PLACED[:-1], failed]), now=NOW)
        assert derive(account, NOW, cn_engine.policy).values["placed"] is False


class TestDecisions:
    def test_the_agency_is_named_only_on_placements_and_recalls(self, cn_engine: Engine) -> None:
        """`agency` is in the JSON of a placement, and absent from any other decision."""
        history = [
            {
                "at": "2026-08-21T10:00:00+08:00",
                "action": "sms_reminder",
                "channel": "sms",
                "outcome": "delivered",
            },
            *[
                {
                    "at": f"2026-08-2{d}T10:00:00+08:00",
                    "action": "phone_call",
                    "channel": "phone",
                    "outcome": "no_answer",
                }
                for d in (7, 8, 9)
            ],
            {
                "at": "2026-09-25T10:00:00+08:00",
                "action": "demand_letter",
                "channel": "letter",
                "outcome": "delivered",
            },
        ]
        placed = json.loads(cn_engine.decide(_cn(days_overdue=95, history=history), now=NOW).to_json())
        assert ("agency_placement", "agency", "east-recovery") == (
            placed["action"],
            placed["channel"],
            placed["agency"],
        )
        assert "offers" not in placed  # a placement reaches no customer: no offer rides on it
        other = json.loads(cn_engine.decide(_cn(days_overdue=2), now=NOW).to_json())
        assert "agency" not in other

    def test_rete_agrees_on_placement(self) -> None:
        """Placement, the block while placed and the recall: rete's decisions equal native's."""
        pytest.importorskip("durable")
        from escalation.policy._yaml import load_yaml

        suite_path = ROOT / "policies" / "consumer-credit-cn_test.yaml"
        suite = load_yaml(suite_path.read_bytes(), str(suite_path)).data
        native, rete = Engine.from_file(CN_POLICY), Engine.from_file(CN_POLICY, backend="rete")
        cases = [
            c
            for c in suite["cases"]
            if any(e.get("channel") == "agency" for e in c["account"].get("history", []))
        ]
        cases += [c for c in suite["cases"] if c["name"].startswith("below the litigation threshold")]
        assert len(cases) >= 5
        for case in cases:
            record, now = {**suite["defaults"], **case["account"]}, dt.datetime.fromisoformat(case["now"])
            assert native.decide(record, now=now).outcome() == rete.decide(record, now=now).outcome()


class TestPackRules:
    def test_regulation_f_bars_placing_a_paid_or_discharged_debt(self, tmp_path: Path) -> None:
        """1006.30(b): no placement of a debt paid (zero balance) or discharged (flag `bankruptcy`)."""
        policy = tmp_path / "p.yaml"
        policy.write_text(
            """escalation: 1
policy: {id: us-place, version: "1", currency: USD, timezone: America/New_York, include: [pack:us-reg-f]}
tiers:
  - {id: letter, channel: letter, tags: [reminder], when: days_overdue >= 1}
  - {id: place, kind: place, agency: acme, channel: agency, tags: [placement], when: days_overdue >= 90}
agencies:
  - {id: acme, regimes: [us-reg-f]}
"""
        )
        engine = Engine(load_policy(policy))
        now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
        base = {"id": "U-1", "currency": "USD", "days_overdue": 120, "actor_type": "third_party_collector"}
        placed = engine.decide({**base, "amount_overdue": "100.00", "balance": "100.00"}, now=now)
        assert ("act", "place", "acme") == (placed.status, placed.action, placed.agency)
        paid = engine.decide({**base, "amount_overdue": "0.00", "balance": "0.00"}, now=now)
        assert paid.blocked_by("us-regf-no-placement-paid-or-discharged")
        assert "place" != paid.action


def _events(
    calls: list[tuple[int, int, bool, str]], day: dt.date, tz: dt.timezone, action: str
) -> list[dict[str, Any]]:
    out = []
    for back, hour, agency, outcome in calls:
        at = dt.datetime.combine(day - dt.timedelta(days=back), dt.time(hour), tzinfo=tz)
        event: dict[str, Any] = {"at": at.isoformat(), "channel": "phone", "outcome": outcome}
        if agency:
            event["actor"] = "agency"  # the agency's own call: no tier of the lender's
        else:
            event["action"] = action
        out.append(event)
    return out


CONNECTED = ["conversation", "promise_to_pay", "refused"]


class TestAgencyAndLenderContactsTogether:
    @settings(max_examples=80, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.just(0), st.integers(8, 15), st.booleans(), st.sampled_from([*CONNECTED, "no_answer"])
            ),
            max_size=6,
        )
    )
    def test_cn_connected_calls_never_exceed_three_a_day(
        self, calls: list[tuple[int, int, bool, str]]
    ) -> None:
        """CN: a proposed call is never the 4th connected call of the day, lender and agency together."""
        engine = Engine.from_file(CN_POLICY)
        shanghai = dt.timezone(dt.timedelta(hours=8))
        now = dt.datetime(2026, 11, 23, 16, 0, tzinfo=shanghai)
        sms = {
            "at": "2026-11-14T10:00:00+08:00",
            "action": "sms_reminder",
            "channel": "sms",
            "outcome": "delivered",
        }
        history = [sms, *_events(calls, now.date(), shanghai, "phone_call")]
        decision = engine.decide(_cn(days_overdue=13, flags=["hardship"], history=history), now=now)
        if decision.status == "act" and decision.channel == "phone":
            assert sum(1 for _b, _h, _a, outcome in calls if outcome in CONNECTED) < 3

    @settings(max_examples=80, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.integers(0, 6),
                st.integers(9, 12),
                st.booleans(),
                st.sampled_from(["no_answer", "voicemail", "busy"]),
            ),
            max_size=9,
        )
    )
    def test_us_calls_never_exceed_seven_in_seven_days(self, calls: list[tuple[int, int, bool, str]]) -> None:
        """US: a proposed call is never the 8th in 7 days, the collector's and its agency's together."""
        engine = Engine.from_file(US_POLICY)
        now = dt.datetime(2020, 4, 7, 14, 0, tzinfo=NEW_YORK)
        history = [
            {
                "at": "2020-04-03T09:00:00-04:00",
                "action": "email_notice",
                "channel": "email",
                "outcome": "sent",
            },
            *_events(calls, now.date(), NEW_YORK, "collection_call"),
        ]
        record = {
            "id": "U-1", "currency": "USD", "amount_overdue": "500.00", "balance": "3000.00",
            "days_overdue": 20, "actor_type": "third_party_collector", "last_payment_at": "2020-01-15",
            "history": history,
        }  # fmt: skip
        decision = engine.decide(record, now=now)
        if decision.status == "act" and decision.channel == "phone":
            assert sum(1 for _b, _h, _a, outcome in calls if outcome != "busy") < 7

    def test_cn_three_connected_agency_calls_move_the_lender_to_sms(self) -> None:
        """Not vacuous: three connected agency calls today, the lender's call goes by SMS; two, by phone."""
        engine = Engine.from_file(CN_POLICY)
        shanghai = dt.timezone(dt.timedelta(hours=8))
        now = dt.datetime(2026, 11, 23, 16, 0, tzinfo=shanghai)
        sms = {
            "at": "2026-11-14T10:00:00+08:00",
            "action": "sms_reminder",
            "channel": "sms",
            "outcome": "delivered",
        }
        calls = [(0, hour, True, "conversation") for hour in (9, 11, 14)]
        history = [sms, *_events(calls, now.date(), shanghai, "phone_call")]
        full = engine.decide(_cn(days_overdue=13, history=history), now=now)
        assert ("phone_call", "sms") == (full.action, full.channel)
        assert full.blocked_by("cn-connected-calls-per-day")
        fewer = engine.decide(_cn(days_overdue=13, history=history[:-1]), now=now)
        assert ("phone_call", "phone") == (fewer.action, fewer.channel)

    def test_the_agencys_calls_alone_can_use_up_the_limit(self) -> None:
        """Not vacuous: 7 agency calls in 7 days and no call of the collector's own: no call today."""
        engine = Engine.from_file(US_POLICY)
        now = dt.datetime(2020, 4, 7, 14, 0, tzinfo=NEW_YORK)
        calls = [(back, 10, True, "no_answer") for back in range(7)]
        history = [
            {
                "at": "2020-04-03T09:00:00-04:00",
                "action": "email_notice",
                "channel": "email",
                "outcome": "sent",
            },
            *_events(calls, now.date(), NEW_YORK, "collection_call"),
        ]
        record = {
            "id": "U-1", "currency": "USD", "amount_overdue": "500.00", "balance": "3000.00",
            "days_overdue": 20, "actor_type": "third_party_collector", "last_payment_at": "2020-01-15",
            "history": history,
        }  # fmt: skip
        decision = engine.decide(record, now=now)
        assert decision.blocked_by("us-regf-call-frequency")
        assert decision.channel != "phone"
        # and with six agency calls the collector may call (the limit is shared, not doubled)
        fewer = engine.decide({**record, "history": history[:-1]}, now=now)
        assert ("act", "phone") == (fewer.status, fewer.channel)
