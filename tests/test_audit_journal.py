"""Decision journal: hash chain and tamper detection on every backend, masking,
stored policies, engine integration (fail closed) and quiet logging."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine, JournalError, JsonlJournal, Masking, SqliteJournal
from escalation.journal import Journal, JournalRecord, capture_policy, record_hash
from escalation.journal.audit import iter_records, query, replay, verify

from .conftest import CN_POLICY, NOW, ROOT
from .test_audit_helpers import BACKENDS, PHONES, TEST_KEY, fill, make_accounts, new_journal

N = 12


# ----------------------------------------------------------------- tampering


class Tamper:
    """Edits a journal's storage behind its back, as an attacker with write access would."""

    def __init__(self, backend: str, location: str) -> None:
        self.backend = backend
        self.location = location

    # JSONL: lines of the file; SQLite / PostgreSQL: rows (triggers dropped first)
    def _lines(self) -> list[str]:
        return Path(self.location).read_text(encoding="utf-8").splitlines(keepends=True)

    def _write(self, lines: list[str]) -> None:
        Path(self.location).write_text("".join(lines), encoding="utf-8")

    def _sql(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        if self.backend == "sqlite":
            con = sqlite3.connect(self.location, isolation_level=None)
            con.execute("DROP TRIGGER IF EXISTS journal_no_update")
            con.execute("DROP TRIGGER IF EXISTS journal_no_delete")
            for sql, params in statements:
                con.execute(sql.replace("%s", "?").replace("escalation_journal", "journal"), params)
            con.close()
            return
        import psycopg

        with psycopg.connect(self.location, autocommit=True) as con:
            con.execute("ALTER TABLE escalation_journal DISABLE TRIGGER USER")
            for sql, params in statements:
                con.execute(sql, params)  # type: ignore[arg-type]

    def _body(self, seq: int) -> str:
        if self.backend == "jsonl":
            return self._lines()[seq - 1].rstrip("\n")
        if self.backend == "sqlite":
            con = sqlite3.connect(self.location)
            (body,) = con.execute("SELECT body FROM journal WHERE seq = ?", (seq,)).fetchone()
            con.close()
            return str(body)
        import psycopg

        with psycopg.connect(self.location) as con:
            row = con.execute("SELECT body FROM escalation_journal WHERE seq = %s", (seq,)).fetchone()
            assert row is not None
            return str(row[0])

    def _set_body(self, seq: int, body: str) -> None:
        if self.backend == "jsonl":
            lines = self._lines()
            lines[seq - 1] = body + "\n"
            self._write(lines)
        else:
            self._sql(("UPDATE escalation_journal SET body = %s WHERE seq = %s", (body, seq)))

    def edit_byte(self, seq: int) -> None:
        """Change one digit of the record's ``recorded_at`` (still valid JSON)."""
        body = self._body(seq)
        at = body.index('"recorded_at":"') + len('"recorded_at":"') + 20
        digit = str((int(body[at]) + 1) % 10)
        self._set_body(seq, body[:at] + digit + body[at + 1 :])

    def edit_and_rehash(self, seq: int) -> None:
        """Change the decision's reason and recompute the record's own hash."""
        data = json.loads(self._body(seq))
        decision = json.loads(data["decision"])
        decision["reason"] = "nothing to see here"
        data["decision"] = json.dumps(decision, separators=(",", ":"), ensure_ascii=False)
        data["hash"] = record_hash(data)
        self._set_body(seq, json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False))

    def delete(self, seq: int) -> None:
        """Remove one record."""
        if self.backend == "jsonl":
            lines = self._lines()
            del lines[seq - 1]
            self._write(lines)
        else:
            self._sql(("DELETE FROM escalation_journal WHERE seq = %s", (seq,)))

    def swap(self, a: int, b: int) -> None:
        """Exchange two records' places."""
        if self.backend == "jsonl":
            lines = self._lines()
            lines[a - 1], lines[b - 1] = lines[b - 1], lines[a - 1]
            self._write(lines)
        else:
            first, second = self._body(a), self._body(b)
            self._set_body(a, second)
            self._set_body(b, first)

    def truncate(self, keep: int) -> None:
        """Keep only the first ``keep`` records."""
        if self.backend == "jsonl":
            self._write(self._lines()[:keep])
        elif keep == 0 and self.backend == "postgres":
            self._sql(("TRUNCATE escalation_journal", ()))
        else:
            self._sql(("DELETE FROM escalation_journal WHERE seq > %s", (keep,)))


