"""The dry-run's spool: with worker processes, each worker writes the decisions
it encoded itself, and sends back only where they went (:class:`Spooled`).

JSON lines go straight into the decisions files, at the offset where their
batch starts (:mod:`~escalation.portfolio._placed` works it out between the
workers); a batch encoded before every batch ahead of it waits in the
worker's spool file, in a private folder inside the output folder (so on the
same filesystem), until the worker that completes what is ahead of it copies
it in (:func:`copy_range`, in the kernel with ``os.copy_file_range``). The
writing process copies nothing. A Parquet-bound table is spooled as an Arrow
IPC stream, read back memory-mapped by the writing process
(:func:`spooled_table`, no copy), which writes the row groups in batch order.

A worker writes one spool file per task and output name (:class:`SpoolFiles`);
the writing process deletes them once it has received the task
(:func:`release`), so the spool holds the tasks in flight, not the whole
output. The folder goes with the run (:func:`spool_folder`), also on an error."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "SPLICE_METHODS", "SpoolFiles", "Spooled", "copy_range", "release", "splice", "spool_folder",
    "spooled_table",
]  # fmt: skip

# How ranges are copied, in order of preference: a method the filesystem or
# the OS refuses is dropped for the rest of the writer's run.
SPLICE_METHODS = ("copy_file_range", "sendfile", "read")
# Errors that say "not this way here" (not "the copy failed"): try the next method.
_REFUSED = {
    errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.EPERM,
    errno.EBADF, errno.ETXTBSY, errno.ESPIPE, errno.ENOTSOCK,
}  # fmt: skip
_CHUNK = 1 << 20  # bytes a plain read-write copies at once
_ALIGN = 64  # an IPC stream starts on this boundary: its buffers stay aligned when memory-mapped


@dataclass(frozen=True, slots=True)
class Spooled:
    """Where a worker spooled one batch's encoded decisions: ``length`` bytes at
    ``offset`` of ``path``, JSON lines (``arrow``: an Arrow IPC stream);
    ``placed``: JSON lines the workers put in the decisions file themselves
    (nothing to copy; ``path`` is the task's spool file, to delete)."""

    path: str
    offset: int
    length: int
    arrow: bool = False
    placed: bool = False


@contextmanager
def spool_folder(out: Path) -> Iterator[Path]:
    """A private temporary folder inside ``out`` (``.spool-*``), removed with
    everything in it when the block ends, however it ends."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=".spool-", dir=out))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class SpoolFiles:
    """One worker task's spool files, one per output name, appended to batch after batch."""

    def __init__(self, folder: str, task: int) -> None:
        self._folder, self._task = folder, task
        self._files: dict[str, Any] = {}
        self._placing: dict[str, _Placing] = {}
        self._methods = list(SPLICE_METHODS)

    def _path(self, task: int, name: str, suffix: str = ".jsonl") -> str:
        return os.path.join(self._folder, f"{task}-{name}{suffix}")

    def append(self, name: str, payload: Any, target: str | None = None) -> Spooled:
        """Append ``payload`` (an Arrow buffer of JSON lines, or a table) to
        output ``name``: JSON lines with a ``target`` (the decisions file) are
        placed in it (:mod:`~escalation.portfolio._placed`; this task's batches
        in call order), others go to the task's spool file. Where it went."""
        if hasattr(payload, "schema"):
            return self._append_table(name, payload)
        view = memoryview(payload)
        if target is not None:
            return self._place(name, view, target)
        return Spooled(self._path(self._task, name), self._spool(name, view), len(view))

    def _spool(self, name: str, view: memoryview) -> int:
        """``view`` appended to this task's spool file of ``name``: at which offset."""
        handle = self._files.get(name)
        if handle is None:
            handle = self._files[name] = open(self._path(self._task, name), "wb", buffering=0)  # noqa: SIM115 (closed by close())
        offset = handle.tell()
        done = 0
        while done < len(view):  # a raw write may take less than it is given
            done += handle.write(view[done:])
        return offset

    def _place(self, name: str, view: memoryview, target: str) -> Spooled:
        from escalation.portfolio._placed import Ledger

        placing = self._placing.get(name)
        if placing is None:
            fd = os.open(target, os.O_WRONLY)
            try:
                ledger = Ledger(os.path.join(self._folder, f"ledger-{name}"))
            except BaseException:
                os.close(fd)
                raise
            placing = self._placing[name] = _Placing(ledger, fd)
        batch = placing.batches
        placing.batches += 1
        start, claims = placing.ledger.place(self._task, batch, len(view))
        if start is None:  # a batch ahead is not encoded yet: spooled, copied in by whoever places it
            claims = placing.ledger.spooled(self._task, batch, self._spool(name, view), len(view))
        else:
            done = 0
            while done < len(view):
                done += os.pwrite(placing.fd, view[done:], start + done)
        self._copy(name, placing, claims)
        return Spooled(self._path(self._task, name), 0, len(view), placed=True)

    def _copy(self, name: str, placing: _Placing, claims: list[Any]) -> None:
        """The spooled batches this task's worker claimed, copied into the decisions file."""
        for claim in claims:
            src = os.open(self._path(claim.task, name), os.O_RDONLY)
            try:
                copy_range(src, claim.offset, claim.length, placing.fd, claim.start, self._methods)
            finally:
                os.close(src)

    def _append_table(self, name: str, table: Any) -> Spooled:
        import pyarrow as pa

        path = self._path(self._task, name, ".arrow")
        sink = self._files.get(name)
        if sink is None:
            sink = self._files[name] = pa.OSFile(path, mode="wb")
        if sink.tell() % _ALIGN:
            sink.write(b"\0" * (_ALIGN - sink.tell() % _ALIGN))
        offset = sink.tell()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Spooled(path, offset, sink.tell() - offset, arrow=True)

    def close(self) -> None:
        """Record the end of the task in each output's ledger (copying in the
        spooled batches that lets through), then close every file."""
        try:
            for name, placing in self._placing.items():
                self._copy(name, placing, placing.ledger.ended(self._task, placing.batches))
        finally:
            for placing in self._placing.values():
                placing.close()
            self._placing.clear()
            for handle in self._files.values():
                handle.close()
            self._files.clear()


class _Placing:
    """One output's ledger and decisions file, open for a task, and the batches it has placed."""

    def __init__(self, ledger: Any, fd: int) -> None:
        self.ledger, self.fd, self.batches = ledger, fd, 0

    def close(self) -> None:
        self.ledger.close()
        os.close(self.fd)


def release(refs: Iterable[Spooled]) -> None:
    """Delete the spool files of ``refs`` once every range in them is written."""
    for path in {ref.path for ref in refs}:
        with suppress(OSError):  # already gone, or still mapped where that forbids it: the folder goes anyway
            os.unlink(path)


def spooled_table(ref: Spooled) -> Any:
    """The table spooled at ``ref``, memory-mapped (its columns read no byte
    until used)."""
    import pyarrow as pa

    with pa.memory_map(ref.path) as source:
        source.seek(ref.offset)
        return pa.ipc.open_stream(source.read_buffer(ref.length)).read_all()


def splice(ref: Spooled, out: IO[bytes], methods: list[str]) -> None:
    """Append the bytes at ``ref`` to ``out`` (a binary file open for writing)
    with :func:`copy_range`."""
    out.flush()  # the kernel copies at the descriptor's position: the buffered bytes go first
    at = out.tell()
    with open(ref.path, "rb", buffering=0) as source:
        copy_range(source.fileno(), ref.offset, ref.length, out.fileno(), at, methods)
    out.seek(at + ref.length)


def copy_range(src: int, offset: int, length: int, dst: int, start: int, methods: list[str]) -> None:
    """Copy ``length`` bytes at ``offset`` of file descriptor ``src`` to ``start``
    of ``dst``, in the kernel where the OS and filesystem allow: each of
    ``methods`` (see :data:`SPLICE_METHODS`) is tried in turn and one refused
    is removed from the list, so the next range goes straight to what works."""
    left = length
    while left:
        method = methods[0]
        try:
            if method == "copy_file_range":
                copied = os.copy_file_range(src, dst, left, offset, start)
            elif method == "sendfile":
                os.lseek(dst, start, os.SEEK_SET)  # (sendfile writes at the descriptor's position)
                copied = os.sendfile(dst, src, offset, left)
            else:
                data = os.pread(src, min(left, _CHUNK), offset)
                copied = os.pwrite(dst, data, start) if data else 0
        except (OSError, AttributeError) as exc:  # AttributeError: the OS has no such call
            if method == "read" or (isinstance(exc, OSError) and exc.errno not in _REFUSED):
                raise
            methods.pop(0)
            continue
        if not copied:  # some filesystems copy nothing instead of refusing
            if method == "read":
                raise OSError(errno.EIO, f"spool file ends before its range ({offset} + {left} bytes)")
            methods.pop(0)
            continue
        offset += copied
        start += copied
        left -= copied
