"""Issue 9, records through the public API: no fail-open input (misspelt
flags, events without a channel), no traceback on hostile values, no
personal data echoed, and the account's own zone in contact hours."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine, EvaluationError, RecordError, UsageError
from escalation.decision import ErrorRow

from .conftest import CN_POLICY, NOW, ROOT
from .test_cli import AT, run

US = Engine.from_file(ROOT / "policies" / "us-card-collector.yaml")
US_NOW = dt.datetime.fromisoformat("2020-04-07T10:00:00-04:00")
CALLS = ["04-01T10", "04-02T10", "04-02T15", "04-03T10", "04-03T15", "04-06T10", "04-06T15"]


def us_record() -> dict[str, Any]:
    """US-02 of the Regulation F policy tests: 7 calls in 7 days, the 8th is refused."""
    history = [
        {"at": "2020-03-30T09:00:00-04:00", "action": "email_notice", "channel": "email", "outcome": "sent"}
    ]
    history += [
        {
            "at": f"2020-{c}:00:00-04:00",
            "action": "collection_call",
            "channel": "phone",
            "outcome": "no_answer",
        }
        for c in CALLS
    ]
    return {
        "id": "US-02", "currency": "USD", "timezone": "America/New_York",
        "actor_type": "third_party_collector", "amount_overdue": "500.00", "balance": "3000.00",
        "last_payment_at": "2020-01-15", "days_overdue": 20, "history": history,
    }  # fmt: skip


def _same_but_id(decision: Any) -> dict[str, Any]:
    """The decision's outcome without its id (which hashes the input as given)."""
    outcome: dict[str, Any] = decision.outcome()
    outcome.pop("id")
    return outcome


def cn_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((ROOT / "examples" / "account.json").read_text())
    record.update(changes)
    return record


class TestFlags:
    """Item 1: flags are a closed vocabulary (known + declared by the policy or its packs)."""

    @pytest.mark.parametrize(
        ("flag", "nearest"),
        [
            ("Dispute", "dispute"),
            ("DISPUTE", "dispute"),
            ("disputed", "dispute"),
            ("Deceased", "deceased"),
            ("bankrupt", "bankruptcy"),
            ("breathing space", "breathing_space"),
            ("Cease_Communication", "cease_communication"),
            ("dispute\u200b", "dispute"),
            ("disput\u0435", "dispute"),  # Cyrillic e
            ("\u202edispute", "dispute"),
            ("dispute\x00", "dispute"),
            (" dispute", "dispute"),
        ],
    )
    def test_variant_of_a_blocking_flag_is_a_record_error(
        self, cn_engine: Engine, flag: str, nearest: str
    ) -> None:
        """A misspelt or disguised blocking flag is a record error naming `flags.N` and the nearest flag."""
        with pytest.raises(RecordError) as caught:
            cn_engine.decide(cn_record(flags=["hardship", flag]), now=NOW)
        issue = caught.value.issues[0]
        assert ("flags.1", "unknown-flag") == (issue.field, issue.code)
        assert f"did you mean `{nearest}`?" in issue.message

    def test_two_flags_in_one_string(self, cn_engine: Engine) -> None:
        """A CSV-style `hardship,dispute` in one item is refused, not ignored."""
        with pytest.raises(RecordError, match="several flags in one string"):
            cn_engine.decide(cn_record(flags=["hardship,dispute"]), now=NOW)

    def test_exact_flag_holds_and_declared_flag_is_accepted(self, cn_engine: Engine) -> None:
        """`dispute` holds; a flag the included pack declares (`visit_agreed`) is accepted."""
        assert "hold" == cn_engine.decide(cn_record(flags=["dispute"]), now=NOW).status
        cn_engine.decide(cn_record(flags=["visit_agreed"]), now=NOW)
        with pytest.raises(RecordError, match=r"flags\.0"):
            US.decide({**us_record(), "flags": ["visit_agreed"]}, now=US_NOW)  # not declared there

    def test_policy_declares_flags(self, tmp_path: Path) -> None:
        """`policy.flags` extends the vocabulary; a condition naming an undeclared flag fails to load."""
        text = (
            "escalation: 1\npolicy: {id: p, version: '1', currency: CNY, timezone: Asia/Shanghai,"
            " flags: [vip]}\n"
            "tiers:\n  - {id: sms, channel: sms, when: \"days_overdue >= 1 and 'vip' not in flags\"}\n"
        )
        (tmp_path / "p.yaml").write_text(text)
        engine = Engine.from_file(tmp_path / "p.yaml")
        record = {
            "id": "A",
            "currency": "CNY",
            "amount_overdue": "1.00",
            "balance": "1.00",
            "days_overdue": 3,
        }
        assert "none" == engine.decide({**record, "flags": ["vip"]}, now=NOW).status
        (tmp_path / "q.yaml").write_text(text.replace(",\n flags: [vip]", "").replace(" flags: [vip]", ""))
        code, _, err = run("check", str(tmp_path / "q.yaml"))
        assert 3 == code and ":4:" in err and "unknown-flag" in err


