"""How the typed layout is written (:mod:`escalation.portfolio.arrow`): the one
place for the Parquet options, used by the generator, the converter and the
dry-run benchmark's tiling alike.

* **Row groups one columnar batch long**: accounts row group ``g`` holds
  accounts ``g × ROW_GROUP`` … ``(g + 1) × ROW_GROUP`` (the last one shorter)
  and the events file's row groups hold the events of exactly those accounts
  (split in groups of at most ``EVENTS_GROUP`` rows for long histories), so a
  dry-run's batch is whole row groups: read in one call per file, no piece
  joined to another, no row decoded twice (:mod:`._typed_slices`).
* **Encodings by type**: integers, dates and instants (sorted ``row`` and
  ``account``, ``at`` sorted within an account) delta-encoded
  (``DELTA_BINARY_PACKED``: decoded ~2× faster than dictionary pages of
  them); text and lists of text dictionary-encoded (few distinct values),
  except ``id`` (one a row); money plain; all pages LZ4 (measured as cheap to
  decode as no compression, smaller than snappy).

Any typed folder reads, whatever wrote it: these options only make reading
cheaper."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["EVENTS_GROUP", "ROW_GROUP", "TypedWriter", "parquet_options"]

#: Accounts a row group holds: the columnar dry-run's batch
#: (``escalation.portfolio._columnar_run.COLUMNAR_BATCH``; a test holds them equal).
ROW_GROUP = 32_768
#: Most events a row group holds (accounts of long histories: memory stays bounded).
EVENTS_GROUP = 1_048_576
_UNIQUE = {"id", "rest", "raw"}  # text of (nearly) one value a row: a dictionary only costs


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """Keyword arguments of ``pq.ParquetWriter`` for a typed-layout table of ``schema``."""
    delta = {}
    text = []
    for field in schema:
        kind = field.type
        if pa.types.is_integer(kind) or pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            delta[field.name] = "DELTA_BINARY_PACKED"
        elif field.name not in _UNIQUE and _is_text(kind.value_type if pa.types.is_list(kind) else kind):
            text.append(field.name)
    paths = _paths(schema)  # a list's dictionary is named by its leaf column's path
    return {
        "compression": "lz4",
        "use_dictionary": [path for name in text for path in paths[name]],
        "column_encoding": delta,
    }


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _paths(schema: pa.Schema) -> dict[str, list[str]]:
    """Each top-level field's Parquet column paths (``flags`` → ``flags.list.element``)."""
    sink = io.BytesIO()
    pq.write_table(schema.empty_table(), sink)
    paths: dict[str, list[str]] = {name: [] for name in schema.names}
    parquet = pq.ParquetFile(io.BytesIO(sink.getvalue())).schema
    for i in range(len(parquet)):
        path = parquet.column(i).path
        paths[path.split(".", 1)[0]].append(path)
    return paths


class TypedWriter:
    """Writes a typed folder: accounts tables and their events (``account``
    numbering accounts from the folder's first row) in order, regrouped in
    row groups of ``group`` accounts (:data:`ROW_GROUP`) with their events."""

    def __init__(
        self, folder: str | Path, accounts: pa.Schema, events: pa.Schema, group: int = ROW_GROUP
    ) -> None:
        folder = Path(folder)
        self.group = group
        folder.mkdir(parents=True, exist_ok=True)
        self._accounts = pq.ParquetWriter(folder / "accounts.parquet", accounts, **parquet_options(accounts))
        self._events = pq.ParquetWriter(folder / "events.parquet", events, **parquet_options(events))
        self._held: tuple[list[pa.Table], list[pa.Table]] = ([], [])
        self._count = 0  # accounts held
        self.written = 0  # accounts written

    def write(self, accounts: pa.Table, events: pa.Table) -> None:
        """Add ``accounts`` (the folder's next rows) and their events."""
        if accounts.num_rows:
            self._held[0].append(accounts)
            self._count += accounts.num_rows
        if events.num_rows:
            self._held[1].append(events)
        while self._count >= self.group:
            self._flush(self.group)

    def close(self) -> None:
        """Write what is held (the last, shorter group) and close both files."""
        try:
            if self._count or self._held[1]:
                self._flush(self._count)
        finally:
            self._accounts.close()
            self._events.close()

    def __enter__(self) -> TypedWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _flush(self, size: int) -> None:
        """Write the first ``size`` held accounts as one row group, their events after them."""
        accounts = pa.concat_tables(self._held[0]) if self._held[0] else None
        events = pa.concat_tables(self._held[1]) if self._held[1] else None
        end = self.written + size
        cut = 0
        if events is not None:
            owners = np.asarray(events.column("account"), dtype=np.int64)
            cut = int(np.searchsorted(owners, end, side="left")) if size < self._count else len(owners)
        if accounts is not None and size:
            self._accounts.write_table(accounts.slice(0, size), row_group_size=size)
        if cut:
            assert events is not None
            self._events.write_table(events.slice(0, cut), row_group_size=EVENTS_GROUP)
        self._held = (
            [accounts.slice(size)] if accounts is not None and accounts.num_rows > size else [],
            [events.slice(cut)] if events is not None and events.num_rows > cut else [],
        )
        self._count -= size
        self.written = end
