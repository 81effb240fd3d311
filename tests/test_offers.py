"""Offers (issue 13): exact figures in minor units within their bounds, the
``offers`` of a contact decision, status ``offer`` before a tier's
``offer_first``, and the same offers from every evaluator."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation import Engine, PolicyError, RecordError
from escalation.offers import figures as fig
from escalation.policy import load_policy

from .conftest import CN_POLICY, NOW, ROOT

UK_POLICY = ROOT / "policies" / "uk-consumer-loan.yaml"
LONDON_NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
_LADDER_TO_LAWYER = [
    {"at": "2026-09-20T10:00:00+08:00", "action": "sms_reminder", "channel": "sms", "outcome": "delivered"},
    {"at": "2026-09-27T10:00:00+08:00", "action": "phone_call", "channel": "phone", "outcome": "no_answer"},
    {"at": "2026-09-28T10:00:00+08:00", "action": "phone_call", "channel": "phone", "outcome": "no_answer"},
    {"at": "2026-09-29T10:00:00+08:00", "action": "phone_call", "channel": "phone", "outcome": "no_answer"},
    {
        "at": "2026-11-01T10:00:00+08:00",
        "action": "demand_letter",
        "channel": "letter",
        "outcome": "delivered",
    },
]


def _cn(**extra: Any) -> dict[str, Any]:
    return {"id": "O-1", "currency": "CNY", "amount_overdue": "600.00", "balance": "5000.00", **extra}


class TestFigures:
    def test_the_issue_example(self) -> None:
        """CNY 2,550.00 over at most 12 months of at least CNY 200: 12 × CNY 212.50."""
        plan = fig.instalment_plan(
            255_000,
            max_months=12,
            min_instalment=20_000,
            down_share=Decimal(0),
            first_due=dt.date(2026, 12, 1),
        )
        assert [21_250] * 12 == [amount for _due, amount in plan.instalments]
        assert dt.date(2026, 12, 1) == plan.instalments[0][0]
        assert dt.date(2027, 11, 1) == plan.instalments[-1][0]
        assert plan.down_payment is None

    def test_the_last_instalment_absorbs_the_remainder(self) -> None:
        """CNY 1,000.00 in 3: 333.33, 333.33, 333.34."""
        plan = fig.instalment_plan(
            100_000, max_months=3, min_instalment=100, down_share=Decimal(0), first_due=dt.date(2026, 1, 31)
        )
        assert [33_333, 33_333, 33_334] == [amount for _due, amount in plan.instalments]
        # monthly from the 31st: the month's last day where it has no 31st
        assert [dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31)] == [
            due for due, _amount in plan.instalments
        ]

    def test_a_down_payment_is_rounded_up(self) -> None:
        """10% of CNY 12,345.67 is CNY 1,234.567: CNY 1,234.57 down."""
        plan = fig.instalment_plan(
            1_234_567,
            max_months=12,
            min_instalment=20_000,
            down_share=Decimal("0.1"),
            first_due=dt.date(2026, 12, 23),
        )
        assert 123_457 == plan.down_payment
        assert 1_234_567 == plan.down_payment + sum(amount for _due, amount in plan.instalments)

    @settings(max_examples=300, deadline=None)
    @given(
        amount=st.integers(1, 10**12),
        months=st.integers(1, 120),
        minimum=st.integers(1, 10**7),
        down=st.integers(0, 10_000).map(lambda bp: Decimal(bp) / 10_000),
    )
    def test_a_plan_is_exact_and_within_its_bounds(
        self, amount: int, months: int, minimum: int, down: Decimal
    ) -> None:
        """Down payment + instalments = the amount; at most ``max_months``; each at
        least the minimum (unless one instalment pays a smaller rest); the last
        differs from the others by less than their number."""
        plan = fig.instalment_plan(
            amount, max_months=months, min_instalment=minimum, down_share=down, first_due=dt.date(2026, 1, 31)
        )
        paid_down = plan.down_payment or 0
        amounts = [a for _due, a in plan.instalments]
        assert amount == paid_down + sum(amounts)
        assert paid_down >= amount * down  # rounded up, never down
        assert len(amounts) <= months
        rest = amount - paid_down
        if amounts:
            assert all(a >= minimum for a in amounts) or (len(amounts) == 1 and rest < minimum)
            assert 0 <= amounts[-1] - amounts[0] < len(amounts)
        dues = [d for d, _a in plan.instalments]
        assert dues == sorted(set(dues))

    @settings(max_examples=300, deadline=None)
    @given(
        balance=st.integers(1, 10**12),
        low=st.integers(0, 9_999),
        high=st.integers(0, 9_999),
    )
    def test_a_settlement_stays_in_its_band(self, balance: int, low: int, high: int) -> None:
        """The least accepted pays at most the largest discount; the opening at most the smallest."""
        low, high = min(low, high), max(low, high)
        lo, hi = Decimal(low) / 10_000, Decimal(high) / 10_000
        deal = fig.settlement(balance, lo, hi, dt.date(2026, 12, 7))
        assert deal.pay_up_to is not None
        assert balance * (1 - hi) <= deal.pay <= deal.pay_up_to <= balance
        assert deal.pay_up_to >= balance * (1 - lo)
        assert balance == deal.pay + deal.waived

    def test_a_fee_waiver_waives_a_share_of_the_fees_only(self) -> None:
        """50% of CNY 2,345.67 of fees is CNY 1,172.835: CNY 1,172.83 waived (rounded down)."""
        deal = fig.fee_waiver(1_234_567, 234_567, Decimal("0.5"), None)
        assert (117_283, 1_234_567 - 117_283) == (deal.waived, deal.pay)


class TestDecisions:
    def test_a_contact_carries_the_offers_with_exact_figures(self, cn_engine: Engine) -> None:
        """A reminder on day 2 carries the 15-day extension: amounts as exact decimals."""
        decision = cn_engine.decide(_cn(days_overdue=2), now=NOW)
        assert ("act", "sms_reminder") == (decision.status, decision.action)
        data = json.loads(decision.to_json())
        (offer,) = data["offers"]
        assert {"id": "cn-extension", "kind": "extension", "approval": "agent", "currency": "CNY"} == {
            k: offer[k] for k in ("id", "kind", "approval", "currency")
        }
        assert ("600.00", "600.00", "2026-12-08") == (offer["amount"], offer["pay"], offer["due_date"])

    def test_no_offers_key_where_a_policy_has_no_offers(self) -> None:
        """Decisions of a policy without offers serialise exactly as before (no `offers` key)."""
        engine = Engine.from_file(ROOT / "policies" / "us-card-collector.yaml")
        record = {
            "id": "U-1",
            "currency": "USD",
            "amount_overdue": "100.00",
            "balance": "900.00",
            "days_overdue": 5,
        }
        decision = engine.decide(record, now=LONDON_NOW)
        assert "offers" not in json.loads(decision.to_json())
        assert "offers" not in decision.model_dump(mode="json")

    def test_an_offer_comes_before_the_lawyers_letter(self, cn_engine: Engine) -> None:
        """No plan offered in this cycle: status `offer` (no action), the plan's figures, the step."""
        decision = cn_engine.decide(_cn(days_overdue=65, history=_LADDER_TO_LAWYER), now=NOW)
        assert ("offer", None, None) == (decision.status, decision.action, decision.channel)
        assert ["cn-instalments"] == [o.id for o in decision.offers]
        plan = decision.offers[0]
        assert Decimal("500.00") == plan.down_payment
        assert [Decimal("375.00")] * 12 == [i.amount for i in plan.instalments]
        assert "Offer before the lawyer's letter" in decision.reason
        note = [t.note for t in decision.trace if t.rule == "tier:lawyer_letter"][-1]
        assert note is not None and note.startswith("an offer comes first")

    @pytest.mark.parametrize(
        ("outcome", "status"),
        [
            ("conversation", "act"),
            ("refused", "act"),
            ("sent", "act"),
            ("no_answer", "offer"),
            ("wrong_party", "offer"),
        ],
    )
    def test_an_offer_that_reached_the_customer_lifts_the_gate(
        self, cn_engine: Engine, outcome: str, status: str
    ) -> None:
        """An event carrying the offer counts once it reached the customer (not a missed call)."""
        made = {
            "at": "2026-11-05T10:00:00+08:00",
            "channel": "phone",
            "outcome": outcome,
            "offer": "cn-instalments",
        }
        decision = cn_engine.decide(_cn(days_overdue=65, history=[*_LADDER_TO_LAWYER, made]), now=NOW)
        assert status == decision.status
        if status == "act":
            assert "lawyer_letter" == decision.action

    def test_an_offer_made_in_an_earlier_cycle_does_not_count(self, cn_engine: Engine) -> None:
        """The gate looks at this delinquency cycle only."""
        made = {
            "at": "2026-09-01T10:00:00+08:00",
            "channel": "phone",
            "outcome": "conversation",
            "offer": "cn-instalments",
        }
        decision = cn_engine.decide(_cn(days_overdue=65, history=[made, *_LADDER_TO_LAWYER]), now=NOW)
        assert "offer" == decision.status

    def test_a_fee_waiver_needs_the_principal(self, cn_engine: Engine) -> None:
        """Without `principal` fees are unknown: the waiver is left out (traced), never guessed."""
        decision = cn_engine.decide(_cn(days_overdue=65, history=_LADDER_TO_LAWYER), now=NOW)
        assert "cn-fee-reduction" not in [o.id for o in decision.offers]
        (entry,) = [t for t in decision.trace if t.rule == "offer:cn-fee-reduction"]
        assert entry.matched and entry.note is not None and "principal" in entry.note

    def test_the_summary_does_not_depend_on_the_locale(self, cn_engine: Engine) -> None:
        """Only the reason changes with the locale; offers (with their summary) do not."""
        record = _cn(days_overdue=65, history=_LADDER_TO_LAWYER)
        en = cn_engine.decide(record, now=NOW)
        zh = cn_engine.decide(record, now=NOW, locale="zh-CN")
        assert en.offers == zh.offers
        assert "律师函前先提出还款方案" in zh.reason

    def test_hardship_under_uk_gets_forbearance_before_default(self) -> None:
        """UK: a hardship account about to get a default notice is made a forbearance offer first."""
        engine = Engine.from_file(UK_POLICY)
        history = [
            {
                "at": "2026-09-20T10:00:00+00:00",
                "action": "sms_reminder",
                "channel": "sms",
                "outcome": "delivered",
            },
            *[
                {
                    "at": f"2026-09-2{d}T10:00:00+00:00",
                    "action": "arrears_call",
                    "channel": "phone",
                    "outcome": "no_answer",
                }
                for d in (7, 8, 9)
            ],
            {
                "at": "2026-10-20T10:00:00+00:00",
                "action": "arrears_notice",
                "channel": "letter",
                "outcome": "sent",
            },
            {
                "at": "2026-11-16T10:00:00+00:00",
                "action": "hardship_review",
                "channel": "phone",
                "outcome": "no_answer",
            },
        ]
        record = {
            "id": "UK-H", "currency": "GBP", "amount_overdue": "300.00", "balance": "2000.00",
            "days_overdue": 65, "flags": ["hardship"], "history": history,
        }  # fmt: skip
        decision = engine.decide(record, now=LONDON_NOW)
        assert "offer" == decision.status
        assert {"uk-forbearance-plan", "uk-payment-deferral"} <= {o.id for o in decision.offers}
        without = engine.decide({**record, "flags": []}, now=LONDON_NOW)
        assert ("act", "default_notice") == (without.status, without.action)


