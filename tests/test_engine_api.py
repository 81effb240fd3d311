"""The engine's public API: decide, decide_many, explain, errors, determinism."""

from __future__ import annotations

import copy
import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from escalation import (
    Decision,
    Engine,
    ErrorRow,
    EvaluationError,
    PolicyError,
    RecordError,
    UsageError,
    load_policy,
)

from .conftest import CN_POLICY, NOW, SHANGHAI


class TestDecide:
    def test_example_account_gets_a_call_with_figures(
        self, cn_engine: Engine, example_account: dict[str, Any]
    ) -> None:
        """The bundled example (13 days overdue, 2 SMS sent) gets a call; the reason has the figures."""
        decision = cn_engine.decide(example_account, now=NOW)
        assert ("act", "phone_call", "phone", 2) == (
            decision.status,
            decision.action,
            decision.channel,
            decision.severity,
        )
        assert "13 days overdue (calls from day 8)" in decision.reason
        assert "2 reminder SMS sent (last on 14 Nov)" in decision.reason
        assert "this is call 3 of at most 10" in decision.reason
        assert decision.policy.fingerprint == cn_engine.policy.fingerprint
        assert decision.decided_at == NOW

    def test_same_input_gives_byte_identical_json(
        self, cn_engine: Engine, example_account: dict[str, Any]
    ) -> None:
        """Same policy, record and instant give the same bytes, also from a fresh engine."""
        first = cn_engine.decide(example_account, now=NOW).to_json()
        second = Engine.from_file(CN_POLICY).decide(copy.deepcopy(example_account), now=NOW).to_json()
        assert first == second

    def test_without_trace_only_the_trace_differs(
        self, cn_engine: Engine, example_account: dict[str, Any]
    ) -> None:
        """`trace=False` (bulk runs) changes nothing but the empty trace."""
        full = cn_engine.decide(example_account, now=NOW).model_dump()
        bare = cn_engine.decide(example_account, now=NOW, trace=False).model_dump()
        assert full["trace"] and [] == bare["trace"]
        assert {**full, "trace": []} == bare

    def test_now_must_be_aware(self, cn_engine: Engine, example_account: dict[str, Any]) -> None:
        """A naive ``now`` is a usage error, not a guess at a time zone."""
        with pytest.raises(UsageError):
            cn_engine.decide(example_account, now=dt.datetime(2026, 11, 23, 10))

    def test_trace_lists_every_rule_evaluated(
        self, cn_engine: Engine, example_account: dict[str, Any]
    ) -> None:
        """The trace names every hold and every tier down to the chosen one, in evaluation order."""
        decision = cn_engine.decide(example_account, now=NOW)
        # guards are traced per channel, offers after the chosen tier (tests/test_offers.py)
        rules = [entry.rule for entry in decision.trace if not entry.rule.startswith(("guard:", "offer:"))]
        holds = [f"hold:{h.model.id}" for h in cn_engine.policy.holds]
        tiers = [
            f"tier:{t.model.id}" for t in reversed(cn_engine.policy.tiers) if t.severity >= decision.severity
        ]
        assert holds + tiers == rules

    def test_addresses_never_appear_in_decisions(
        self, cn_engine: Engine, example_account: dict[str, Any]
    ) -> None:
        """Phone numbers from the history are pseudonymised in the trace."""
        decision = cn_engine.decide(example_account, now=NOW)
        assert "+86-138-0000-0000" not in decision.to_json()


class TestRecordErrors:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"history": [{"at": "2026-11-20T10:00:00", "channel": "sms"}]}, "history.0.at"),
            ({"amount_overdue": "-1.00"}, "amount_overdue"),
            ({"nickname": "x"}, "nickname"),
            ({"history": [{"at": "2026-11-24T10:00:00+08:00", "channel": "sms"}]}, "history.0.at"),
            ({"currency": "XXY"}, "currency"),
            ({"days_overdue": 5}, "days_overdue"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"amount_overdue": "1.001"}, ""),
            ({"history": [{"at": "2026-11-20T10:00:00+08:00", "channel": "fax"}]}, "history.0.channel"),
        ],
    )
    def test_bad_record_names_the_field(
        self, cn_engine: Engine, example_account: dict[str, Any], change: dict[str, Any], field: str
    ) -> None:
        """Each kind of bad record is a RecordError naming the offending field."""
        record = {**example_account, **change}
        with pytest.raises(RecordError) as info:
            cn_engine.decide(record, now=NOW)
        assert field in [issue.field for issue in info.value.issues]
        assert info.value.account_id == "A-17"

    def test_non_object_record(self, cn_engine: Engine) -> None:
        """A record that is not an object is refused clearly."""
        with pytest.raises(RecordError, match="expected an object"):
            cn_engine.decide([1, 2], now=NOW)  # type: ignore[arg-type]

    def test_division_by_zero_is_an_evaluation_error(self, tmp_path: Path) -> None:
        """A condition that divides by zero fails closed with EvaluationError."""
        policy = tmp_path / "p.yaml"
        policy.write_text(
            "escalation: 1\npolicy: {id: p, version: '1', currency: CNY, timezone: Asia/Shanghai}\n"
            "tiers:\n  - {id: sms, channel: sms, when: 'amount_overdue / balance > 0.5'}\n"
        )
        engine = Engine.from_file(policy)
        record = {"id": "Z", "currency": "CNY", "amount_overdue": "0", "balance": "0", "days_overdue": 3}
        with pytest.raises(EvaluationError):
            engine.decide(record, now=NOW)


