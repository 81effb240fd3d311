"""The SQLite journal: the embedded default (stdlib ``sqlite3``, WAL,
``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from escalation.errors import JournalError
from escalation.journal._backend import _JournalBase
from escalation.journal.masking import Masking
from escalation.journal.records import (
    GENESIS,
    Head,
    JournalRecord,
    RawEntry,
    StoredPolicy,
    seal,
)

_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    now TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_account ON journal (account_id);
CREATE TABLE IF NOT EXISTS journal_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT OR IGNORE INTO journal_head (one, seq, hash) VALUES (1, 0, '{GENESIS}');
CREATE TABLE IF NOT EXISTS policies (
    fingerprint TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the decision journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the decision journal is append-only'); END;
"""  # noqa: S608 - a constant, no input


class SqliteJournal(_JournalBase):
    """A SQLite journal (the embedded default): WAL mode, one transaction per
    append (``BEGIN IMMEDIATE``: writers in threads and processes serialise),
    ``synchronous=FULL`` (``sync=False``: ``NORMAL``, safe against a process
    crash but not against power loss). Triggers refuse UPDATE and DELETE on
    the records; ``journal_head`` anchors the last record in the same
    transaction."""

    def __init__(
        self, path: str | Path, *, masking: Masking | None = None, sync: bool = True, create: bool = True
    ):
        super().__init__(masking)
        self._path = Path(path)
        self._sync = sync
        if not create and not self._path.exists():
            raise JournalError(f"journal `{self._path}` does not exist")
        self._con: sqlite3.Connection | None = None

    @property
    def name(self) -> str:
        """The database file's path."""
        return str(self._path)

    def _connection(self) -> sqlite3.Connection:
        if self._forked():
            self._con = None  # never use a connection inherited across fork
        if self._con is None:
            try:
                con = sqlite3.connect(self._path, timeout=60.0, isolation_level=None, check_same_thread=False)
                con.execute("PRAGMA busy_timeout = 60000")
                con.execute("PRAGMA journal_mode = WAL")
                con.execute(f"PRAGMA synchronous = {'FULL' if self._sync else 'NORMAL'}")
                con.executescript("BEGIN IMMEDIATE;" + _SQLITE_SCHEMA + "COMMIT;")
            except sqlite3.Error as exc:
                raise JournalError(f"cannot open journal `{self._path}`: {exc}") from exc
            self._con = con
        return self._con

    def append(self, draft: dict[str, Any]) -> JournalRecord:
        """Chain and commit one record in one ``BEGIN IMMEDIATE`` transaction."""
        with self._lock:
            con = self._connection()
            try:
                con.execute("BEGIN IMMEDIATE")
                try:
                    seq, prev = con.execute("SELECT seq, hash FROM journal_head WHERE one = 1").fetchone()
                    record, text = seal(draft, seq + 1, prev)
                    con.execute(
                        "INSERT INTO journal (seq, id, account_id, now, body) VALUES (?, ?, ?, ?, ?)",
                        (record.seq, record.id, record.account_id, record.now, text),
                    )
                    con.execute(
                        "UPDATE journal_head SET seq = ?, hash = ? WHERE one = 1", (record.seq, record.hash)
                    )
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise JournalError(f"cannot write journal `{self._path}`: {exc}") from exc
            return record

    def put_policy(self, stored: StoredPolicy) -> None:
        """Insert the policy unless its fingerprint is already stored."""
        with self._lock:
            try:
                self._connection().execute(
                    "INSERT OR IGNORE INTO policies (fingerprint, body) VALUES (?, ?)",
                    (stored.fingerprint, stored.model_dump_json()),
                )
            except sqlite3.Error as exc:
                raise JournalError(f"cannot store policy in `{self._path}`: {exc}") from exc

    def get_policy(self, fingerprint: str) -> StoredPolicy | None:
        """The stored policy with ``fingerprint``, if any."""
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT body FROM policies WHERE fingerprint = ?", (fingerprint,))
                .fetchone()
            )
        if row is None:
            return None
        try:
            return StoredPolicy.model_validate_json(row[0])
        except ValidationError as exc:
            raise JournalError(f"stored policy {fingerprint} is corrupt") from exc

    def scan(self) -> Iterator[RawEntry]:
        """Every row by ``seq`` (read in pages, so memory stays flat)."""
        last, index = -1, 0
        while True:
            with self._lock:
                rows = (
                    self._connection()
                    .execute("SELECT seq, body FROM journal WHERE seq > ? ORDER BY seq LIMIT 5000", (last,))
                    .fetchall()
                )
            if not rows:
                return
            for seq, body in rows:
                index += 1
                yield RawEntry(index, f"row seq={seq}", body)
                last = seq

    def head(self) -> Head | None:
        """The ``journal_head`` row (``None`` when missing)."""
        with self._lock:
            row = self._connection().execute("SELECT seq, hash FROM journal_head WHERE one = 1").fetchone()
        return None if row is None else Head(int(row[0]), str(row[1]))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._con is not None and not self._forked():
                self._con.close()
            self._con = None