@pytest.fixture(params=BACKENDS)
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Journal, Tamper]:
    """A journal of N decisions on each backend, and a tamperer for it."""
    journal, location = new_journal(request.param, tmp_path)
    fill(journal, N)
    yield journal, Tamper(request.param, location)
    journal.close()


class TestTamper:
    """verify() on each backend: untouched passes; any tampering fails and names the first bad record."""

    def test_untouched_journal_verifies(self, filled: tuple[Journal, Tamper]) -> None:
        """An untouched journal verifies, with every record and its policy."""
        journal, _ = filled
        result = verify(journal)
        assert result.ok, result.problems
        assert (N, 1) == (result.records, result.policies)
        assert result.head is not None and result.head.startswith(f"{N}:sha256:")

    def test_edited_byte_is_found(self, filled: tuple[Journal, Tamper]) -> None:
        """One byte changed in record 5: `edited`, naming record 5."""
        journal, tamper = filled
        tamper.edit_byte(5)
        first = verify(journal).first
        assert first is not None
        assert ("edited", 5) == (first.kind, first.seq)

    def test_edited_and_rehashed_record_breaks_the_chain(self, filled: tuple[Journal, Tamper]) -> None:
        """Record 4 edited and re-hashed: record 5 no longer links to it."""
        journal, tamper = filled
        tamper.edit_and_rehash(4)
        first = verify(journal).first
        assert first is not None
        assert ("chain", 5) == (first.kind, first.seq)
        assert "record seq 4" in first.message

    def test_deleted_record_is_found(self, filled: tuple[Journal, Tamper]) -> None:
        """Record 7 deleted: `deleted`, naming seq 7."""
        journal, tamper = filled
        tamper.delete(7)
        first = verify(journal).first
        assert first is not None
        assert ("deleted", 7) == (first.kind, first.seq)
        assert "record seq 7 is missing" in first.message

    def test_swapped_records_are_found(self, filled: tuple[Journal, Tamper]) -> None:
        """Records 3 and 9 swapped: `reordered` at the place of seq 3."""
        journal, tamper = filled
        tamper.swap(3, 9)
        first = verify(journal).first
        assert first is not None
        assert ("reordered", 9) == (first.kind, first.seq)
        assert "where seq 3 belongs" in first.message

    def test_dropped_last_records_are_found(self, filled: tuple[Journal, Tamper]) -> None:
        """The last 3 records removed: `truncated`, naming seq 10 on."""
        journal, tamper = filled
        tamper.truncate(N - 3)
        first = verify(journal).first
        assert first is not None
        assert ("truncated", N - 2) == (first.kind, first.seq)

    def test_emptied_journal_is_found(self, filled: tuple[Journal, Tamper]) -> None:
        """Every record removed (file or table truncated): `truncated` from seq 1."""
        journal, tamper = filled
        tamper.truncate(0)
        first = verify(journal).first
        assert first is not None
        assert ("truncated", 1) == (first.kind, first.seq)


