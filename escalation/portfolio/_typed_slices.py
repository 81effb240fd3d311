"""A typed portfolio folder read by batch number: batch ``k`` holds accounts
``k × size`` to ``(k + 1) × size`` (the last one shorter) with their events —
exactly what :func:`~escalation.portfolio.arrow.read_typed` yields ``k``-th —
so each worker process of a dry-run reads its own batches, and no batch
travels between processes.

The accounts file is cut by its row groups' row counts, the events file by
its row groups' ``account`` statistics (min, max): only the row groups that
hold a batch's rows are read. When those row groups hold that batch and
nothing else (today's writer, :mod:`._typed_writer`) they are read whole, one
call per file; otherwise piece by piece, each group decoded once per worker.
A file without those statistics cannot be cut: :meth:`TypedSlices.open` says
so with ``None`` (and the dry-run reads it in one process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from escalation.portfolio._nulls import nulls
from escalation.portfolio.arrow import ENCODED, TypedBatch, _conform

__all__ = ["TypedSlices"]

_HELD = 2  # row groups being read, per file: a batch's last group is often the next one's first
_STEP = (8_192, 65_536)  # rows decoded at a time: accounts, events


class TypedSlices:
    """Batches of ``size`` accounts of a typed folder, read by number."""

    def __init__(self, folder: Path, size: int, starts: Any, bounds: Any) -> None:
        self.folder, self.size = folder, size
        self._starts = starts  # accounts row groups: first row of each, then the row count
        self._bounds = bounds  # events row groups: (min, max) account of each
        self._files: tuple[pq.ParquetFile, pq.ParquetFile] | None = None
        self._held: dict[tuple[int, int], _Stream] = {}

    @classmethod
    def open(cls, folder: str | Path, size: int) -> TypedSlices | None:
        """The folder's batches, or ``None`` when its events cannot be cut by
        account (row groups without statistics)."""
        folder = Path(folder)
        accounts = pq.ParquetFile(folder / "accounts.parquet").metadata
        events = pq.ParquetFile(folder / "events.parquet").metadata
        counts = [accounts.row_group(g).num_rows for g in range(accounts.num_row_groups)]
        bounds = []
        for g in range(events.num_row_groups):
            group = events.row_group(g)
            if not group.num_rows:
                continue
            stats = group.column(0).statistics
            if group.column(0).path_in_schema != "account" or stats is None or not stats.has_min_max:
                return None
            bounds.append((g, int(stats.min), int(stats.max)))
        return cls(folder, size, np.cumsum([0, *counts]), bounds)

    @property
    def accounts(self) -> int:
        """How many accounts the folder holds."""
        return int(self._starts[-1])

    def __len__(self) -> int:
        return -(-self.accounts // self.size)

    def __getstate__(self) -> dict[str, Any]:  # open files and held groups stay in their process
        return {**self.__dict__, "_files": None, "_held": {}}

    def batch(self, k: int) -> TypedBatch:
        """The ``k``-th batch: accounts ``k × size`` … with their events."""
        start = k * self.size
        end = min(start + self.size, self.accounts)
        accounts, events = self._open()
        whole = self._whole(start, end)
        if whole is not None:  # row groups of this batch only (today's writer): read whole
            table = _one_chunk(_read(accounts, whole[0]))
            mine = _conform(_read(events, whole[1]))
            owners = mine.column("account").to_numpy()
            local = pa.array(owners - start, pa.int64())
            return TypedBatch(table, mine.set_column(0, "account", local), str(self.folder))
        parts = []
        for g in range(int(np.searchsorted(self._starts, start, side="right")) - 1, len(self._starts) - 1):
            base = int(self._starts[g])
            if base >= end:
                break
            low, high = max(start - base, 0), min(end - base, int(self._starts[g + 1]) - base)
            stream = self._stream(0, g, accounts, low)
            while stream.rows < high and stream.more():
                pass
            parts.append(pa.concat_tables(stream.held).slice(low - stream.first, high - low))
            stream.drop(lambda piece, first, high=high: first + piece.num_rows <= high)
        table = pa.concat_tables(parts).combine_chunks()
        held = []
        for g in [g for g, low, high in self._bounds if high >= start and low < end]:
            stream = self._stream(1, g, events, start)
            while (not stream.held or _last(stream.held[-1]) < end) and stream.more():
                pass
            held += stream.held
        buffer = (
            pa.concat_tables(held)
            if held
            else _conform(pa.Table.from_batches([], schema=events.schema_arrow))
        )
        owners = buffer.column("account").to_numpy()
        low, high = np.searchsorted(owners, [start, end], side="left")
        mine = buffer.slice(int(low), int(high - low))
        local = pa.array(owners[low:high] - start, pa.int64())
        for g, _, _ in self._bounds:
            if (1, g) in self._held:
                self._held[(1, g)].drop(lambda piece, _first: _last(piece) < end)
        return TypedBatch(table, mine.set_column(0, "account", local), str(self.folder))

    def _whole(self, start: int, end: int) -> tuple[list[int], list[int]] | None:
        """The accounts and events row groups holding exactly the batch of
        accounts ``start`` … ``end`` and nothing else, or ``None``."""
        starts = self._starts
        first, last = np.searchsorted(starts, [start, end])
        if last >= len(starts) or starts[first] != start or starts[last] != end:
            return None
        events = [(g, low, high) for g, low, high in self._bounds if high >= start and low < end]
        if any(low < start or high >= end for _, low, high in events):
            return None  # a row group holding events of another batch too
        return list(range(int(first), int(last))), [g for g, _, _ in events]

    def _open(self) -> tuple[pq.ParquetFile, pq.ParquetFile]:
        if self._files is None:
            present = set(pq.read_schema(self.folder / "events.parquet").names)
            encoded = [name for name in ENCODED if name in present]
            self._files = (
                pq.ParquetFile(self.folder / "accounts.parquet"),
                pq.ParquetFile(self.folder / "events.parquet", read_dictionary=encoded),
            )
        return self._files

    def _stream(self, which: int, group: int, file: pq.ParquetFile, at: int) -> _Stream:
        """The reader of row group ``group`` of the accounts (0) or events (1)
        file, able to give rows (accounts) from ``at`` on: a worker's batches
        come in order, so a group is decoded once per worker, piece by piece and
        only as far as its batches need."""
        key = (which, group)
        stream = self._held.get(key)
        if stream is None or stream.past(at, which):
            mine = [k for k in self._held if k[0] == which and k != key]
            if len(mine) >= _HELD:
                del self._held[mine[0]]
            stream = self._held[key] = _Stream(file, group, _STEP[which], which == 1)
        return stream


def _read(file: pq.ParquetFile, groups: list[int]) -> pa.Table:
    """Row groups ``groups`` of ``file`` (its schema: columns null throughout made, not decoded)."""
    schema = file.schema_arrow
    if not groups:
        return pa.Table.from_batches([], schema=schema)
    empty = set.intersection(*(_empty(file, g) for g in groups))
    columns = [name for name in schema.names if name not in empty]
    # no thread pool: each worker is one of several processes, Arrow's threads only add CPU time here
    table = file.read_row_groups(groups, columns=columns, use_threads=False)
    rows = table.num_rows
    arrays = [
        pa.chunked_array([nulls(f.type, rows)]) if f.name in empty else table.column(f.name) for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _one_chunk(table: pa.Table) -> pa.Table:
    """``table`` with each column in one chunk (a column already one is kept, not copied)."""
    if all(column.num_chunks == 1 for column in table.columns):
        return table
    return table.combine_chunks()


def _last(events: pa.Table) -> int:
    """The account of the last event of ``events``."""
    return int(events.column(0)[events.num_rows - 1].as_py())


class _Stream:
    """One row group of a file decoded piece by piece from its start; the pieces
    still needed are ``held``, ``first`` rows of the group were dropped before them."""

    def __init__(self, file: pq.ParquetFile, group: int, step: int, events: bool) -> None:
        schema = file.schema_arrow
        self._empty = _empty(file, group)
        self._schema, self._events = schema, events
        columns = [name for name in schema.names if name not in self._empty]
        # no thread pool: each worker is one of several processes, Arrow's threads only add CPU time here
        self._pieces = file.iter_batches(step, row_groups=[group], columns=columns, use_threads=False)
        self.held: list[pa.Table] = []
        self.first = 0
        self.rows = 0  # rows of the group decoded so far
        self._dropped = -1  # the last account dropped (events)

    def more(self) -> bool:
        """Decode one more piece; ``False`` at the group's end."""
        piece = next(self._pieces, None)
        if piece is None:
            return False
        rows = piece.num_rows
        arrays = [
            nulls(f.type, rows) if f.name in self._empty else piece.column(f.name) for f in self._schema
        ]
        table = pa.Table.from_arrays(arrays, schema=self._schema)
        self.held.append(_conform(table) if self._events else table)
        self.rows += rows
        return True

    def drop(self, done: Any) -> None:
        """Forget the leading pieces ``done(piece, first row)`` says no later batch needs."""
        while self.held and done(self.held[0], self.first):
            piece = self.held.pop(0)
            self.first += piece.num_rows
            if self._events and piece.num_rows:
                self._dropped = _last(piece)

    def past(self, at: int, which: int) -> bool:
        """Whether rows (accounts, for events) from ``at`` on were dropped already."""
        return at < self.first if which == 0 else at <= self._dropped


def _empty(file: pq.ParquetFile, group: int) -> set[str]:
    """The columns of row group ``group`` that are null throughout (their
    statistics say so): made, not decoded."""
    meta, schema = file.metadata.row_group(group), file.schema_arrow
    empty = set()
    for i in range(meta.num_columns):
        stats, name = meta.column(i).statistics, meta.column(i).path_in_schema
        if name not in schema.names or pa.types.is_dictionary(schema.field(name).type):
            continue  # (list columns have their own paths; read-dictionary columns are read)
        if stats is not None and stats.has_null_count and stats.null_count == meta.num_rows:
            empty.add(name)
    return empty