class TestChannels:
    """Item 2: an event without `channel` takes its tier's single channel, or is a record error."""

    def test_omitted_channel_does_not_escape_the_frequency_cap(self) -> None:
        """7 calls without `channel` are counted by the 7-in-7 guard exactly as with `channel: phone`."""
        record = us_record()
        with_channel = US.decide(record, now=US_NOW)
        for event in record["history"]:
            del event["channel"]
        without = US.decide(record, now=US_NOW)
        # v2: the stage (collection_call) waits out the 7-in-7 window; no milder text instead
        assert ("wait", None) == (without.status, without.action)
        assert _same_but_id(with_channel) == _same_but_id(without)
        assert without.blocked_by("us-regf-call-frequency")

    def test_unknowable_channel_is_a_record_error(self, cn_engine: Engine) -> None:
        """An outbound event of no tier, or of a tier with several channels, must give its channel."""
        events = [{"at": "2026-11-20T10:00:00+08:00", "outcome": "no_answer"}]
        with pytest.raises(RecordError) as caught:
            cn_engine.decide(cn_record(history=events), now=NOW)
        assert ("history.0.channel", "unknown-channel") == (
            caught.value.issues[0].field,
            caught.value.issues[0].code,
        )
        payment = [{"at": "2026-11-20T10:00:00+08:00", "outcome": "payment"}]
        cn_engine.decide(cn_record(history=payment), now=NOW)  # a payment is no contact


class TestDuplicateKeys:
    """Item 3: duplicate keys in account JSON are refused, never "last wins"."""

    def test_duplicate_flags_key_is_an_error_row(self, tmp_path: Path) -> None:
        """`"flags":["dispute"],"flags":[]` is an error (exit 1), not an act."""
        text = json.dumps(cn_record())[:-1] + ', "flags": ["dispute"], "flags": []}'
        path = tmp_path / "a.json"
        path.write_text(text)
        code, out, err = run("decide", "--account", str(path), "--at", AT)
        assert (1, "") == (code, out)
        assert "key `flags` appears twice" in err


class TestNoTraceback:
    """Item 7: hostile values are record errors (or usage errors), never tracebacks."""

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"timezone": "America/Argentina"}, "timezone"),
            ({"timezone": "A/" + "b" * 300}, "timezone"),
            ({"timezones": ["America"]}, "timezones"),
            ({"overdue_since": "0001-01-01", "days_overdue": None}, "overdue_since"),
            ({"last_payment_at": "9999-12-31"}, "last_payment_at"),
            ({"history": [{"at": "0001-01-01T00:00:00+14:00", "channel": "sms"}]}, "history.0.at"),
            ({"history": [{"at": "9999-12-31T23:59:59-12:00", "channel": "sms"}]}, "history.0.at"),
            ({"days_overdue": 10**5000}, "days_overdue"),
        ],
    )
    def test_record_error_names_the_field(
        self, cn_engine: Engine, change: dict[str, Any], field: str
    ) -> None:
        """Each hostile value is a record error naming its field; decide_many yields an error row."""
        record = {k: v for k, v in {**cn_record(), **change}.items() if v is not None}
        with pytest.raises(RecordError) as caught:
            cn_engine.decide(record, now=NOW)
        assert field in [issue.field for issue in caught.value.issues]
        rows = list(cn_engine.decide_many([record, cn_record()], now=NOW))
        assert isinstance(rows[0], ErrorRow) and not isinstance(rows[1], ErrorRow)

    def test_nested_100k_deep(self, tmp_path: Path) -> None:
        """JSON nested 100,000 deep is an error row, and the next line is still decided."""
        path = tmp_path / "a.jsonl"
        path.write_text(
            '{"id": "X", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n" + json.dumps(cn_record()) + "\n"
        )
        code, out, err = run("decide", "--account", str(path), "--at", AT, "--compact")
        assert 1 == code and "nested too deeply" in err and 1 == len(out.splitlines())
        path.write_text('{"id": "X", "days_overdue": ' + "9" * 5000 + "}\n" + json.dumps(cn_record()) + "\n")
        code, out, err = run("decide", "--account", str(path), "--at", AT, "--compact")
        assert 1 == code and "a number is too long" in err and 1 == len(out.splitlines())

    @pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
    def test_instant_at_the_ends_of_the_calendar(self, cn_engine: Engine, at: str) -> None:
        """`now` (and `--at`) outside 1900..2199 is a usage error, not an OverflowError."""
        with pytest.raises(UsageError):
            cn_engine.decide(cn_record(), now=dt.datetime.fromisoformat(at))
        code, _, err = run("decide", "--at", at)
        assert 1 == code and "outside the supported range" in err and "Traceback" not in err

    def test_evaluation_errors_stay_errors(self) -> None:
        """The error a valid record can still raise is an EvaluationError (a ValueError's sibling)."""
        assert issubclass(EvaluationError, RuntimeError)