class TestJsonlTails:
    """JSONL specifics: torn tails and files cut mid-record."""

    def test_file_cut_mid_record_is_truncation(self, tmp_path: Path) -> None:
        """A file cut inside the last record fails: the anchor says it was committed."""
        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 5)
        size = os.path.getsize(path)
        with open(path, "r+b") as handle:
            handle.truncate(size - 40)
        first = verify(journal).first
        assert first is not None
        assert ("truncated", 5) == (first.kind, first.seq)

    def test_torn_uncommitted_tail_is_reported_not_failed(self, tmp_path: Path) -> None:
        """A torn last line never anchored (a writer killed mid-write) is a note, not a failure."""
        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 5)
        with open(path, "ab") as handle:
            handle.write(b'{"account_id":"G-7-99","decis')
        result = verify(journal)
        assert result.ok
        assert 5 == result.records
        assert any(note.startswith("truncated tail: line 6") for note in result.notes)

    def test_next_writer_cuts_a_torn_tail(self, tmp_path: Path) -> None:
        """The next append removes the torn fragment and continues the chain."""
        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 3)
        journal.close()
        with open(path, "ab") as handle:
            handle.write(b'{"torn')
        again = JsonlJournal(path, masking=Masking())
        fill(again, 2, seed=8)
        result = verify(again)
        assert result.ok and not result.notes
        assert 5 == result.records

    def test_corrupt_line_is_named(self, tmp_path: Path) -> None:
        """A line that is no longer JSON is `corrupt`, named by its line."""
        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 4)
        lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
        lines[1] = lines[1].replace('{"account_id"', '{"account_id', 1)
        Path(path).write_text("".join(lines), encoding="utf-8")
        first = verify(journal).first
        assert first is not None
        assert ("corrupt", "line 2") == (first.kind, first.where)

    def test_expected_head_catches_a_rewritten_chain(self, tmp_path: Path) -> None:
        """A chain rewritten from record 1 (anchor included) fails against a head kept elsewhere."""
        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 3)
        kept = verify(journal).head
        assert kept is not None
        for name in (path, path + ".head"):
            os.remove(name)
        fill(JsonlJournal(path, masking=Masking()), 3, seed=9)
        assert verify(JsonlJournal(path)).ok
        first = verify(JsonlJournal(path), expect_head=kept).first
        assert first is not None and "anchor" == first.kind


# ----------------------------------------------------------------- records


class TestRecords:
    """What a record holds, and masking."""

    def test_record_fields(self, tmp_path: Path) -> None:
        """A record holds the input as evaluated, `now`, the decision, policy and engine."""
        journal, _ = new_journal("sqlite", tmp_path)
        engine = Engine.from_file(CN_POLICY, journal=journal)
        with (ROOT / "examples" / "account.json").open() as handle:
            account = json.load(handle)
        decision = engine.decide(account, now=NOW)
        (record,) = list(iter_records(journal))
        assert (1, "A-17", NOW.isoformat()) == (record.seq, record.account_id, record.now)
        assert engine.policy.fingerprint == record.policy.fingerprint
        assert ("native", decision.engine.version) == (record.engine.backend, record.engine.version)
        assert decision.status == record.decision_model().status
        assert ("history.2.address", "history.3.address") == record.masked.paths

    def test_addresses_never_stored(self, tmp_path: Path) -> None:
        """No contact address, nor anything derived from it without a key, reaches the journal's storage."""
        import hashlib

        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 40)
        text = Path(path).read_text(encoding="utf-8")
        for phone in PHONES:
            assert phone not in text
            assert hashlib.sha256(phone.encode()).hexdigest()[:10] not in text
        assert "hmac:" in text

    def test_keyed_pseudonyms_link_records_and_replay(self, tmp_path: Path) -> None:
        """A keyed pseudonym is the same across records: query by address works, replay is exact."""
        journal, _ = new_journal("sqlite", tmp_path, masking=TEST_KEY)
        fill(journal, 60)
        found = list(query(journal, address=PHONES[0]))
        expected = [
            r for r, _ in make_accounts(60) if any(e.get("address") == PHONES[0] for e in r["history"])
        ]
        assert len(expected) == len(found) > 0
        assert all(result.same for result in replay(journal))

    def test_mask_extra_path(self, tmp_path: Path) -> None:
        """Masking can cover more paths (here the account id); replay stays exact."""
        masking = Masking(paths=("history.*.address", "id"), key=b"another-key-0123456789")
        journal, _ = new_journal("jsonl", tmp_path, masking=masking)
        fill(journal, 10)
        records = list(iter_records(journal))
        assert all(r.account_id.startswith("hmac:") and "id" in r.masked.paths for r in records)
        assert all(result.same for result in replay(journal))