class TestDecideMany:
    def test_bad_records_become_error_rows(self, cn_engine: Engine, example_account: dict[str, Any]) -> None:
        """A bad record never stops a batch and never disappears: records = decisions + error rows."""
        bad = {**example_account, "id": "BAD", "balance": "-3"}
        records: list[Any] = [example_account, bad, "not an object", {**example_account, "id": "A-18"}]
        results = list(cn_engine.decide_many(records, now=NOW))
        assert len(records) == len(results)
        kinds = [type(r).__name__ for r in results]
        assert ["Decision", "ErrorRow", "ErrorRow", "Decision"] == kinds
        error = results[1]
        assert isinstance(error, ErrorRow)
        assert (2, "BAD", "balance") == (error.row, error.account_id, error.field)


class TestThreadSafety:
    def test_eight_threads_agree_with_one(self, cn_engine: Engine, example_account: dict[str, Any]) -> None:
        """10k records decided from 8 threads give exactly the single-threaded decisions."""
        records = []
        for i in range(10_000):
            rec = dict(example_account)
            rec["id"] = f"T-{i}"
            rec["amount_overdue"] = Decimal(100 + i % 900)
            rec["overdue_since"] = (dt.date(2026, 11, 22) - dt.timedelta(days=i % 120)).isoformat()
            records.append(rec)
        expected = [cn_engine.decide(r, now=NOW).to_json() for r in records]
        got: list[str | None] = [None] * len(records)

        def work(start: int) -> None:
            for index in range(start, len(records), 8):
                got[index] = cn_engine.decide(records[index], now=NOW).to_json()

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert expected == got


class TestFingerprint:
    def test_comments_order_and_spacing_do_not_change_it(self, tmp_path: Path) -> None:
        """Reordering keys, adding comments and reformatting conditions keeps the fingerprint."""
        original = load_policy(CN_POLICY)
        text = CN_POLICY.read_text()
        text = text.replace(
            '  version: "2026.11"\n  currency: CNY\n', "  currency: CNY   # money\n  version: '2026.11'\n"
        )
        text = text.replace(
            "days_overdue >= 31 and amount_overdue >= 500", "days_overdue>=31   and amount_overdue >= 500.0"
        )
        text = "# a comment on top\n" + text.replace(
            "../rules/", str(CN_POLICY.parent.parent / "rules") + "/"
        )
        assert text != CN_POLICY.read_text()
        copy_path = tmp_path / "same.yaml"
        copy_path.write_text(text)
        assert original.fingerprint == load_policy(copy_path).fingerprint

    def test_a_threshold_change_changes_it(self, tmp_path: Path) -> None:
        """Changing one threshold changes the fingerprint."""
        text = CN_POLICY.read_text().replace("days_overdue >= 8", "days_overdue >= 9")
        text = text.replace("../rules/", str(CN_POLICY.parent.parent / "rules") + "/")
        path = tmp_path / "changed.yaml"
        path.write_text(text)
        assert load_policy(CN_POLICY).fingerprint != load_policy(path).fingerprint


