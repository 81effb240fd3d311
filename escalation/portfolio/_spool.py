"""The dry-run's spool: with worker processes, each worker writes the decisions
it encoded to files of its own, in a private folder inside the output folder
(so on the same filesystem), and sends back only where they are
(:class:`Spooled`: file, offset, length); the writing process splices those
ranges into the decisions files in batch order (:func:`splice`, in the kernel
with ``os.copy_file_range``), so the encoded decisions never cross a pipe or
this process's heap.

JSON lines are spooled as they are; a Parquet-bound table as an Arrow IPC
stream, read back memory-mapped (:func:`spooled_table`, no copy). A worker
writes one file per task and output name (:class:`SpoolFiles`); the writing
process deletes them once their ranges are written (:func:`release`), so the
spool holds the tasks in flight, not the whole output. The folder goes with
the run (:func:`spool_folder`), also on an error."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["SPLICE_METHODS", "SpoolFiles", "Spooled", "release", "splice", "spool_folder", "spooled_table"]

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
    ``offset`` of ``path``, JSON lines (``arrow``: an Arrow IPC stream)."""

    path: str
    offset: int
    length: int
    arrow: bool = False


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
        self._stem = os.path.join(folder, f"{task}-")
        self._files: dict[str, Any] = {}

    def append(self, name: str, payload: Any) -> Spooled:
        """Append ``payload`` (an Arrow buffer of JSON lines, or a table) to the
        file of output ``name``; where it went."""
        if hasattr(payload, "schema"):
            return self._append_table(name, payload)
        path = self._stem + name + ".jsonl"
        handle = self._files.get(name)
        if handle is None:
            handle = self._files[name] = open(path, "wb", buffering=0)  # noqa: SIM115 (closed by close())
        offset = handle.tell()
        view = memoryview(payload)
        done = 0
        while done < len(view):  # a raw write may take less than it is given
            done += handle.write(view[done:])
        return Spooled(path, offset, len(view))

    def _append_table(self, name: str, table: Any) -> Spooled:
        import pyarrow as pa

        path = self._stem + name + ".arrow"
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
        for handle in self._files.values():
            handle.close()
        self._files.clear()


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
    """Append the bytes at ``ref`` to ``out`` (a binary file open for writing),
    in the kernel where the OS and filesystem allow: each of ``methods`` (see
    :data:`SPLICE_METHODS`) is tried in turn and one refused is removed from
    the list, so the next range goes straight to what works."""
    out.flush()  # the kernel copies at the descriptor's position: the buffered bytes go first
    with open(ref.path, "rb", buffering=0) as source:
        src, dst = source.fileno(), out.fileno()
        offset, left = ref.offset, ref.length
        while left:
            method = methods[0]
            try:
                if method == "copy_file_range":
                    copied = os.copy_file_range(src, dst, left, offset)
                elif method == "sendfile":
                    copied = os.sendfile(dst, src, offset, left)
                else:
                    copied = _copy(source, out, offset, left)
            except (OSError, AttributeError) as exc:  # AttributeError: the OS has no such call
                if method == "read" or (isinstance(exc, OSError) and exc.errno not in _REFUSED):
                    raise
                methods.pop(0)
                continue
            if not copied:  # some filesystems copy nothing instead of refusing
                if method == "read":
                    raise OSError(errno.EIO, f"spool file {ref.path} ends before its range")
                methods.pop(0)
                continue
            offset += copied
            left -= copied


def _copy(source: Any, out: IO[bytes], offset: int, left: int) -> int:
    """Plain read and write, ``_CHUNK`` bytes at most: what was copied."""
    source.seek(offset)
    data = source.read(min(left, _CHUNK))
    out.write(data)
    out.flush()
    return len(data)
