"""The command line, as a user runs it: exit codes, JSON out, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from escalation.cli import main

from .conftest import CN_POLICY, ROOT

AT = "2026-11-23T10:00:00+08:00"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


class TestDecide:
    def test_bundled_defaults(self) -> None:
        """`escalation decide --at` with no files decides the bundled example under the bundled policy."""
        code, out, _ = run("decide", "--at", AT)
        assert 0 == code
        decision = json.loads(out)
        assert ("act", "phone_call") == (decision["status"], decision["action"])
        assert decision["policy"]["id"] == "consumer-credit-cn"

    def test_byte_identical_twice(self) -> None:
        """The same command twice prints byte-identical JSON."""
        assert run("decide", "--at", AT)[1] == run("decide", "--at", AT)[1]

    def test_stdin_and_jsonl(self) -> None:
        """Several accounts as JSON lines on stdin give one decision per line."""
        account = (ROOT / "examples" / "account.json").read_text()
        one = json.dumps(json.loads(account))
        two = json.dumps({**json.loads(account), "id": "A-18"})
        code, out, _ = run("decide", "--account", "-", "--at", AT, "--compact", input=f"{one}\n{two}\n")
        assert 0 == code
        assert ["A-17", "A-18"] == [json.loads(line)["account_id"] for line in out.splitlines()]

    def test_bad_record_names_field_and_exits_1(self, tmp_path: Path) -> None:
        """A bad record prints the file, row and field; exit 1; no traceback."""
        path = tmp_path / "bad.json"
        path.write_text(
            json.dumps(
                {"id": "B", "currency": "CNY", "amount_overdue": "-1", "balance": "1", "days_overdue": 2}
            )
        )
        code, _, err = run("decide", "--account", str(path), "--at", AT)
        assert 1 == code
        assert f"{path}:1:" in err and "amount_overdue" in err
        assert "Traceback" not in err

    @pytest.mark.parametrize("at", ["2026-11-23T10:00:00", "yesterday"])
    def test_bad_at(self, at: str) -> None:
        """`--at` must be ISO 8601 with an offset."""
        code, _, err = run("decide", "--at", at)
        assert 1 == code and "--at" in err

    def test_invalid_policy_exits_3(self) -> None:
        """An invalid policy exits 3 with located errors."""
        bad = ROOT / "tests" / "fixtures" / "bad" / "unknown-fact.yaml"
        code, _, err = run("decide", "--policy", str(bad), "--at", AT)
        assert 3 == code and "unknown-fact" in err


def test_explain_shows_reason_and_trace() -> None:
    """`explain` prints the status, reason and each rule with figures."""
    code, out, _ = run("explain", "--at", AT)
    assert 0 == code
    assert "ACT  phone_call by phone" in out
    assert "tier:demand_letter" in out and "days_overdue=13" in out


def test_check_ok() -> None:
    """A valid policy checks with exit 0 and prints its fingerprint."""
    code, out, _ = run("check", str(CN_POLICY))
    assert 0 == code and "sha256:" in out


class TestPolicyTests:
    def test_shipped_suite_passes(self) -> None:
        """The shipped CN suite passes with full coverage."""
        code, out, _ = run("test", str(ROOT / "policies" / "consumer-credit-cn_test.yaml"))
        assert 0 == code, out
        assert "0 failed" in out and "UNCOVERED" not in out

    def test_mismatch_fails_with_2(self, tmp_path: Path) -> None:
        """A case whose expectation is wrong fails the suite (exit 2) and says why."""
        suite = tmp_path / "p_test.yaml"
        suite.write_text(
            f"escalation: 1\npolicy: {CN_POLICY}\ncoverage: false\ncases:\n"
            "  - name: wrong\n    now: '2026-11-23T10:00:00+08:00'\n"
            "    account: {id: X, currency: CNY, amount_overdue: '1.00', balance: '1.00', days_overdue: 2}\n"
            "    expect: {status: act, action: phone_call}\n"
        )
        code, out, _ = run("test", str(suite))
        assert 2 == code
        assert "FAIL" in out and "expected `phone_call`, got `sms_reminder`" in out

    def test_empty_suite_fails(self, tmp_path: Path) -> None:
        """A suite with no cases fails (like opa test --fail-on-empty)."""
        suite = tmp_path / "p_test.yaml"
        suite.write_text(f"escalation: 1\npolicy: {CN_POLICY}\ncases: []\n")
        code, out, _ = run("test", str(suite))
        assert 2 == code and "empty suite" in out

    def test_uncovered_rules_fail(self, tmp_path: Path) -> None:
        """With coverage on, a suite that never exercises a tier fails."""
        suite = tmp_path / "p_test.yaml"
        suite.write_text(
            f"escalation: 1\npolicy: {CN_POLICY}\ncases:\n"
            "  - name: one\n    now: '2026-11-23T10:00:00+08:00'\n"
            "    account: {id: X, currency: CNY, amount_overdue: '1.00', balance: '1.00', days_overdue: 2}\n"
            "    expect: {status: act, action: sms_reminder}\n"
        )
        code, out, _ = run("test", str(suite))
        assert 2 == code and "UNCOVERED" in out and "tier `litigation_referral` never acts" in out

    def test_no_suite_found_fails(self, tmp_path: Path) -> None:
        """Pointing at a directory without suites fails."""
        code, _, err = run("test", str(tmp_path))
        assert 2 == code and "no *_test.yaml" in err


def test_schema_matches_shipped_file() -> None:
    """The shipped JSON Schema is the one generated from the models (no drift)."""
    code, out, _ = run("schema")
    assert 0 == code
    shipped = json.loads((ROOT / "escalation" / "schemas" / "policy.schema.json").read_text())
    assert shipped == json.loads(out)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "no account records"), (b"\xff\xfe", "invalid JSON"), (b"[1, 2", "invalid JSON")],
)
def test_unreadable_account_files(tmp_path: Path, content: bytes, message: str) -> None:
    """Empty, binary or truncated account files fail with exit 1 and a message, never a traceback."""
    path = tmp_path / "accounts.json"
    path.write_bytes(content)
    code, _, err = run("decide", "--account", str(path), "--at", AT)
    assert 1 == code
    assert message in err and "Traceback" not in err


def test_explain_a_journaled_record(tmp_path: Path) -> None:
    """`explain --record ID --journal J` explains a decision from the audit journal."""
    journal = tmp_path / "j.sqlite"
    assert 0 == run("decide", "--at", AT, "--journal", str(journal))[0]
    code, out, _ = run("explain", "--record", "1", "--journal", str(journal))
    assert 0 == code
    assert "seq 1" in out and "ACT  phone_call by phone" in out


def test_explain_record_needs_journal() -> None:
    """`--record` without `--journal` is a usage error."""
    code, _, err = run("explain", "--record", "1")
    assert 1 == code and "--journal" in err
