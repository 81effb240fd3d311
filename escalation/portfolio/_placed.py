"""Where each batch's JSON lines go in a decisions file, worked out by the
workers themselves so they write there directly (``os.pwrite``) and the run's
own process copies nothing.

A batch's bytes start where the batch before it ends, known only once every
batch before it is encoded. Each output has a small :class:`Ledger` in the
spool folder, shared by the workers (a file mapped in memory, changed under
``flock``): the *frontier* (the next batch in order, as task and batch within
it, and the offset where it starts) and what waits for it. A worker whose
batch is at the frontier claims its range and writes it; one that is early
spools the batch (:mod:`~escalation.portfolio._spool`) and records it; a task
that ends records how many batches it had. Whoever moves the frontier also
claims the spooled batches and task ends it reaches, and copies those batches
from their spool files before its task returns — always the task of an
earlier batch, so by the time the writing process has received a task, every
batch up to its last is in the file and the task's spool files can go."""

from __future__ import annotations

import fcntl
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Claim", "Ledger"]

# the frontier: task, batch within it, offset where that batch's bytes start; how many entries;
# batches placed at once and spooled so far (for :func:`counts`: how the run went)
_TASK, _BATCH, _END, _COUNT, _DIRECT, _SPOOLS = range(6)
_HEAD = 6
# an entry: kind, task, batch, offset in its spool file, length (a task's end: batches, -, -)
_WIDTH = 5
_SPOOLED, _ENDS = 1, 2
# entries wait only for batches in flight (a run keeps workers + 1 tasks in flight): room for far more
_ENTRIES = 512
_SIZE = 8 * (_HEAD + _WIDTH * _ENTRIES)


@dataclass(frozen=True, slots=True)
class Claim:
    """A spooled batch whose place is now known: ``length`` bytes at ``offset``
    of task ``task``'s spool file go at ``start`` of the decisions file."""

    task: int
    offset: int
    length: int
    start: int


class Ledger:
    """One output's frontier and waiting entries, shared by every worker of a run
    (``path``: created with the first worker that opens it, all zeros: the
    frontier at the first task's first batch, offset 0)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with self._locked():
            if os.fstat(self._fd).st_size < _SIZE:
                os.ftruncate(self._fd, _SIZE)
        self._map = mmap.mmap(self._fd, _SIZE)
        self._cells = memoryview(self._map).cast("q")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def place(self, task: int, batch: int, length: int) -> tuple[int | None, list[Claim]]:
        """Claim the range of ``length`` bytes of batch ``batch`` of task ``task``
        if the batch is at the frontier: where it starts (``None``: not yet
        known, spool it and :meth:`spooled`), and the spooled batches the
        frontier reached after it, for the caller to copy."""
        cells = self._cells
        with self._locked():
            if (cells[_TASK], cells[_BATCH]) != (task, batch):
                return None, []
            start = cells[_END]
            cells[_END] = start + length
            cells[_DIRECT] += 1
            cells[_BATCH] = batch + 1
            return start, self._advance()

    def spooled(self, task: int, batch: int, offset: int, length: int) -> list[Claim]:
        """Record a batch spooled at ``offset`` of its task's spool file; the
        spooled batches the frontier has reached meanwhile (this one among them,
        if its predecessor was placed since :meth:`place`), for the caller to copy."""
        with self._locked():
            self._add(_SPOOLED, task, batch, offset, length)
            self._cells[_SPOOLS] += 1
            return self._advance()

    def ended(self, task: int, batches: int) -> list[Claim]:
        """Record that task ``task`` had ``batches`` batches; the spooled batches
        the frontier reaches past its end, for the caller to copy."""
        with self._locked():
            self._add(_ENDS, task, batches, 0, 0)
            return self._advance()

    def _add(self, kind: int, task: int, batch: int, offset: int, length: int) -> None:
        cells = self._cells
        count = cells[_COUNT]
        if count == _ENTRIES:
            raise RuntimeError("the decisions ledger is full: more batches in flight than it can hold")
        at = _HEAD + _WIDTH * count
        for k, value in enumerate((kind, task, batch, offset, length)):
            cells[at + k] = value
        cells[_COUNT] = count + 1

    def _advance(self) -> list[Claim]:
        """Move the frontier over every waiting entry it meets (under the lock)."""
        cells = self._cells
        claims: list[Claim] = []
        while True:
            task, batch = cells[_TASK], cells[_BATCH]
            found = self._find(task, batch)
            if found is None:
                return claims
            at = _HEAD + _WIDTH * found
            if cells[at] == _ENDS:
                cells[_TASK], cells[_BATCH] = task + 1, 0
            else:
                length = cells[at + 4]
                claims.append(Claim(task, cells[at + 3], length, cells[_END]))
                cells[_END] += length
                cells[_BATCH] = batch + 1
            last = _HEAD + _WIDTH * (cells[_COUNT] - 1)  # the last entry takes the freed place
            for k in range(_WIDTH):
                cells[at + k] = cells[last + k]
            cells[_COUNT] -= 1

    def _find(self, task: int, batch: int) -> int | None:
        cells = self._cells
        for entry in range(cells[_COUNT]):
            at = _HEAD + _WIDTH * entry
            if cells[at + 1] == task and cells[at + 2] == batch:
                return entry
        return None

    def counts(self) -> tuple[int, int]:
        """Batches placed at once and batches spooled so far."""
        with self._locked():
            return self._cells[_DIRECT], self._cells[_SPOOLS]

    def close(self) -> None:
        self._cells.release()
        self._map.close()
        os.close(self._fd)