class TestPolicies:
    """The policy text is stored once per fingerprint and rebuilds exactly."""

    def test_stored_policy_rebuilds_with_same_fingerprint(self) -> None:
        """capture → load gives the same fingerprint, root and rule pack included
        (a shipped pack named `pack:<name>` is stored under `_packs/`, so replay
        uses the stored text, not whatever the installed package ships then)."""
        engine = Engine.from_file(CN_POLICY)
        stored = capture_policy(engine.policy)
        assert {"consumer-credit-cn.yaml", "_packs/cn-collections.yaml"} == set(stored.files)
        assert engine.policy.fingerprint == stored.load().fingerprint

    def test_policy_changed_on_disk_is_refused(self, tmp_path: Path) -> None:
        """A policy file edited after loading is not stored as the deciding policy."""
        shutil.copytree(ROOT / "policies", tmp_path / "policies")
        shutil.copytree(ROOT / "rules", tmp_path / "rules")
        path = tmp_path / "policies" / "consumer-credit-cn.yaml"
        engine = Engine.from_file(path)
        path.write_text(path.read_text().replace('version: "2026.11"', 'version: "2026.12"'))
        with pytest.raises(JournalError, match="fingerprint"):
            capture_policy(engine.policy)

    def test_tampered_stored_policy_fails_verify(self, tmp_path: Path) -> None:
        """A stored policy edited in place fails verify as `policy`."""
        journal, path = new_journal("jsonl", tmp_path)
        fill(journal, 3)
        (stored,) = Path(path + ".policies").iterdir()
        stored.write_text(stored.read_text().replace("max: 3", "max: 30"))
        first = verify(journal).first
        assert first is not None and "policy" == first.kind


class FailingJournal(SqliteJournal):
    """A journal whose appends fail (a full disk, a lost database)."""

    def append(self, draft: dict[str, Any]) -> JournalRecord:
        """Always fails."""
        raise JournalError("disk full")


class TestEngine:
    """Engine integration."""

    def test_decision_not_returned_when_journal_fails(self, tmp_path: Path) -> None:
        """Fail closed: a decision that cannot be journaled raises instead of being returned."""
        engine = Engine.from_file(CN_POLICY, journal=FailingJournal(tmp_path / "j.sqlite"))
        record, now = make_accounts(1)[0]
        with pytest.raises(JournalError, match="disk full"):
            engine.decide(record, now=now)

    def test_trace_false_is_journaled_and_replayed(self, tmp_path: Path) -> None:
        """Decisions made without a trace are journaled as such and replay identically."""
        journal, _ = new_journal("sqlite", tmp_path)
        fill(journal, 20, trace=False)
        assert all(not r.trace for r in iter_records(journal))
        assert all(result.same for result in replay(journal))


class TestLogging:
    """One structured event per decision, only when asked for."""

    def test_unconfigured_library_prints_nothing(self, tmp_path: Path) -> None:
        """Deciding with a journal and no logging configuration prints nothing at all."""
        code = (
            "import json, datetime as dt; from escalation import Engine, open_journal\n"
            f"e = Engine.from_file({str(CN_POLICY)!r}, journal=open_journal({str(tmp_path / 'j.jsonl')!r}))\n"
            f"a = json.load(open({str(ROOT / 'examples' / 'account.json')!r}))\n"
            f"e.decide(a, now=dt.datetime.fromisoformat({NOW.isoformat()!r}))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert ("", "") == (out.stdout, out.stderr)

    def test_stdlib_logging_gets_one_event_without_personal_data(self) -> None:
        """With stdlib logging at INFO, a decision logs one JSON event: ids, no addresses or amounts."""
        code = (
            "import json, logging, sys, datetime as dt; from escalation import Engine\n"
            "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')\n"
            f"e = Engine.from_file({str(CN_POLICY)!r})\n"
            f"a = json.load(open({str(ROOT / 'examples' / 'account.json')!r}))\n"
            f"e.decide(a, now=dt.datetime.fromisoformat({NOW.isoformat()!r}))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        (line,) = out.stdout.splitlines()
        event = json.loads(line)
        assert ("decision", "A-17", "act", "phone_call") == (
            event["event"], event["account_id"], event["status"], event["action"]
        )  # fmt: skip
        assert "+86" not in line and "8600" not in line
