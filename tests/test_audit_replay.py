"""Replay at scale, the compliance report, and the `escalation audit` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from escalation import Engine
from escalation.cli import main
from escalation.journal import JsonlJournal, record_decision
from escalation.journal.audit import iter_records, replay, report

from .conftest import CN_POLICY, ROOT
from .test_audit_helpers import fill, make_accounts, new_journal

EXAMPLE = str(ROOT / "examples" / "account.json")
AT = "2026-11-23T10:00:00+08:00"


def test_replay_of_10000_decisions_is_exact(tmp_path: Path) -> None:
    """10,000 journaled decisions (SQLite, no fsync) replay byte-identical, every one."""
    journal, _ = new_journal("sqlite", tmp_path)
    journal._sync = False  # type: ignore[attr-defined]  # a process crash still loses nothing
    fill(journal, 10_000, seed=11)
    results = list(replay(journal))
    assert 10_000 == len(results)
    differing = [r for r in results if not r.same]
    assert [] == differing[:3]


def test_replay_reports_a_difference(tmp_path: Path) -> None:
    """A record whose stored decision was not what the policy decides is reported, field by field."""
    journal, _ = new_journal("jsonl", tmp_path)
    engine = Engine.from_file(CN_POLICY)
    record, now = make_accounts(1)[0]
    decision = engine.decide(record, now=now)
    forged = decision.model_copy(update={"reason": "forged"})
    record_decision(journal, record, now, forged, engine.policy)
    (result,) = list(replay(journal))
    assert not result.same
    assert result.differences[0].startswith('reason: recorded "forged"')


def test_engine_version_change_is_a_note(tmp_path: Path) -> None:
    """A record made by another engine version replays as identical, with a note; strict mode differs."""
    journal, _ = new_journal("jsonl", tmp_path)
    engine = Engine.from_file(CN_POLICY)
    record, now = make_accounts(1)[0]
    decision = engine.decide(record, now=now)
    older = decision.model_copy(update={"engine": decision.engine.model_copy(update={"version": "0.0.9"})})
    record_decision(journal, record, now, older, engine.policy)
    (result,) = list(replay(journal))
    assert result.same and "engine version 0.0.9 recorded" in result.notes[0]
    (strict,) = list(replay(journal, strict_version=True))
    assert not strict.same


def _forge_violation(journal: JsonlJournal) -> str:
    """Journal an `act` decision whose trace shows a guard blocking it; its id."""
    engine = Engine.from_file(CN_POLICY)
    with open(EXAMPLE) as handle:
        account = json.load(handle)
    from datetime import datetime

    now = datetime.fromisoformat(AT)
    decision = engine.decide(account, now=now)
    assert "act" == decision.status
    trace = [
        t.model_copy(update={"matched": True})
        if t.rule == "guard:cn-quiet-hours" and t.action == decision.action and t.channel == decision.channel
        else t
        for t in decision.trace
    ]
    forged = decision.model_copy(update={"trace": trace})
    return record_decision(journal, account, now, forged, engine.policy).id


class TestReport:
    """The compliance report per guard."""

    def test_report_counts_contacts_per_guard(self, tmp_path: Path) -> None:
        """Each act decision counts once for every guard covering its action and channel, all passed."""
        journal, _ = new_journal("sqlite", tmp_path)
        fill(journal, 300)
        result = report(journal)
        records = list(iter_records(journal))
        acts = [json.loads(r.decision) for r in records if json.loads(r.decision)["status"] == "act"]
        quiet = result.guards[("cn-collections", "cn-quiet-hours")]
        assert (300, len(acts)) == (result.decisions, result.acts)
        assert quiet.contacts == quiet.checked > 0
        assert result.ok and 0 == result.unverified

    def test_report_finds_a_contact_a_guard_blocked(self, tmp_path: Path) -> None:
        """A journaled act decision whose trace shows a guard blocking it is a violation."""
        journal = JsonlJournal(tmp_path / "j.jsonl")
        fill(journal, 20)
        bad = _forge_violation(journal)
        result = report(journal)
        assert [(bad, "cn-quiet-hours")] == [(v.id, v.guard) for v in result.violations]

    def test_report_period_filters(self, tmp_path: Path) -> None:
        """Only decisions made inside [from, to) are reported."""
        from datetime import datetime

        journal, _ = new_journal("jsonl", tmp_path)
        fill(journal, 100)
        since = datetime.fromisoformat("2026-11-25T00:00:00+08:00")
        until = datetime.fromisoformat("2026-11-28T00:00:00+08:00")
        inside = [r for r in iter_records(journal) if since <= r.now_instant() < until]
        assert len(inside) == report(journal, since=since, until=until).decisions > 0


class TestCli:
    """`escalation decide --journal` and `escalation audit ...`."""

    def run(self, *args: str) -> tuple[int, str]:
        """Invoke the CLI; (exit code, stdout)."""
        result = CliRunner().invoke(main, list(args))
        return result.exit_code, result.output

    @pytest.mark.parametrize("suffix", ["jsonl", "sqlite"])
    def test_decide_journal_verify_replay(self, tmp_path: Path, suffix: str) -> None:
        """decide --journal writes records that verify and replay (exit 0)."""
        target = str(tmp_path / f"j.{suffix}")
        for _ in range(3):
            assert 0 == self.run("decide", "--at", AT, "--journal", target)[0]
        code, out = self.run("audit", "verify", target)
        assert 0 == code and out.startswith(f"ok {target}: 3 records, 1 policies; head 3:sha256:")
        code, out = self.run("audit", "replay", target)
        assert (0, "3 replayed, 3 identical, 0 differ") == (code, out.strip().splitlines()[-1])

    def test_verify_failure_names_first_bad_record(self, tmp_path: Path) -> None:
        """A deleted line: exit 2, naming the missing record."""
        target = tmp_path / "j.jsonl"
        for _ in range(3):
            self.run("decide", "--at", AT, "--journal", str(target))
        lines = target.read_text().splitlines(keepends=True)
        target.write_text(lines[0] + lines[2])
        code, out = self.run("audit", "verify", str(target))
        assert 2 == code
        assert "FAIL" in out and "first bad record: line 2: deleted: record seq 2 is missing" in out

    def test_show_query_report(self, tmp_path: Path) -> None:
        """show explains a record; query filters; report exits 2 on a violation."""
        target = tmp_path / "j.jsonl"
        journal = JsonlJournal(target)
        fill(journal, 30)
        bad = _forge_violation(journal)
        code, out = self.run("audit", "show", bad, "--journal", str(target))
        assert 0 == code and "ACT  phone_call by phone" in out and "guard:cn-quiet-hours" in out
        code, out = self.run("audit", "query", "--journal", str(target), "--account", "A-17")
        assert (0, "1 decisions") == (code, out.strip().splitlines()[-1])
        code, out = self.run("audit", "query", "-j", str(target), "--status", "act", "--format", "jsonl")
        assert 0 == code and all(
            json.loads(json.loads(x)["decision"])["status"] == "act" for x in out.splitlines()
        )
        code, out = self.run(
            "audit", "report", "-j", str(target), "--from", "2026-11-01", "--to", "2026-12-31"
        )
        assert 2 == code and f"VIOLATION seq 31 {bad}" in out

    def test_missing_journal_is_an_error(self, tmp_path: Path) -> None:
        """verify on a journal that does not exist: exit 1, not an empty success."""
        code, _ = self.run("audit", "verify", str(tmp_path / "nope.jsonl"))
        assert 1 == code

    def test_log_events_go_to_stderr(self, tmp_path: Path) -> None:
        """--log-level info --log-format json: one event per decision on stderr; stdout stays JSON."""
        import structlog

        try:
            result = CliRunner().invoke(
                main, ["--log-level", "info", "--log-format", "json", "decide", "--at", AT, "--compact"]
            )
        finally:
            structlog.reset_defaults()  # leave the library unconfigured for later tests
        assert 0 == result.exit_code
        assert "act" == json.loads(result.stdout)["status"]
        (event,) = [json.loads(line) for line in result.stderr.splitlines()]
        assert ("decision", "info") == (event["event"], event["level"])
