"""Issue 9, files through the CLI and the dry-run API: every portfolio line
accounted for, hostile policy files refused with located errors, a fast
window count, and an audit journal verified honestly while it grows."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine, PolicyError, dry_run, open_journal
from escalation.journal.audit import verify

from .conftest import CN_POLICY, NOW, ROOT
from .test_audit_helpers import fill, new_journal
from .test_cli import AT, run

HEADER = "id,currency,amount_overdue,balance,overdue_since,timezone,flags"
POLICY_HEAD = "escalation: 1\npolicy: {id: p, version: '1', currency: CNY, timezone: Asia/Shanghai}\n"
TIER = "tiers:\n  - {id: sms, channel: sms, when: days_overdue >= 1}\n"
FREQ = "guards:\n  - {id: f, kind: frequency, max: 1, window: %s, reason: r, cite: c}\n"


def account_line(n: int, flags: str = "") -> str:
    return f"C-{n},CNY,100.00,1000.00,2026-11-01,Asia/Shanghai,{flags}"


def dry(tmp_path: Path, accounts: str, history: str | None = None, **options: Any) -> Any:
    (tmp_path / "a.csv").write_text(accounts)
    hist = None
    if history is not None:
        hist = tmp_path / "h.csv"
        hist.write_text(history)
    return dry_run(CN_POLICY, tmp_path / "a.csv", at=NOW, history=hist, out=tmp_path / "out", **options)


def error_rows(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "out" / "errors.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


class TestCsv:
    """Items 4, 5 and 7: a CSV line is one record; nothing is swallowed or dropped."""

    def test_unbalanced_quote_at_end_of_row(self, tmp_path: Path) -> None:
        """Row 1 ending `,"hardship` costs that row only: 3 accounts = 2 decided + 1 error row (line 2)."""
        text = "\n".join([HEADER, account_line(1, '"hardship'), account_line(2), account_line(3)]) + "\n"
        result = dry(tmp_path, text)
        assert (3, 2, 1) == (result.accounts, result.decided, result.errors)
        assert [2] == [row["row"] for row in error_rows(tmp_path)]

    def test_quote_mid_row(self, tmp_path: Path) -> None:
        """A quote opened mid-row in one of 11 accounts: 11 accounts are accounted for."""
        lines = [account_line(n) for n in range(1, 12)]
        lines[4] = 'C-5,CNY,"100.00,1000.00,2026-11-01,Asia/Shanghai,'
        result = dry(tmp_path, "\n".join([HEADER, *lines]) + "\n")
        assert (11, 10, 1) == (result.accounts, result.decided, result.errors)

    def test_non_utf8_line_and_huge_cell(self, tmp_path: Path) -> None:
        """A non-UTF-8 line and a 200 KB cell are error rows, the others are decided."""
        path = tmp_path / "a.csv"
        path.write_bytes(
            (HEADER + "\n" + account_line(1) + "\n").encode()
            + b"C-2,CNY,100.00,1000.00,2026-11-01,Asia/Shanghai,\xff\xfe\n"
            + (account_line(3, "x" * 200_000) + "\n" + account_line(4) + "\n").encode()
        )
        result = dry_run(CN_POLICY, path, at=NOW, out=tmp_path / "out")
        assert (4, 2, 2) == (result.accounts, result.decided, result.errors)
        assert [3, 4] == [row["row"] for row in error_rows(tmp_path)]

    def test_history_joined_on_the_validated_id(self, tmp_path: Path) -> None:
        """`C-1 ` (trailing space) still gets its history; an unmatched history row is an error row."""
        accounts = "\n".join([HEADER, account_line(1).replace("C-1,", "C-1 ,"), account_line(2)]) + "\n"
        event = "{id},2026-11-23T09:00:00+08:00,sms_reminder,sms,delivered"
        history = "\n".join(["account_id,at,action,channel,outcome", event.format(id="C-1"),
                             event.format(id="c-2")]) + "\n"  # fmt: skip
        # reasons for every row: a dry-run drops unchanged reasons by default
        result = dry(tmp_path, accounts, history, reasons="all")
        assert (3, 2, 1) == (result.accounts, result.decided, result.errors)
        [row] = error_rows(tmp_path)
        assert ("orphan-history", 3) == (row["code"], row["row"])
        decisions = [
            json.loads(line) for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()
        ]
        # the SMS reminder sent an hour ago counts for C-1 (joined), not for C-2 (no history)
        assert decisions[0]["reason"] and decisions[1]["reason"]
        assert decisions[0]["reason"] != decisions[1]["reason"]


class TestJsonLines:
    """Item 6: a malformed JSON line is an error; the lines after it are still decided."""

    def test_cli_decides_past_a_broken_line(self, tmp_path: Path) -> None:
        """valid, `{broken`, valid → 2 decisions and the broken line reported (exit 1)."""
        one = json.loads((ROOT / "examples" / "account.json").read_text())
        path = tmp_path / "a.jsonl"
        path.write_text(json.dumps(one) + "\n{broken\n" + json.dumps({**one, "id": "A-3"}) + "\n")
        code, out, err = run("decide", "--account", str(path), "--at", AT, "--compact")
        assert 1 == code and 2 == len(out.splitlines()) and ":2:" in err


def check(tmp_path: Path, text: str | bytes, name: str = "p.yaml") -> tuple[int, str]:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, _, err = run("check", str(path))
    return code, err


class TestPolicyFiles:
    """Items 8, 9 and 10: hostile or lenient policy files are refused, located, exit 3."""

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 450)), "yaml-too-deep"),
            ("a: [" * 450 + "]" * 450, "yaml-too-deep"),
            (POLICY_HEAD + TIER + "x: \x00\n", "control-character"),
            (POLICY_HEAD + TIER + "x: \x07\n", "control-character"),
            (POLICY_HEAD.replace("'1'", '"1\\0"') + TIER, "control-character"),
            (POLICY_HEAD.replace("1\n", "1.0\n", 1) + TIER, "language-version"),
            (POLICY_HEAD.replace("1\n", "true\n", 1) + TIER, "language-version"),
            (POLICY_HEAD + TIER.replace("}", ", repeat: {max: true}}"), "invalid-value"),
            (POLICY_HEAD + TIER.replace("}", ', repeat: {max: "3"}}'), "invalid-value"),
            (POLICY_HEAD + TIER.replace("}", ", repeat: {max: !!str 3}}"), "yaml-tag"),
            (POLICY_HEAD + TIER.replace("}", ", repeat: {every: \uff11d}}"), "invalid-value"),
            (POLICY_HEAD + TIER + FREQ % "7", "invalid-value"),
            (POLICY_HEAD + TIER + FREQ % "9999d", "invalid-value"),
            (POLICY_HEAD + TIER + "guards:\n  - {id: h, kind: contact_hours, from: '08:00', to: '20:00',"
             " holidays: XX, reason: r, cite: c}\n", "invalid-value"),
            (POLICY_HEAD + TIER + "guards:\n  - {id: h, kind: contact_hours, from: '08:00', to: '20:00',"
             " holidays: GB-XYZ, reason: r, cite: c}\n", "invalid-value"),
        ],
    )  # fmt: skip
    def test_refused_with_a_located_code(self, tmp_path: Path, text: str, code: str) -> None:
        """Each is exit 3 with `path:line:col: code: message`, never a traceback."""
        exit_code, err = check(tmp_path, text)
        assert 3 == exit_code, err
        assert f": {code}: " in err and "Traceback" not in err
        assert all(line.count(":") >= 3 for line in err.splitlines())

    @pytest.mark.parametrize("target", ["/dev/zero", "fifo", "loop", "nul\x00name", "big.yaml"])
    def test_hostile_includes(self, tmp_path: Path, target: str) -> None:
        """/dev/zero, a FIFO, a symlink loop, a NUL in the path, a huge file: include errors, quickly."""
        if target == "fifo":
            os.mkfifo(tmp_path / "fifo")
        elif target == "loop":
            os.symlink(tmp_path / "loop", tmp_path / "loop")
        elif target == "big.yaml":
            (tmp_path / "big.yaml").write_bytes(b"#" * 3_000_000)
        text = POLICY_HEAD.replace("}", ", include: [" + json.dumps(target) + "]}") + TIER
        started = time.monotonic()
        exit_code, err = check(tmp_path, text)
        assert 3 == exit_code and time.monotonic() - started < 10
        expected = {"big.yaml": "file-too-large", "nul\x00name": "control-character"}
        assert expected.get(target, "include-not-found") in err
        assert "Traceback" not in err

    def test_nul_in_a_policy_path(self) -> None:
        """A NUL in the policy path given to the API is `file-not-found`, not a ValueError."""
        with pytest.raises(PolicyError, match="file-not-found"):
            Engine.from_file("policy\x00.yaml")

    def test_valid_holiday_code_loads(self, tmp_path: Path) -> None:
        """A known country and subdivision load."""
        text = (POLICY_HEAD + TIER + "guards:\n  - {id: h, kind: contact_hours, from: '08:00', to: '20:00',"
                " holidays: GB-ENG, reason: r, cite: c}\n")  # fmt: skip
        assert 0 == check(tmp_path, text)[0]


class TestWindowCount:
    """Item 14: the frequency count is O(events × zones), and windows are capped at 366 days."""

    def test_10000_events_16_zones(self, tmp_path: Path) -> None:
        """`max: 1`, `window: 366d`, `days_in: every_zone`, 10,000 events in 16 zones: seconds at most."""
        text = (POLICY_HEAD + "tiers:\n  - {id: call, channel: phone, when: days_overdue >= 1}\n"
                "guards:\n  - {id: f, kind: frequency, channels: [phone], max: 1, window: 366d,"
                " days_in: every_zone, per: account, reason: r, cite: c}\n")  # fmt: skip
        (tmp_path / "p.yaml").write_text(text)
        engine = Engine.from_file(tmp_path / "p.yaml")
        zones = ["America/Chicago", "America/Denver", "America/Los_Angeles", "America/Anchorage",
                 "Pacific/Honolulu", "Europe/London", "Europe/Paris", "Asia/Tokyo", "Asia/Shanghai",
                 "Australia/Sydney", "America/Sao_Paulo", "Africa/Cairo", "Asia/Kolkata", "Europe/Moscow",
                 "America/Halifax", "Pacific/Auckland"]  # fmt: skip
        history = [
            {"at": (NOW - dt.timedelta(minutes=50 * i + 1)).isoformat(), "action": "call", "channel": "phone",
             "outcome": "no_answer", "address": f"+86-{i % 7}"}
            for i in range(10_000)
        ]  # fmt: skip
        record = {"id": "A", "currency": "CNY", "amount_overdue": "1.00", "balance": "1.00",
                  "days_overdue": 400, "timezones": zones, "history": history}  # fmt: skip
        started = time.monotonic()
        decision = engine.decide(record, now=NOW)
        assert time.monotonic() - started < 30  # about 1 s here; the quadratic count took 126 s
        assert decision.blocked_by("f")

    def test_window_over_366_days_is_a_policy_error(self, tmp_path: Path) -> None:
        """`window: 9999d` is refused at load, located."""
        text = (
            POLICY_HEAD
            + TIER
            + "guards:\n  - {id: f, kind: frequency, max: 1, window: 9999d, reason: r, cite: c}\n"
        )
        (tmp_path / "p.yaml").write_text(text)
        with pytest.raises(PolicyError) as caught:
            Engine.from_file(tmp_path / "p.yaml")
        assert (6, "invalid-value") == (caught.value.line, caught.value.code)
        assert "366" in str(caught.value)


class TestAudit:
    """Items 12 and 13 (item 11, live verify, is in test_audit_concurrency.py)."""

    def test_deeply_nested_record_is_corrupt(self, tmp_path: Path) -> None:
        """A record nested 100,000 deep is reported `corrupt`, not a RecursionError."""
        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 3)
        journal.close()
        with open(path, "a") as handle:
            handle.write('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
        code, out, _ = run("audit", "verify", path)
        assert 2 == code and "corrupt" in out

    def test_record_beyond_the_head_is_unanchored(self, tmp_path: Path) -> None:
        """A record the head does not anchor (forged, or a writer stopped before its head update)
        fails verify with exit 2; `--allow-unanchored-tail` makes it a note (exit 0)."""
        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 4)
        journal.close()
        third = json.loads(Path(path).read_text().splitlines()[2])
        # the head as it stood before the 4th record: that record is now unanchored
        Path(f"{path}.head").write_text(f"{third['seq']:020d} {third['hash']}\n")
        code, out, _ = run("audit", "verify", path)
        assert 2 == code and "unanchored" in out
        code, out, _ = run("audit", "verify", path, "--allow-unanchored-tail")
        assert 0 == code and "unanchored tail allowed" in out
        reader = open_journal(path)
        assert ["unanchored"] == [p.kind for p in verify(reader).problems]
        reader.close()
