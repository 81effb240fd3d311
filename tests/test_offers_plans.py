"""Plans as history (issue 13): an agreed plan's instalments against the
payments in the history — current, missed (which instalment, since when) or
completed — and a broken plan no longer holds collection."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from escalation import Engine, RecordError
from escalation._facts import derive

from .conftest import NOW

_TERMS = {
    "status": "active",
    "next_due_date": "2026-12-01",
    "agreed_at": "2026-10-28",
    "instalments": [
        {"due_date": "2026-11-01", "amount": "200.00"},
        {"due_date": "2026-12-01", "amount": "200.00"},
        {"due_date": "2027-01-01", "amount": "200.00"},
    ],
}


def _pay(day: str, amount: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"at": f"{day}T10:00:00+08:00", "direction": "inbound", "outcome": "payment"}
    if amount is not None:
        event["amount"] = amount
    return event


def _facts(
    engine: Engine, history: list[dict[str, Any]], now: dt.datetime = NOW, **plan: Any
) -> dict[str, Any]:
    record = {
        "id": "PL-1", "currency": "CNY", "amount_overdue": "600.00", "balance": "600.00",
        "days_overdue": 40, "payment_plan": {**_TERMS, **plan}, "history": history,
    }  # fmt: skip
    account = engine.validate(record, now=now)
    values = derive(account, now, engine.policy).values
    keys = ("plan_status", "plan_missed_instalment", "days_since_missed_instalment", "plan_active")
    return {k: values[k] for k in keys if k in values}


class TestPlanFacts:
    def test_current(self, cn_engine: Engine) -> None:
        """The first instalment paid, the second not yet due: current, still active."""
        assert {"plan_status": "current", "plan_active": True} == _facts(
            cn_engine, [_pay("2026-10-30", "200.00")]
        )

    def test_missed_names_the_instalment_and_its_age(self, cn_engine: Engine) -> None:
        """CNY 150 of 200 paid by 1 Nov (+3 days' grace): instalment 1 missed, 22 days ago on 23 Nov."""
        got = _facts(cn_engine, [_pay("2026-10-30", "150.00")])
        want = {
            "plan_status": "missed",
            "plan_missed_instalment": 1,
            "days_since_missed_instalment": 22,
            "plan_active": False,
        }
        assert want == got

    def test_payments_count_cumulatively_in_order(self, cn_engine: Engine) -> None:
        """CNY 300 paid: the first instalment and half the second; on 5 Dec the second is missed."""
        now = dt.datetime(2026, 12, 5, 10, 0, tzinfo=NOW.tzinfo)
        got = _facts(cn_engine, [_pay("2026-10-30", "100.00"), _pay("2026-11-20", "200.00")], now=now)
        assert ("missed", 2, 4) == (
            got["plan_status"],
            got["plan_missed_instalment"],
            got["days_since_missed_instalment"],
        )

    def test_completed(self, cn_engine: Engine) -> None:
        """Every instalment paid: completed, no longer active."""
        assert {"plan_status": "completed", "plan_active": False} == _facts(
            cn_engine, [_pay("2026-11-01", "600.00")]
        )

    def test_payments_before_the_agreement_do_not_count(self, cn_engine: Engine) -> None:
        """A payment made before `agreed_at` pays no instalment."""
        assert "missed" == _facts(cn_engine, [_pay("2026-10-20", "600.00")])["plan_status"]

    def test_an_unknown_payment_amount_breaks_nothing(self, cn_engine: Engine) -> None:
        """A payment without an amount: neither missed nor completed; the plan stays as recorded."""
        assert {"plan_active": True} == _facts(cn_engine, [_pay("2026-10-30", None)])

    def test_a_plan_without_terms_is_its_status(self, cn_engine: Engine) -> None:
        """No instalments: no plan facts beyond `plan_active`, which is the record's status."""
        assert {"plan_active": True} == _facts(cn_engine, [], instalments=[], agreed_at=None)


class TestPlanRecord:
    @pytest.mark.parametrize(
        ("plan", "message"),
        [
            ({"agreed_at": None}, "needs `agreed_at`"),
            (
                {
                    "instalments": [
                        {"due_date": "2026-12-01", "amount": "1"},
                        {"due_date": "2026-11-01", "amount": "1"},
                    ]
                },
                "in order",
            ),
            ({"instalments": [{"due_date": "2026-10-01", "amount": "1"}]}, "before `agreed_at`"),
            ({"instalments": [{"due_date": "2026-11-01", "amount": "1.001"}]}, "decimal places"),
        ],
    )
    def test_bad_terms_are_record_errors(self, cn_engine: Engine, plan: dict[str, Any], message: str) -> None:
        """Plan terms that cannot be read are refused, naming the problem."""
        with pytest.raises(RecordError) as info:
            _facts(cn_engine, [], **plan)
        assert message in str(info.value)