class TestOrderings:
    POLICY = """
escalation: 1
policy: {{id: order, version: "1", currency: CNY, timezone: Asia/Shanghai}}
tiers:
  - {{id: sms, channel: sms, when: days_overdue >= 1, repeat: {{max: 1}}}}
  - {{id: call, channel: phone, when: days_overdue >= 8, {requires} repeat: {{max: 1}}}}
  - {{id: letter, channel: letter, when: days_overdue >= 30, {requires2} repeat: {{max: 1}}}}
"""

    def _engine(self, tmp_path: Path, stepwise: bool) -> Engine:
        text = self.POLICY.format(
            requires="requires: {sms: 1}," if stepwise else "",
            requires2="requires: {call: 1}," if stepwise else "",
        )
        path = tmp_path / "order.yaml"
        path.write_text(text)
        return Engine.from_file(path)

    def test_without_requires_jumps_to_most_severe(self, tmp_path: Path) -> None:
        """Kill Bill style: a 40-day arrear with no history gets the letter at once."""
        engine = self._engine(tmp_path, stepwise=False)
        record = {"id": "J", "currency": "CNY", "amount_overdue": "1", "balance": "1", "days_overdue": 40}
        assert "letter" == engine.decide(record, now=NOW).action

    def test_with_requires_climbs_one_step_at_a_time(self, tmp_path: Path) -> None:
        """Odoo style: the same account climbs sms → call → letter, one step per decision."""
        engine = self._engine(tmp_path, stepwise=True)
        record: dict[str, Any] = {
            "id": "S",
            "currency": "CNY",
            "amount_overdue": "1",
            "balance": "1",
            "days_overdue": 40,
            "history": [],
        }
        actions = []
        moment = NOW
        for _ in range(4):
            decision = engine.decide(record, now=moment)
            actions.append(decision.action if decision.status == "act" else decision.status)
            if decision.status == "act":
                channel = decision.channel
                record = {
                    **record,
                    "history": [
                        *record["history"],
                        {"at": moment.isoformat(), "action": decision.action, "channel": channel},
                    ],
                }
            moment += dt.timedelta(hours=1)
        assert ["sms", "call", "letter", "none"] == actions


class TestPolicyLoading:
    def test_policy_error_carries_location(self) -> None:
        """PolicyError has file, line and column of the first issue."""
        path = Path(__file__).parent / "fixtures" / "bad" / "unknown-fact.yaml"
        with pytest.raises(PolicyError) as info:
            load_policy(path)
        assert (str(path), 8, "unknown-fact") == (info.value.file, info.value.line, info.value.code)
        assert info.value.column > 1

    def test_policy_error_is_a_value_error(self) -> None:
        """Callers may catch PolicyError as ValueError."""
        assert issubclass(PolicyError, ValueError)

    def test_all_errors_are_reported_sorted(self, tmp_path: Path) -> None:
        """Several problems in one file are all reported, sorted by position."""
        path = tmp_path / "many.yaml"
        path.write_text(
            "escalation: 1\npolicy: {id: m, version: '1', currency: CNY, timezone: Asia/Shanghai}\n"
            "tiers:\n  - {id: a, channel: sms, when: dayz >= 1}\n"
            "  - {id: b, channel: phone, when: flags > 2}\n"
        )
        with pytest.raises(PolicyError) as info:
            load_policy(path)
        codes = [issue.code for issue in info.value.issues]
        assert ["unknown-fact", "type-mismatch"] == codes
        lines = [issue.line for issue in info.value.issues]
        assert sorted(lines) == lines

    def test_file_too_large(self, tmp_path: Path) -> None:
        """Oversized policy files are refused before parsing."""
        path = tmp_path / "big.yaml"
        path.write_text("# " + "x" * 1_100_000 + "\n")
        with pytest.raises(PolicyError) as info:
            load_policy(path)
        assert "file-too-large" == info.value.code


def test_decision_is_frozen(cn_engine: Engine, example_account: dict[str, Any]) -> None:
    """Decisions are immutable values."""
    decision: Decision = cn_engine.decide(example_account, now=NOW)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        decision.status = "none"  # type: ignore[misc]
    assert SHANGHAI.utcoffset(None) == decision.decided_at.utcoffset()


def test_blocked_until_is_when_contact_is_allowed_again(cn_engine: Engine) -> None:
    """A daily cap that reopens at midnight reports `until` at the next opening of contact hours."""
    record = {
        "id": "U-1",
        "currency": "CNY",
        "amount_overdue": "600.00",
        "balance": "5000.00",
        "days_overdue": 13,
        "history": [
            {
                "at": "2026-11-11T10:00:00+08:00",
                "action": "sms_reminder",
                "channel": "sms",
                "outcome": "delivered",
            },
            {"at": "2026-11-23T09:00:00+08:00", "channel": "phone", "outcome": "conversation"},
            {"at": "2026-11-23T11:00:00+08:00", "channel": "phone", "outcome": "conversation"},
            {"at": "2026-11-23T13:00:00+08:00", "channel": "phone", "outcome": "conversation"},
        ],
    }
    decision = cn_engine.decide(record, now=dt.datetime(2026, 11, 23, 16, tzinfo=SHANGHAI))
    capped = [b for b in decision.blocked if b.guard == "cn-connected-calls-per-day"]
    assert [dt.datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)] == [b.until for b in capped]