class TestEvaluators:
    @pytest.mark.parametrize("name", ["consumer-credit-cn", "uk-consumer-loan", "ie-consumer-loan"])
    def test_rete_gives_the_same_offers(self, name: str) -> None:
        """Every suite case with offers or status `offer`: rete's decision equals native's."""
        pytest.importorskip("durable")
        from escalation.policy._yaml import load_yaml

        suite_path = ROOT / "policies" / f"{name}_test.yaml"
        suite = load_yaml(suite_path.read_bytes(), str(suite_path)).data
        native = Engine.from_file(ROOT / "policies" / f"{name}.yaml")
        rete = Engine.from_file(ROOT / "policies" / f"{name}.yaml", backend="rete")
        compared = 0
        for case in suite["cases"]:
            record = {**suite.get("defaults", {}), **case["account"]}
            now = dt.datetime.fromisoformat(case["now"])
            try:
                want = native.decide(record, now=now)
            except RecordError:  # record errors are compared by the differential tests
                continue
            if want.offers or want.status == "offer":
                assert want.outcome() == rete.decide(record, now=now).outcome()
                compared += 1
        assert compared >= 3


class TestPolicyLanguage:
    def _load(self, tmp_path: Path, offers: str, tier_extra: str = "") -> None:
        text = f"""escalation: 1
policy: {{id: t, version: "1", currency: CNY, timezone: Asia/Shanghai}}
tiers:
  - {{id: sms, channel: sms, when: days_overdue >= 1{tier_extra}}}
offers:
{offers}
"""
        path = tmp_path / "p.yaml"
        path.write_text(text)
        load_policy(path)

    @pytest.mark.parametrize(
        ("offer", "message"),
        [
            (
                "{id: s, kind: settlement, when: balance > 0, discount: {min: '30%', max: '10%'}}",
                "`min` is above `max`",
            ),
            ("{id: s, kind: settlement, when: balance > 0, discount: {max: '100%'}}", "below 100%"),
            ("{id: f, kind: fee_waiver, when: balance > 0, share: '150%'}", "is not a percentage"),
            ("{id: e, kind: extension, when: balance > 0, days: 0d}", "calendar days"),
            (
                "{id: p, kind: instalment_plan, when: balance > 0, max_months: 0, min_instalment: '1.00'}",
                "greater than or equal",
            ),
            ("{id: p, kind: loan, when: balance > 0}", "kind"),
            ("{id: p, kind: extension, when: balence > 0, days: 7d}", "unknown-fact"),
        ],
    )
    def test_bad_offers_are_policy_errors(self, tmp_path: Path, offer: str, message: str) -> None:
        """An offer outside the language is refused when the policy loads, located."""
        with pytest.raises(PolicyError) as info:
            self._load(tmp_path, f"  - {offer}")
        assert message in str(info.value)

    def test_offers_are_fingerprinted_but_absent_ones_change_nothing(self) -> None:
        """A policy without offers hashes as before; its offers are part of a policy's meaning."""
        policy = load_policy(CN_POLICY)
        assert '"offers"' in policy.canonical and '"offer_first"' in policy.canonical
        us = load_policy(ROOT / "policies" / "us-card-collector.yaml")
        assert '"offers"' not in us.canonical and '"offer_first"' not in us.canonical
