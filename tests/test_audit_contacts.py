"""The contact audit as a compliance officer runs it: contacts actually made,
re-checked as of their own instants, planted violations found exactly, legal
and policy breaches kept apart, files and exit codes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from escalation import audit_contacts
from escalation.cli import main
from escalation.portfolio.generate import PROFILES, generate, write_portfolio
from escalation.portfolio.plant import Planter

from .conftest import CN_POLICY, NOW, ROOT

SAMPLE = ROOT / "examples" / "portfolio-cn.jsonl"
BAD = ROOT / "examples" / "portfolio-bad.jsonl"
IE_POLICY = ROOT / "policies" / "ie-consumer-loan.yaml"
EVER = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def account(history: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A plain CN account 20 days overdue at NOW with ``history``."""
    return {"id": "A-1", "currency": "CNY", "amount_overdue": "900.00", "balance": "5000.00",
            "overdue_since": "2026-11-03", "timezone": "Asia/Shanghai",
            "history": history, **extra}  # fmt: skip


def call(at: str, outcome: str = "conversation", **extra: Any) -> dict[str, Any]:
    return {
        "at": at,
        "action": "phone_call",
        "channel": "phone",
        "outcome": outcome,
        "address": "+86-1",
        **extra,
    }


def audit_records(tmp_path: Path, records: list[dict[str, Any]], policy: Path = CN_POLICY) -> Any:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return audit_contacts(policy, path, start=EVER, end=END, at=NOW, out=tmp_path / "out")