class TestPrivacy:
    """Items 15 and 16: no address-derived label in decisions; no personal data echoed in errors."""

    def test_address_labels_are_ordinal(self, tmp_path: Path) -> None:
        """Per-address counts are keyed `address 1`, `address 2` (first use), never a hash of the number."""
        text = (
            "escalation: 1\npolicy: {id: p, version: '1', currency: CNY, timezone: Asia/Shanghai}\n"
            "tiers:\n  - {id: call, channel: phone, when: days_overdue >= 1}\n"
            "guards:\n  - {id: f, kind: frequency, channels: [phone], max: 1, window: 1d, per: address,"
            " reason: r, cite: c}\n"
        )
        (tmp_path / "p.yaml").write_text(text)
        engine = Engine.from_file(tmp_path / "p.yaml")
        phones = ["+86-138-0000-0001", "+86-138-0000-0002"]
        history = [
            {"at": f"2026-11-23T0{8 + i}:00:00+08:00", "action": "call", "outcome": "no_answer", "address": p}
            for i, p in enumerate(phones)
        ]
        record = {"id": "A", "currency": "CNY", "amount_overdue": "1.00", "balance": "1.00",
                  "days_overdue": 3, "history": history}  # fmt: skip
        text_out = engine.decide(record, now=NOW).to_json()
        assert '"counted":{"address 1":1,"address 2":1}' in text_out
        assert "addr:" not in text_out and not any(p in text_out for p in phones)

    @pytest.mark.parametrize("field", ["timezone", "currency", "flags"])
    def test_a_phone_number_in_the_wrong_field_is_not_echoed(self, tmp_path: Path, field: str) -> None:
        """A phone number put in `timezone`, `currency` or `flags` is named by field, not echoed."""
        phone = "+86 138 0013 8000"
        record = cn_record(**{field: [phone] if field == "flags" else phone})
        path = tmp_path / "a.json"
        path.write_text(json.dumps(record))
        code, _, err = run("decide", "--account", str(path), "--at", AT)
        assert 1 == code and field in err and "138" not in err

    def test_free_text_id_is_not_echoed(self, cn_engine: Engine) -> None:
        """An over-long `id` of a bad record is not echoed into the error row."""
        record = cn_record(id="note: " + "x" * 5000, currency="XXY")
        [row] = list(cn_engine.decide_many([record], now=NOW))
        assert isinstance(row, ErrorRow) and row.account_id is None and "xxxx" not in row.message


class TestZones:
    """Item 17: the account's own zone is always one its contact hours must hold in."""

    def test_own_zone_is_kept_beside_timezones(self, cn_engine: Engine) -> None:
        """Shanghai plus `[America/Los_Angeles]`: no call at 01:31 Shanghai time (09:31 in LA)."""
        now = dt.datetime.fromisoformat("2026-11-24T01:31:00+08:00")
        record = cn_record(timezone="Asia/Shanghai", timezones=["America/Los_Angeles"])
        decision = cn_engine.decide(record, now=now)
        assert decision.status != "act"
        assert decision.blocked_by("cn-quiet-hours")
        facts = decision.trace_for("guard", "cn-quiet-hours")[0].facts
        assert ["America/Los_Angeles", "Asia/Shanghai"] == sorted(facts["local_time"])

    def test_zones_are_not_duplicated(self, cn_engine: Engine) -> None:
        """Listing the account's own zone again changes nothing."""
        base = cn_record(timezone="Asia/Shanghai")
        again = copy.deepcopy(base) | {"timezones": ["Asia/Shanghai"]}
        first, second = cn_engine.decide(base, now=NOW), cn_engine.decide(again, now=NOW)
        assert _same_but_id(first) == _same_but_id(second)  # the id hashes the (different) input


def test_cn_policy_path_exists() -> None:
    """The fixtures this module uses are the shipped ones."""
    assert CN_POLICY.exists()
