"""The PostgreSQL decision journal (psycopg 3; ``pip install 'escalation[postgres]'``).

Tables (in the connection's ``search_path``; choose a schema with
``?options=-csearch_path%3Dmy_schema`` in the DSN or ``schema=``):
``escalation_journal`` (one row per record, the record's canonical JSON in
``body``), ``escalation_journal_head`` (the anchor row, locked ``FOR UPDATE``
by every append, which serialises writers across connections and processes)
and ``escalation_policies``. Triggers refuse UPDATE, DELETE and TRUNCATE on
the records. An append is one transaction: committed before it returns."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from escalation.errors import JournalError
from escalation.journal._backend import _JournalBase
from escalation.journal.masking import Masking
from escalation.journal.records import GENESIS, Head, JournalRecord, RawEntry, StoredPolicy, seal

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

__all__ = ["PostgresJournal"]

_SCHEMA = f"""
SELECT pg_advisory_xact_lock(7422016813);
CREATE TABLE IF NOT EXISTS escalation_journal (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    now TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS escalation_journal_account ON escalation_journal (account_id);
CREATE TABLE IF NOT EXISTS escalation_journal_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO escalation_journal_head (one, seq, hash) VALUES (1, 0, '{GENESIS}') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS escalation_policies (
    fingerprint TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION escalation_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the decision journal is append-only';
END $$;
DROP TRIGGER IF EXISTS escalation_journal_no_change ON escalation_journal;
CREATE TRIGGER escalation_journal_no_change BEFORE UPDATE OR DELETE ON escalation_journal
    FOR EACH ROW EXECUTE FUNCTION escalation_journal_append_only();
DROP TRIGGER IF EXISTS escalation_journal_no_truncate ON escalation_journal;
CREATE TRIGGER escalation_journal_no_truncate BEFORE TRUNCATE ON escalation_journal
    FOR EACH STATEMENT EXECUTE FUNCTION escalation_journal_append_only();
"""  # noqa: S608 - a constant, no input


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)


class PostgresJournal(_JournalBase):
    """A journal in PostgreSQL: one transaction per append, serialised by a
    row lock on the head anchor (``SELECT ... FOR UPDATE``)."""

    def __init__(
        self, dsn: str, *, masking: Masking | None = None, schema: str | None = None, create: bool = True
    ) -> None:
        if psycopg is None:
            raise JournalError("PostgreSQL journals need psycopg: pip install 'escalation[postgres]'")
        super().__init__(masking)
        self._dsn = dsn
        self._schema = schema
        self._create = create
        self._con: Any = None

    @property
    def name(self) -> str:
        """The DSN with the password hidden."""
        return _redact(self._dsn)

    def _connection(self) -> Any:
        if self._forked():
            self._con = None  # never use a connection inherited across fork
        if self._con is None or self._con.closed:
            try:
                con = psycopg.connect(self._dsn, autocommit=False)
                if self._schema is not None:
                    with con.cursor() as cur:
                        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
                        cur.execute(f'SET search_path TO "{self._schema}"')
                    con.commit()
                with con.cursor() as cur:
                    if self._create:
                        cur.execute(_SCHEMA)
                    else:
                        cur.execute("SELECT 1 FROM escalation_journal LIMIT 1")
                con.commit()
            except psycopg.Error as exc:
                raise JournalError(f"cannot open journal `{self.name}`: {exc}") from exc
            self._con = con
        return self._con

    def _run(self, sql: str, params: tuple[Any, ...] = (), *, fetch: str = "none") -> Any:
        with self._lock:
            con = self._connection()
            try:
                with con.cursor() as cur:
                    cur.execute(sql, params)
                    result = cur.fetchone() if fetch == "one" else cur.fetchall() if fetch == "all" else None
                con.commit()
                return result
            except psycopg.Error as exc:
                con.rollback()
                raise JournalError(f"journal `{self.name}`: {exc}") from exc

    def append(self, draft: dict[str, Any]) -> JournalRecord:
        """Lock the head row, insert the record, move the head, commit."""
        with self._lock:
            con = self._connection()
            try:
                with con.cursor() as cur:
                    cur.execute("SELECT seq, hash FROM escalation_journal_head WHERE one = 1 FOR UPDATE")
                    row = cur.fetchone()
                    if row is None:
                        raise JournalError(f"journal `{self.name}`: the head anchor row is missing")
                    record, text = seal(draft, int(row[0]) + 1, str(row[1]))
                    cur.execute(
                        "INSERT INTO escalation_journal (seq, id, account_id, now, body) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        (record.seq, record.id, record.account_id, record.now, text),
                    )
                    cur.execute(
                        "UPDATE escalation_journal_head SET seq = %s, hash = %s WHERE one = 1",
                        (record.seq, record.hash),
                    )
                con.commit()
            except psycopg.Error as exc:
                con.rollback()
                raise JournalError(f"cannot write journal `{self.name}`: {exc}") from exc
            except BaseException:
                con.rollback()
                raise
            return record

    def put_policy(self, stored: StoredPolicy) -> None:
        """Insert the policy unless its fingerprint is already stored."""
        self._run(
            "INSERT INTO escalation_policies (fingerprint, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (stored.fingerprint, stored.model_dump_json()),
        )

    def get_policy(self, fingerprint: str) -> StoredPolicy | None:
        """The stored policy with ``fingerprint``, if any."""
        row = self._run(
            "SELECT body FROM escalation_policies WHERE fingerprint = %s", (fingerprint,), fetch="one"
        )
        return None if row is None else StoredPolicy.model_validate_json(row[0])

    def scan(self) -> Iterator[RawEntry]:
        """Every row by ``seq`` (read in pages, so memory stays flat)."""
        last = 0
        index = 0
        while True:
            rows = self._run(
                "SELECT seq, body FROM escalation_journal WHERE seq > %s ORDER BY seq LIMIT 5000",
                (last,),
                fetch="all",
            )
            if not rows:
                return
            for seq, body in rows:
                index += 1
                yield RawEntry(index, f"row seq={seq}", body)
                last = seq

    def head(self) -> Head | None:
        """The anchor row (``None`` when missing)."""
        row = self._run("SELECT seq, hash FROM escalation_journal_head WHERE one = 1", fetch="one")
        return None if row is None else Head(int(row[0]), str(row[1]))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._con is not None and not self._forked():
                self._con.close()
            self._con = None