def violations(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out" / "violations.jsonl").read_text().splitlines()]


class TestPlanted:
    @pytest.mark.parametrize("profile", sorted(PROFILES))
    def test_planted_violations_are_found_exactly(self, profile: str, tmp_path: Path) -> None:
        """On every shipped policy the audit finds exactly the planted violations (precision, recall 100%)."""
        path = tmp_path / "planted.jsonl"
        args = ["portfolio", "generate", "-n", "160", "--seed", "3", "--profile", profile, "-o", str(path),
                "--violations", "60%", "--at", NOW.isoformat()]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert 0 == result.exit_code, result.output
        truth = [json.loads(line) for line in Path(f"{path}.planted.jsonl").read_text().splitlines()]
        audit = audit_contacts(
            PROFILES[profile].policy, path, start=EVER, end=END, at=NOW, out=tmp_path / "out"
        )
        found = {(v["account_id"], v["event_index"], v["id"]) for v in violations(tmp_path)}
        planted = {(t["account_id"], t["event_index"], t["guard"]) for t in truth}
        assert planted == found
        assert len(planted) == audit.violations > 40
        offered = {name for name, _ in Planter(_policy(profile), random.Random(0), NOW).kinds}
        assert offered == {t["plant"] for t in truth}

    def test_clean_sample_reports_none(self) -> None:
        """The bundled sample, generated with compliant histories, holds no violation."""
        result = audit_contacts(CN_POLICY, SAMPLE, start=EVER, end=END, at=NOW)
        assert (1000, 1000, 0) == (result.accounts, result.audited, result.errors)
        assert 0 == result.violations
        assert result.contacts > 5000

    def test_generator_without_the_option_writes_the_same_bytes(self, tmp_path: Path) -> None:
        """Without --violations the generator's output is pinned byte for byte (planting adds nothing)."""
        path = tmp_path / "legacy.jsonl"
        write_portfolio(generate(1000, 1, "cn-card", NOW), path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert "1482adce418451da33bf4bf934dde9567b55626b656e75e9388c0a65369e1b0c" == digest

    def test_planted_generation_is_deterministic(self, tmp_path: Path) -> None:
        """The same seed and rate give the same portfolio and the same truth, byte for byte."""
        outputs = []
        for name in ("a.jsonl", "b.jsonl"):
            args = [
                "portfolio",
                "generate",
                "-n",
                "60",
                "--seed",
                "9",
                "-o",
                str(tmp_path / name),
                "--violations",
                "0.3",
            ]
            assert 0 == CliRunner().invoke(main, args).exit_code
            outputs.append(
                ((tmp_path / name).read_bytes(), Path(f"{tmp_path / name}.planted.jsonl").read_bytes())
            )
        assert outputs[0] == outputs[1]


def _policy(profile: str) -> Any:
    from escalation import load_policy

    return load_policy(ROOT / PROFILES[profile].policy)


class TestAsOf:
    def test_only_history_before_the_contact_counts(self, tmp_path: Path) -> None:
        """The 4th connected call of a day is a violation; the three before it are not."""
        calls = [call(f"2026-11-20T{h}:00:00+08:00") for h in (10, 11, 12, 13)]
        result = audit_records(tmp_path, [account(calls)])
        rows = violations(tmp_path)
        assert [(3, "cn-connected-calls-per-day")] == [(r["event_index"], r["id"]) for r in rows]
        assert {"account": 3} == rows[0]["figures"]["counted"]
        assert 3 == rows[0]["figures"]["max"]
        assert (4, 1) == (result.contacts, result.contacts_in_breach)

    def test_a_dispute_received_later_does_not_count(self, tmp_path: Path) -> None:
        """A contact before the dispute was received is fine; one after it breaks the dispute hold (legal)."""
        calls = [
            call("2026-11-18T10:00:00+08:00", "no_answer"),
            call("2026-11-20T10:00:00+08:00", "no_answer"),
        ]
        result = audit_records(tmp_path, [account(calls, dispute_received_at="2026-11-19T09:00:00+08:00")])
        rows = violations(tmp_path)
        assert [(1, "dispute", "hold", "legal")] == [
            (r["event_index"], r["id"], r["rule"], r["breach"]) for r in rows
        ]
        assert 1 == result.legal

    def test_a_promise_to_pay_hold_is_a_policy_breach(self, tmp_path: Path) -> None:
        """A call during a promise-to-pay hold is reported as a policy breach, not a legal one."""
        promise = {"amount": "900.00", "due_date": "2026-11-28", "made_at": "2026-11-19T09:00:00+08:00"}
        audit_records(
            tmp_path, [account([call("2026-11-20T10:00:00+08:00", "no_answer")], promise_to_pay=promise)]
        )
        assert [("promise-to-pay", "policy")] == [(r["id"], r["breach"]) for r in violations(tmp_path)]

    def test_an_action_outside_the_ladder_meets_the_channel_guards(self, tmp_path: Path) -> None:
        """An action that is no tier of the policy is checked by the guards that select by channel alone."""
        event = {
            "at": "2026-11-20T23:10:00+08:00",
            "action": "manual_call",
            "channel": "phone",
            "outcome": "no_answer",
        }
        audit_records(tmp_path, [account([event])])
        assert [("cn-quiet-hours", "self-regulatory")] == [
            (r["id"], r["breach"]) for r in violations(tmp_path)
        ]

    def test_the_actor_is_the_events_then_the_accounts(self, tmp_path: Path) -> None:
        """Each violation names who made the contact: the event's actor, else the account's actor type."""
        late = [
            call("2026-11-20T23:10:00+08:00", "no_answer", actor="agency-x"),
            call("2026-11-21T23:10:00+08:00"),
        ]
        result = audit_records(tmp_path, [account(late, actor_type="first_party_creditor")])
        assert ["agency-x", "first_party_creditor"] == [r["actor"] for r in violations(tmp_path)]
        assert {"agency-x", "first_party_creditor"} == set(result.by_actor)


class TestBreachClasses:
    def test_a_policy_local_guard_is_a_policy_breach(self, tmp_path: Path) -> None:
        """An SMS at 22:30 in Ireland breaks only the policy's own ie-text-hours: a policy breach, exit 0."""
        record = {"id": "IE-1", "currency": "EUR", "amount_overdue": "100.00", "balance": "900.00",
                  "overdue_since": "2026-11-01", "timezone": "Europe/Dublin",
                  "history": [{"at": "2026-11-18T22:30:00+00:00", "action": "sms_reminder", "channel": "sms",
                               "outcome": "delivered"}]}  # fmt: skip
        path = tmp_path / "ie.jsonl"
        path.write_text(json.dumps(record) + "\n")
        args = ["audit", "contacts", "-p", str(IE_POLICY), "--portfolio", str(path), "--from", "2026-11-01",
                "--to", "2026-12-01", "--at", NOW.isoformat(), "-o", str(tmp_path / "out")]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert 0 == result.exit_code, result.output
        assert result.output.startswith("ok ")
        assert [("ie-text-hours", "policy", "ie-consumer-loan")] == [
            (r["id"], r["breach"], r["source"]) for r in violations(tmp_path)
        ]


class TestCommand:
    def test_a_legal_violation_exits_2(self, tmp_path: Path) -> None:
        """A contact during a dispute makes `audit contacts` exit 2 and print FAIL with the tables."""
        records = [
            account([call("2026-11-20T10:00:00+08:00")], dispute_received_at="2026-11-19T09:00:00+08:00")
        ]
        path = tmp_path / "p.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        args = ["audit", "contacts", "--portfolio", str(path), "--from", "2026-11-01", "--to", "2026-12-01",
                "--tz", "Asia/Shanghai", "--at", NOW.isoformat()]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert 2 == result.exit_code, result.output
        assert result.output.startswith("FAIL ")
        assert "violations by hold or guard" in result.output and "by actor" in result.output

    def test_contacts_outside_the_period_are_not_audited(self, tmp_path: Path) -> None:
        """Only contacts in [--from, --to) are audited (the end excluded)."""
        calls = [call(f"2026-11-{d}T23:30:00+08:00", "no_answer") for d in (10, 20)]
        start = dt.datetime(2026, 11, 11, tzinfo=dt.UTC)
        path = tmp_path / "p.jsonl"
        path.write_text(json.dumps(account(calls)) + "\n")
        result = audit_contacts(
            CN_POLICY, path, start=start, end=dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC), at=NOW
        )
        assert (0, 0) == (result.contacts, result.violations)
        result = audit_contacts(CN_POLICY, path, start=start, end=END, at=NOW)
        assert (1, 1) == (result.contacts, result.violations)

    def test_bad_rows_become_error_rows(self, tmp_path: Path) -> None:
        """Unreadable records are error rows (accounts in = audited + error rows) and the command exits 1."""
        ambiguous = account(
            [{"at": "2026-11-20T10:00:00+08:00", "action": "phone_call", "outcome": "no_answer"}]
        )
        path = tmp_path / "p.jsonl"
        path.write_text(BAD.read_text() + json.dumps(ambiguous) + "\n")
        result = audit_contacts(CN_POLICY, path, start=EVER, end=END, at=NOW, out=tmp_path / "out")
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        assert len(lines) == result.accounts == result.audited + result.errors
        errors = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
        assert "history.0.channel" == errors[-1]["field"]
        args = ["audit", "contacts", "--portfolio", str(path), "--from", "2026-11-01", "--to", "2026-12-01"]
        assert 1 == CliRunner().invoke(main, [*args, "--at", NOW.isoformat()]).exit_code

    def test_an_empty_period_is_a_usage_error(self) -> None:
        """--to before --from exits 1 with a message."""
        args = ["audit", "contacts", "--portfolio", str(SAMPLE), "--from", "2026-12-01", "--to", "2026-11-01"]
        result = CliRunner().invoke(main, args)
        assert 1 == result.exit_code
        assert "period is empty" in result.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An audit of a planted CN portfolio, written to a folder."""
    folder = tmp_path_factory.mktemp("audit")
    args = ["portfolio", "generate", "-n", "200", "--seed", "4", "-o", str(folder / "p.jsonl"),
            "--violations", "20%"]  # fmt: skip
    assert 0 == CliRunner().invoke(main, args).exit_code
    audit_contacts(CN_POLICY, folder / "p.jsonl", start=EVER, end=END, at=NOW, out=folder / "out")
    return folder / "out"


class TestReport:
    def test_summary_and_report_are_written(self, folder: Path) -> None:
        """summary.json counts by class, rule, actor and day; report.html is self-contained."""
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["violations"] == sum(summary["by_breach"].values()) > 0
        assert summary["violations"] == sum(r["violations"] for r in summary["by_rule"].values())
        assert summary["contacts"] == sum(a["contacts"] for a in summary["by_actor"].values())
        text = (folder / "report.html").read_text()
        assert not re.search(r"<script[^>]+src=", text)
        assert "Violations over time" in text and "Violations by hold or guard" in text

    @pytest.mark.skipif(
        shutil.which("chromium") is None and os.environ.get("CI") != "true",
        reason="chromium is not installed",
    )
    def test_report_renders_in_headless_chromium(self, folder: Path, tmp_path: Path) -> None:
        """Headless Chromium renders the report offline to a non-trivial screenshot (never skipped in CI)."""
        shot = tmp_path / "report.png"
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1400,2400",
             "--virtual-time-budget=5000", (folder / "report.html").as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        assert shot.stat().st_size > 50_000
