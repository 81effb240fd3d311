"""A typed portfolio folder read by batch number: batch ``k`` holds accounts
``k × size`` to ``(k + 1) × size`` (the last one shorter) with their events —
exactly what :func:`~escalation.portfolio.arrow.read_typed` yields ``k``-th —
so each worker process of a dry-run reads its own batches, and no batch
travels between processes.

The accounts file is cut by its row groups' row counts, the events file by
its row groups' ``account`` statistics (min, max): only the row groups that
hold a batch's rows are read. A file without those statistics cannot be cut:
:meth:`TypedSlices.open` says so with ``None`` (and the dry-run reads it in
one process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from escalation.portfolio.arrow import ENCODED, TypedBatch, _conform

__all__ = ["TypedSlices"]

_HELD = 2  # decoded row groups kept per file: a batch's last group is often the next one's first


class TypedSlices:
    """Batches of ``size`` accounts of a typed folder, read by number."""

    def __init__(self, folder: Path, size: int, starts: Any, bounds: Any) -> None:
        self.folder, self.size = folder, size
        self._starts = starts  # accounts row groups: first row of each, then the row count
        self._bounds = bounds  # events row groups: (min, max) account of each
        self._files: tuple[pq.ParquetFile, pq.ParquetFile] | None = None
        self._held: dict[tuple[int, int], pa.Table] = {}

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
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        parts, at = [], int(self._starts[first])
        for g in range(first, len(self._starts) - 1):
            if at >= end:
                break
            parts.append(self._group(0, g, accounts))
            at = int(self._starts[g + 1])
        held = pa.concat_tables(parts)
        table = held.slice(start - int(self._starts[first]), end - start).combine_chunks()
        groups = [g for g, low, high in self._bounds if high >= start and low < end]
        if groups:
            buffer = pa.concat_tables([self._group(1, g, events) for g in groups])
        else:
            buffer = _conform(pa.Table.from_batches([], schema=events.schema_arrow))
        owners = buffer.column("account").to_numpy()
        low, high = np.searchsorted(owners, [start, end], side="left")
        mine = buffer.slice(int(low), int(high - low))
        local = pa.array(owners[low:high] - start, pa.int64())
        return TypedBatch(table, mine.set_column(0, "account", local), str(self.folder))

    def _open(self) -> tuple[pq.ParquetFile, pq.ParquetFile]:
        if self._files is None:
            present = set(pq.read_schema(self.folder / "events.parquet").names)
            encoded = [name for name in ENCODED if name in present]
            self._files = (
                pq.ParquetFile(self.folder / "accounts.parquet"),
                pq.ParquetFile(self.folder / "events.parquet", read_dictionary=encoded),
            )
        return self._files

    def _group(self, which: int, group: int, file: pq.ParquetFile) -> pa.Table:
        """Row group ``group`` of the accounts (0) or events (1) file, decoded once
        while held (a fresh read per row group keeps memory flat: see ``_by_row_group``)."""
        key = (which, group)
        table = self._held.get(key)
        if table is None:
            table = _conform(_read(file, group)) if which else _read(file, group)
            mine = [k for k in self._held if k[0] == which]
            if len(mine) >= _HELD:
                del self._held[mine[0]]
            self._held[key] = table
        return table


def _read(file: pq.ParquetFile, group: int) -> pa.Table:
    """Row group ``group`` of ``file``: a column that is null throughout (its
    statistics say so) is made, not decoded; no thread pool (each worker is one
    of several processes: Arrow's threads only add CPU time here)."""
    meta, schema = file.metadata.row_group(group), file.schema_arrow
    rows = meta.num_rows
    empty = set()
    for i in range(meta.num_columns):
        stats, name = meta.column(i).statistics, meta.column(i).path_in_schema
        if name not in schema.names or pa.types.is_dictionary(schema.field(name).type):
            continue  # (list columns have their own paths; read-dictionary columns are read)
        if stats is not None and stats.has_null_count and stats.null_count == rows:
            empty.add(name)
    if not empty:
        return file.read_row_group(group, use_threads=False)
    table = file.read_row_group(group, columns=[n for n in schema.names if n not in empty], use_threads=False)
    arrays = [
        pa.nulls(rows, field.type) if field.name in empty else table.column(field.name) for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
