"""The decision journal: a durable, append-only, hash-chained record of every
decision, from which it can be explained and reproduced exactly.

Each :class:`JournalRecord` holds the validated input (personal data masked,
see :mod:`escalation.journal.masking`), the instant ``now``, the decision as the
engine serialised it, and the policy's fingerprint; the full policy text is
stored once per fingerprint (:class:`StoredPolicy`, content-addressed). Each
record carries the hash of the one before it (``prev``) and its own
(``hash``: sha256 over its canonical JSON), so an edited, deleted, reordered
or truncated record is detected by :func:`escalation.journal.audit.verify`.

Backends share one small interface, :class:`Journal`:

* :class:`JsonlJournal` — a JSON-lines file (``fcntl.flock`` + ``fsync``),
  with a ``.head`` anchor file and a ``.policies/`` directory beside it;
* :class:`SqliteJournal` — the embedded default (stdlib ``sqlite3``, WAL,
  ``BEGIN IMMEDIATE``);
* ``PostgresJournal`` in :mod:`escalation.journal.postgres` (psycopg 3, extra
  ``postgres``).

An append returns only once the record is committed (fsynced, or committed
by the database): a process killed at any point loses no acknowledged
record, and leaves a journal that verifies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from escalation.errors import JournalError
from escalation.journal.capture import record_decision
from escalation.journal.masking import Masking
from escalation.journal.records import (
    GENESIS,
    Head,
    Journal,
    JournalRecord,
    RawEntry,
    StoredPolicy,
    canonical_json,
    capture_policy,
    record_hash,
)

if TYPE_CHECKING:
    from escalation.journal.jsonl import JsonlJournal
    from escalation.journal.sqlite import SqliteJournal

__all__ = [
    "GENESIS",
    "Head",
    "Journal",
    "JournalError",
    "JournalRecord",
    "JsonlJournal",
    "RawEntry",
    "SqliteJournal",
    "StoredPolicy",
    "canonical_json",
    "capture_policy",
    "open_journal",
    "record_decision",
    "record_hash",
]


def __getattr__(name: str) -> object:
    # The backends import sqlite3 / fcntl: loaded on first use, not with the package.
    if name == "JsonlJournal":
        from escalation.journal.jsonl import JsonlJournal

        return JsonlJournal
    if name == "SqliteJournal":
        from escalation.journal.sqlite import SqliteJournal

        return SqliteJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_journal(
    target: str | Path, *, masking: Masking | None = None, sync: bool = True, create: bool = True
) -> Journal:
    """The journal at ``target``: a ``.jsonl`` file, a ``.sqlite``/``.db``
    file, or a ``postgresql://`` DSN. ``create=False`` refuses a missing file.
    ``masking`` defaults to :meth:`Masking.from_env`."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from escalation._extras import require

        require("postgres", "a postgresql:// journal")
        from escalation.journal.postgres import PostgresJournal

        return PostgresJournal(text, masking=masking, create=create)
    suffix = Path(text).suffix.lower()
    if suffix == ".jsonl":
        from escalation.journal.jsonl import JsonlJournal

        return JsonlJournal(text, masking=masking, sync=sync, create=create)
    if suffix in (".sqlite", ".sqlite3", ".db"):
        from escalation.journal.sqlite import SqliteJournal

        return SqliteJournal(text, masking=masking, sync=sync, create=create)
    raise JournalError(f"journal `{text}`: give a .jsonl or .sqlite/.db path or a postgresql:// DSN")
