"""The JSON-lines journal: one record per line, ``fcntl.flock`` + ``fsync``,
a ``.head`` anchor file and a ``.policies/`` directory beside it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from escalation import _logging
from escalation.errors import JournalError
from escalation.journal._backend import _JournalBase
from escalation.journal.masking import Masking
from escalation.journal.records import (
    GENESIS,
    Head,
    JournalRecord,
    RawEntry,
    StoredPolicy,
    parse_record,
    seal,
)


class JsonlJournal(_JournalBase):
    """A JSON-lines journal file, one record per line.

    Beside it: ``<file>.head`` (the anchor, rewritten after every append) and
    ``<file>.policies/`` (stored policies). Writers in threads and processes
    serialise on ``flock``; each line is written with one ``write`` and
    fsynced before ``append`` returns (``sync=False`` skips the fsync: then an
    operating-system crash, not a process crash, may lose acknowledged
    records). A torn last line (a writer killed mid-write, never
    acknowledged) is cut off by the next writer and reported by ``verify``."""

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
        """The anchor file's seq and hash (``None`` when there is no anchor yet),
        read under a shared lock of the journal: writers hold it exclusively
        from their write to their head update, so the head read here anchors
        every complete record in the file at this instant."""
        try:
            with self._path.open("rb") as journal:
                fcntl.flock(journal.fileno(), fcntl.LOCK_SH)
                try:
                    text = self._head_path.read_text(encoding="ascii")
                finally:
                    fcntl.flock(journal.fileno(), fcntl.LOCK_UN)
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
