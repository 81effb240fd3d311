"""The decision journal: a durable, append-only, hash-chained record of every
decision, from which it can be explained and reproduced exactly.

Each :class:`JournalRecord` holds the validated input (personal data masked,
see :mod:`escalation.masking`), the instant ``now``, the decision as the
engine serialised it, and the policy's fingerprint; the full policy text is
stored once per fingerprint (:class:`StoredPolicy`, content-addressed). Each
record carries the hash of the one before it (``prev``) and its own
(``hash``: sha256 over its canonical JSON), so an edited, deleted, reordered
or truncated record is detected by :func:`escalation.audit.verify`.

Backends share one small interface, :class:`Journal`:

* :class:`JsonlJournal` — a JSON-lines file (``fcntl.flock`` + ``fsync``),
  with a ``.head`` anchor file and a ``.policies/`` directory beside it;
* :class:`SqliteJournal` — the embedded default (stdlib ``sqlite3``, WAL,
  ``BEGIN IMMEDIATE``);
* ``PostgresJournal`` in :mod:`escalation.journal_pg` (psycopg 3, extra
  ``postgres``).

An append returns only once the record is committed (fsynced, or committed
by the database): a process killed at any point loses no acknowledged
record, and leaves a journal that verifies."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from escalation import _logging
from escalation._guards import pseudonym as address_label
from escalation.decision import Decision, EngineInfo, PolicyInfo
from escalation.errors import EscalationError, PolicyError
from escalation.masking import Masking, mask_input
from escalation.policy import Policy, load_policy
from escalation.record import Account

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
    "after_decision",
    "canonical_json",
    "capture_policy",
    "open_journal",
    "record_decision",
    "record_hash",
]

GENESIS = "sha256:" + "0" * 64
RECORD_FORMAT = 1
_MODEL = ConfigDict(extra="forbid", frozen=True)


class JournalError(EscalationError, RuntimeError):
    """The journal cannot be opened, read or written (a decision that cannot
    be journaled is not returned: fail closed)."""


# ----------------------------------------------------------------- records


def canonical_json(value: Any) -> str:
    """The canonical JSON text that hashes are computed over: sorted keys,
    no spaces, UTF-8 (not ``\\u`` escapes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(body: dict[str, Any]) -> str:
    """``sha256:<hex>`` over the canonical JSON of ``body`` without its ``hash``."""
    content = {k: v for k, v in body.items() if k != "hash"}
    return "sha256:" + hashlib.sha256(canonical_json(content).encode()).hexdigest()


class Masked(BaseModel):
    """How the input was masked: the concrete paths and the key's id."""

    model_config = _MODEL

    paths: tuple[str, ...] = ()
    method: str = "hmac-sha256"
    key_id: str = "ephemeral"


class JournalRecord(BaseModel):
    """One journaled decision (see ``docs/audit.md`` for every field)."""

    model_config = _MODEL

    format: int = RECORD_FORMAT
    seq: int = Field(ge=1)
    id: str
    recorded_at: str
    account_id: str
    now: str
    input: dict[str, Any]
    masked: Masked
    trace: bool
    decision: str
    decision_sha256: str
    policy: PolicyInfo
    engine: EngineInfo
    prev: str
    hash: str

    def decision_model(self) -> Decision:
        """The stored decision as a :class:`~escalation.decision.Decision`."""
        return Decision.model_validate_json(self.decision)

    def now_instant(self) -> dt.datetime:
        """The ``now`` the decision was made at, exactly as given."""
        return dt.datetime.fromisoformat(self.now)


@dataclass(frozen=True)
class RawEntry:
    """A stored record as text, in storage order, for verification.

    ``index`` is its 1-based position; ``where`` names it for a person
    (``line 7``, ``row 7``); ``torn`` marks an incomplete last line."""

    index: int
    where: str
    text: str
    torn: bool = False


@dataclass(frozen=True)
class Head:
    """The journal's anchor: the last committed record's ``seq`` and ``hash``."""

    seq: int
    hash: str


# ----------------------------------------------------------------- policies


class StoredPolicy(BaseModel):
    """A policy's full text, stored once per fingerprint: the canonical form
    (what it means) and the original files (root and rule packs, with paths
    relative to their common folder) from which it is rebuilt."""

    model_config = _MODEL

    fingerprint: str
    id: str
    version: str
    canonical: str
    root: str
    files: dict[str, str]

    def load(self) -> Policy:
        """Rebuild the :class:`~escalation.policy.Policy` from the stored files
        (written to a temporary folder) and check its fingerprint."""
        with tempfile.TemporaryDirectory(prefix="escalation-policy-") as tmp:
            base = Path(tmp).resolve()
            for relative, text in self.files.items():
                target = (base / relative).resolve()
                if base not in target.parents:
                    raise JournalError(f"stored policy {self.fingerprint}: unsafe path `{relative}`")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            try:
                policy = load_policy(base / self.root)
            except PolicyError as exc:
                raise JournalError(f"stored policy {self.fingerprint} does not load: {exc}") from exc
        if policy.fingerprint != self.fingerprint:
            raise JournalError(
                f"stored policy {self.fingerprint} rebuilds with fingerprint {policy.fingerprint}"
            )
        return policy


def _policy_files(root: Path) -> dict[str, bytes]:
    """The root policy file and every rule pack it includes, transitively, by
    absolute (lexically normalised) path — the same walk ``load_policy`` does."""
    from escalation._yaml import YamlLoadError, load_yaml

    found: dict[str, bytes] = {}
    pending = [Path(os.path.abspath(root))]
    while pending:
        path = pending.pop()
        key = str(path)
        if key in found:
            continue
        raw = path.read_bytes()
        found[key] = raw
        try:
            data = load_yaml(raw, key).data
        except YamlLoadError as exc:
            raise JournalError(f"cannot re-read policy file `{path}`: {exc.issue}") from exc
        if not isinstance(data, dict):
            continue
        section = data.get("policy") or data.get("pack")
        includes = section.get("include") if isinstance(section, dict) else None
        for name in includes if isinstance(includes, list) else ():
            if isinstance(name, str):
                pending.append(Path(os.path.abspath(path.parent / name)))
    return found


def capture_policy(policy: Policy) -> StoredPolicy:
    """The :class:`StoredPolicy` for a policy loaded from files.

    Re-reads the files and rebuilds the policy from them, so a file changed on
    disk since the policy was loaded is caught (:class:`JournalError`) instead
    of storing text that did not make the decisions."""
    try:
        raw = _policy_files(Path(policy.path))
    except OSError as exc:
        raise JournalError(f"cannot re-read policy `{policy.path}`: {exc.strerror}") from exc
    base = os.path.commonpath([os.path.dirname(p) for p in raw])
    try:
        files = {os.path.relpath(p, base): data.decode("utf-8") for p, data in sorted(raw.items())}
    except UnicodeDecodeError as exc:
        raise JournalError(f"policy `{policy.path}` is not UTF-8 text") from exc
    stored = StoredPolicy(
        fingerprint=policy.fingerprint,
        id=policy.id,
        version=policy.version,
        canonical=policy.canonical,
        root=os.path.relpath(os.path.abspath(policy.path), base),
        files=files,
    )
    stored.load()  # raises when the files on disk no longer make this policy
    return stored


# ----------------------------------------------------------------- interface


@runtime_checkable
class Journal(Protocol):
    """Where decision records go: append-only, hash-chained, durable.

    ``append`` seals a draft (assigns ``seq``, ``prev`` and ``hash`` under the
    journal's write lock) and returns only once the record is committed."""

    @property
    def name(self) -> str:
        """The journal's location, for messages (never a password)."""

    @property
    def masking(self) -> Masking:
        """How inputs are masked before they are stored."""

    def append(self, draft: dict[str, Any]) -> JournalRecord:
        """Chain, commit and return one record built from ``draft``."""

    def put_policy(self, stored: StoredPolicy) -> None:
        """Store a policy's text under its fingerprint (idempotent)."""

    def get_policy(self, fingerprint: str) -> StoredPolicy | None:
        """The stored policy with ``fingerprint``, if any."""

    def scan(self) -> Iterator[RawEntry]:
        """Every stored record as text, in storage order."""

    def head(self) -> Head | None:
        """The anchor: last committed ``seq`` and ``hash`` (``None``: none yet)."""

    def close(self) -> None:
        """Release files and connections."""


def seal(draft: dict[str, Any], seq: int, prev: str) -> tuple[JournalRecord, str]:
    """The record for ``draft`` at position ``seq`` after ``prev``, and its text."""
    body = {**draft, "format": RECORD_FORMAT, "seq": seq, "prev": prev}
    body["hash"] = record_hash(body)
    record = JournalRecord.model_validate(body)
    return record, canonical_json(body)


def parse_record(text: str) -> JournalRecord:
    """A stored record from its text (raises ``ValueError`` when malformed)."""
    try:
        return JournalRecord.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None


# ----------------------------------------------------------------- recording


class _Known:
    """Fingerprints already stored, per journal object (weakly keyed, so a
    new journal never inherits a collected one's memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

    def ensure(self, journal: Journal, policy: Policy) -> None:
        with self._lock:
            try:
                if policy.fingerprint in self._seen.get(journal, set()):
                    return
            except TypeError:  # not weakly referenceable: ask the journal every time
                pass
        if journal.get_policy(policy.fingerprint) is None:
            journal.put_policy(capture_policy(policy))
        with self._lock, contextlib.suppress(TypeError):
            self._seen.setdefault(journal, set()).add(policy.fingerprint)


_known = _Known()


def _relabel(decision_json: str, replaced: dict[str, str]) -> str:
    """The decision text as it reads on the masked input: address labels and
    masked values replaced by those of their pseudonyms."""
    text = decision_json
    for original, masked in replaced.items():
        text = text.replace(address_label(original), address_label(masked))
        text = text.replace(json.dumps(original, ensure_ascii=False), json.dumps(masked, ensure_ascii=False))
    return text


def record_decision(
    journal: Journal,
    account: Account | dict[str, Any],
    now: dt.datetime,
    decision: Decision,
    policy: Policy,
    *,
    trace: bool | None = None,
) -> JournalRecord:
    """Journal one decision made by ``policy`` for ``account`` at ``now``.

    This is what ``Engine(..., journal=...)`` calls after every decision; call
    it yourself from a pipeline that decides otherwise (portfolio dry-runs).
    ``trace`` says whether the decision was made with a trace (by default:
    whether it has one), so that replay decides the same way. Raises
    :class:`JournalError` when the record cannot be committed."""
    if decision.policy.fingerprint != policy.fingerprint:
        raise JournalError("the decision was not made by this policy")
    if trace is None:
        trace = bool(decision.trace)
    if not isinstance(account, Account):
        from escalation.record import parse_account

        account = parse_account(account)
    _known.ensure(journal, policy)
    data = account.model_dump(mode="json")
    for name in ("flags", "opt_out"):  # sets: stored sorted, so records are deterministic
        data[name] = sorted(data[name])
    masking = journal.masking
    masked = mask_input(data, masking)
    returned = decision.to_json()
    draft = {
        "id": str(uuid.uuid4()),
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "account_id": masked.data["id"],
        "now": now.isoformat(),
        "input": masked.data,
        "masked": {"paths": list(masked.paths), "method": "hmac-sha256", "key_id": masking.key_id},
        "trace": trace,
        "decision": _relabel(returned, masked.replaced) if masked.replaced else returned,
        "decision_sha256": "sha256:" + hashlib.sha256(returned.encode()).hexdigest(),
        "policy": decision.policy.model_dump(mode="json"),
        "engine": decision.engine.model_dump(mode="json"),
    }
    return journal.append(draft)


def after_decision(
    journal: Journal | None,
    account: Account,
    now: dt.datetime,
    decision: Decision,
    policy: Policy,
    trace: bool,
) -> None:
    """The engine's hook after each decision: journal it (when a journal is
    set) and emit one ``decision`` log event (when logging is enabled)."""
    record_id = None
    if journal is not None:
        record_id = record_decision(journal, account, now, decision, policy, trace=trace).id
    if _logging.enabled():
        _logging.log_decision(decision, record_id)


# ----------------------------------------------------------------- JSONL


class _JournalBase:
    """What file-based backends share: masking, a write lock, fork safety."""

    def __init__(self, masking: Masking | None) -> None:
        self._masking = masking if masking is not None else Masking.from_env()
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @property
    def masking(self) -> Masking:
        """How inputs are masked before they are stored."""
        return self._masking

    def _forked(self) -> bool:
        # descriptors and connections must not be shared with a forked child
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            return True
        return False


class JsonlJournal(_JournalBase):
    """A JSON-lines journal file, one record per line.

    Beside it: ``<file>.head`` (the anchor, rewritten after every append) and
    ``<file>.policies/`` (stored policies). Writers in threads and processes
    serialise on ``flock``; each line is written with one ``write`` and
    fsynced before ``append`` returns (``sync=False`` skips the fsync: then an
    operating-system crash, not a process crash, may lose acknowledged
    records). A torn last line (a writer killed mid-write, never
    acknowledged) is cut off by the next writer and reported by ``verify``."""

    #: The anchor is written after the fsync, outside it: it may lag one record.
    head_may_lag = True

    def __init__(
        self, path: str | Path, *, masking: Masking | None = None, sync: bool = True, create: bool = True
    ):
        super().__init__(masking)
        self._path = Path(path)
        self._head_path = Path(f"{self._path}.head")
        self._policy_dir = Path(f"{self._path}.policies")
        self._sync = sync
        self._fd: int | None = None
        self._head_fd: int | None = None
        self._state: tuple[int, int, int, str] | None = None  # (inode, size, seq, hash)
        if not create and not self._path.exists():
            raise JournalError(f"journal `{self._path}` does not exist")

    @property
    def name(self) -> str:
        """The file's path."""
        return str(self._path)

    def _handles(self) -> tuple[int, int]:
        if self._forked():
            self._fd = self._head_fd = None
            self._state = None
        if self._fd is None or self._head_fd is None:
            try:
                created = not self._path.exists()
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
                self._head_fd = os.open(self._head_path, os.O_RDWR | os.O_CREAT, 0o640)
                if created:
                    _fsync_dir(self._path.parent)
            except OSError as exc:
                raise JournalError(f"cannot open journal `{self._path}`: {exc.strerror}") from exc
        return self._fd, self._head_fd

    def append(self, draft: dict[str, Any]) -> JournalRecord:
        """Chain, write, fsync and return one record."""
        with self._lock:
            fd, head_fd = self._handles()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                raise JournalError(f"cannot lock journal `{self._path}`: {exc.strerror}") from exc
            try:
                return self._append_locked(fd, head_fd, draft)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _append_locked(self, fd: int, head_fd: int, draft: dict[str, Any]) -> JournalRecord:
        stat = os.fstat(fd)
        if self._state is not None and self._state[:2] == (stat.st_ino, stat.st_size):
            size, seq, prev = stat.st_size, self._state[2], self._state[3]
        else:
            size, seq, prev = self._tail(fd, stat.st_size)
        record, text = seal(draft, seq + 1, prev)
        line = (text + "\n").encode()
        try:
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            if self._sync:
                os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):  # leave no partial line; else the next writer cuts it
                os.ftruncate(fd, size)
            raise JournalError(f"cannot write journal `{self._path}`: {exc.strerror}") from exc
        anchor = f"{record.seq:020d} {record.hash}\n".encode()
        os.pwrite(head_fd, anchor, 0)
        self._state = (stat.st_ino, size + len(line), record.seq, record.hash)
        return record

    def _tail(self, fd: int, size: int) -> tuple[int, int, str]:
        """(size of the complete lines, last seq, last hash); cuts a torn last line."""
        good, last = _last_line(fd, size)
        if good != size:
            os.ftruncate(fd, good)
            if self._sync:
                os.fsync(fd)
            _logging.warn("journal.torn_tail_removed", journal=self.name, bytes=size - good)
        if last is None:
            return good, 0, GENESIS
        try:
            record = parse_record(last.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise JournalError(
                f"journal `{self._path}`: the last record is corrupt; run `escalation audit verify`"
            ) from exc
        return good, record.seq, record.hash

    def put_policy(self, stored: StoredPolicy) -> None:
        """Write ``<file>.policies/<hex>.json`` atomically (temp, fsync, rename)."""
        target = self._policy_dir / (stored.fingerprint.removeprefix("sha256:") + ".json")
        if target.exists():
            return
        try:
            self._policy_dir.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._policy_dir, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(stored.model_dump_json().encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            _fsync_dir(self._policy_dir)
        except OSError as exc:
            raise JournalError(f"cannot store policy in `{self._policy_dir}`: {exc.strerror}") from exc

    def get_policy(self, fingerprint: str) -> StoredPolicy | None:
        """The stored policy with ``fingerprint``, if any."""
        target = self._policy_dir / (fingerprint.removeprefix("sha256:") + ".json")
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise JournalError(f"cannot read `{target}`: {exc.strerror}") from exc
        try:
            return StoredPolicy.model_validate_json(text)
        except ValidationError as exc:
            raise JournalError(f"stored policy `{target}` is corrupt") from exc

    def scan(self) -> Iterator[RawEntry]:
        """Every line, in file order; the last one ``torn`` when it has no newline."""
        try:
            handle = self._path.open("rb")
        except OSError as exc:
            raise JournalError(f"cannot read journal `{self._path}`: {exc.strerror}") from exc
        with handle:
            for index, line in enumerate(handle, start=1):
                torn = not line.endswith(b"\n")
                yield RawEntry(
                    index, f"line {index}", line.decode("utf-8", errors="replace").rstrip("\n"), torn
                )

    def head(self) -> Head | None:
        """The anchor file's seq and hash (``None`` when there is no anchor yet)."""
        try:
            text = self._head_path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise JournalError(f"cannot read `{self._head_path}`") from exc
        if not text:
            return None
        seq, _, digest = text.strip().partition(" ")
        if not seq.isdigit() or not digest.startswith("sha256:"):
            raise JournalError(f"anchor `{self._head_path}` is corrupt")
        return Head(int(seq), digest)

    def close(self) -> None:
        """Close the file descriptors."""
        with self._lock:
            for fd in (self._fd, self._head_fd):
                if fd is not None and not self._forked():
                    os.close(fd)
            self._fd = self._head_fd = None
            self._state = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_line(fd: int, size: int) -> tuple[int, bytes | None]:
    """(end of the last complete line, that line) reading backwards from ``size``."""
    pos, buf = size, b""
    while pos > 0 and buf.count(b"\n") < 2:
        step = min(1 << 16, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
    end = buf.rfind(b"\n")
    if end < 0:
        return 0, None
    start = buf.rfind(b"\n", 0, end) + 1
    return pos + end + 1, buf[start:end]


# ----------------------------------------------------------------- SQLite

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


# ----------------------------------------------------------------- opening


def open_journal(
    target: str | Path, *, masking: Masking | None = None, sync: bool = True, create: bool = True
) -> Journal:
    """The journal at ``target``: a ``.jsonl`` file, a ``.sqlite``/``.db``
    file, or a ``postgresql://`` DSN. ``create=False`` refuses a missing file.
    ``masking`` defaults to :meth:`Masking.from_env`."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from escalation.journal_pg import PostgresJournal

        return PostgresJournal(text, masking=masking, create=create)
    suffix = Path(text).suffix.lower()
    if suffix == ".jsonl":
        return JsonlJournal(text, masking=masking, sync=sync, create=create)
    if suffix in (".sqlite", ".sqlite3", ".db"):
        return SqliteJournal(text, masking=masking, sync=sync, create=create)
    raise JournalError(f"journal `{text}`: give a .jsonl or .sqlite/.db path or a postgresql:// DSN")
