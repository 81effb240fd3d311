"""The typed layout as today's writer lays it out (``_typed_writer``): row
groups one columnar batch long, read whole by ``TypedSlices`` — batches equal,
column for column, to those of the same records written as the writer of
a0eaf71 did (default Parquet options, row groups of any size, read piece by
piece), and a folder of either layout decides into the same bytes."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyarrow")

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import escalation.portfolio._typed_writer as typed_writer
from escalation import compare
from escalation.portfolio._columnar_run import COLUMNAR_BATCH
from escalation.portfolio._nulls import nulls
from escalation.portfolio._typed_slices import TypedSlices
from escalation.portfolio._typed_writer import ROW_GROUP, TypedWriter
from escalation.portfolio.arrow import ACCOUNTS, ENCODED, EVENTS, convert, read_typed, to_batch, write_typed
from escalation.portfolio.generate import PROFILES, generate, write_portfolio

from .conftest import CN_POLICY, ROOT

AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
BAD = ROOT / "examples" / "portfolio-bad.jsonl"


def _old_layout(records: list[Any], folder: Path, batch: int) -> None:
    """``records`` written as the writer of a0eaf71 did: default options, a row group a batch."""
    folder.mkdir(parents=True, exist_ok=True)
    with (
        pq.ParquetWriter(folder / "accounts.parquet", ACCOUNTS) as accounts,
        pq.ParquetWriter(folder / "events.parquet", EVENTS) as events,
    ):
        for first in range(0, len(records), batch):
            typed = to_batch(list(enumerate(records[first : first + batch], first + 1)))
            owners = typed.events.column("account").to_numpy() + first
            accounts.write_table(typed.accounts)
            events.write_table(typed.events.set_column(0, "account", pa.array(owners, pa.int64())))


def _records(count: int, seed: int, profile: str = "cn-card") -> list[dict[str, Any]]:
    return list(generate(count, seed, profile, AT))


def _same(a: Any, b: Any) -> None:
    assert a.accounts.equals(b.accounts)
    assert a.events.equals(b.events)
    assert a.encoded_events.schema == b.encoded_events.schema  # ENCODED columns dictionary-encoded in both
    for name in ENCODED:
        assert pa.types.is_dictionary(a.encoded_events.schema.field(name).type)


def test_row_groups_are_the_columnar_batch() -> None:
    assert ROW_GROUP == COLUMNAR_BATCH


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 200),
    group=st.integers(5, 90),
    old_group=st.integers(1, 120),
    events_group=st.sampled_from([3, 17, 1_048_576]),
    seed=st.integers(0, 50),
    profile=st.sampled_from(sorted(PROFILES)),
)
def test_batches_of_either_layout_are_equal(
    count: int, group: int, old_group: int, events_group: int, seed: int, profile: str
) -> None:
    """Read by number (in order, then backwards), every batch of a folder of
    today's layout equals the same batch of the old layout, and is read whole
    (one call per file) — also when long histories split a batch's events in
    several row groups."""
    records = _records(count, seed, profile)
    with tempfile.TemporaryDirectory() as tmp:
        new, old = Path(tmp) / "new", Path(tmp) / "old"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(typed_writer, "EVENTS_GROUP", events_group)
            write_typed(records, new, batch=group)
        _old_layout(records, old, old_group)
        # accounts in batch-long row groups, events not: each group also holds the
        # events of the next batch's first account (read by pieces)
        mixed = Path(tmp) / "mixed"
        mixed.mkdir()
        shutil.copy(new / "accounts.parquet", mixed / "accounts.parquet")
        events = pq.read_table(old / "events.parquet")
        cuts = np.searchsorted(events.column("account").to_numpy(), np.arange(1, count, group) + group)
        with pq.ParquetWriter(mixed / "events.parquet", events.schema) as out:
            for low, high in zip([0, *cuts], [*cuts, events.num_rows], strict=True):
                out.write_table(events.slice(low, high - low))
        fast, slow = TypedSlices.open(new, group), TypedSlices.open(old, group)
        assert fast is not None and slow is not None and len(fast) == len(slow) == -(-count // group)
        expected = list(read_typed(old, group))
        for k in [*range(len(fast)), *reversed(range(len(fast)))]:
            assert fast._whole(k * group, min((k + 1) * group, count)) is not None
            got = fast.batch(k)
            _same(got, slow.batch(k))
            _same(got, expected[k])
            for column in got.accounts.columns:
                assert column.num_chunks == 1
        across = TypedSlices.open(mixed, group)
        assert across is not None
        for k in [*range(len(across)), *reversed(range(len(across)))]:
            _same(across.batch(k), expected[k])


@pytest.mark.parametrize(("group", "size"), [(64, 64), (64, 32), (50, 64), (200, 64)])
def test_other_batch_sizes_read_by_pieces(tmp_path: Path, group: int, size: int) -> None:
    """Row groups that are not the batch (another batch size): read piece by piece, equal all the same."""
    records = _records(300, 3)
    write_typed(records, tmp_path / "new", batch=group)
    _old_layout(records, tmp_path / "old", 97)
    fast, slow = TypedSlices.open(tmp_path / "new", size), TypedSlices.open(tmp_path / "old", size)
    assert fast is not None and slow is not None
    for k in range(len(fast)):
        _same(fast.batch(k), slow.batch(k))


def test_writer_options(tmp_path: Path) -> None:
    """Integers, dates and instants delta-encoded; text (not ids, not JSON) and
    lists of text dictionary-encoded; LZ4 pages; ``account`` statistics kept."""
    write_typed(_records(200, 1), tmp_path / "t", batch=64)
    delta = {"row", "days_overdue", "overdue_since", "account", "at", "consent_until", "promise_made_at"}
    dictionary = {"currency", "timezone", "flags.list.element", "action", "channel", "address", "offer"}
    plain = {"id", "rest", "raw", "amount_overdue", "amount", "misdirected"}
    seen = set()
    for name in ("accounts", "events"):
        meta = pq.ParquetFile(tmp_path / "t" / f"{name}.parquet").metadata
        if name == "accounts":
            assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [64, 64, 64, 8]
        for g in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                column = meta.row_group(g).column(i)
                path, encodings = column.path_in_schema, set(column.encodings)
                assert column.compression.startswith("LZ4"), path
                seen.add(path)
                if path in delta:
                    assert "DELTA_BINARY_PACKED" in encodings, path
                if path in dictionary:
                    assert "RLE_DICTIONARY" in encodings, path
                if path in plain:
                    assert "RLE_DICTIONARY" not in encodings, path
        if name == "events":
            stats = [meta.row_group(g).column(0).statistics for g in range(meta.num_row_groups)]
            assert all(s is not None and s.has_min_max for s in stats)
    assert delta | dictionary | plain <= seen


def test_writer_regroups_whatever_it_is_given(tmp_path: Path) -> None:
    """Tables of any length (and several chunks) in; row groups of exactly
    ``group`` accounts out, each with exactly its accounts' events."""
    typed = to_batch(list(enumerate(_records(230, 9), 1)))
    cuts = [0, 1, 1, 50, 51, 130, 229, 230]
    with TypedWriter(tmp_path / "t", ACCOUNTS, EVENTS, group=40) as writer:
        owners = typed.events.column("account").to_numpy()
        for low, high in itertools.pairwise(cuts):
            first, last = np.searchsorted(owners, [low, high])
            part = typed.accounts.slice(low, high - low)
            chunked = pa.concat_tables([part.slice(0, 1), part.slice(1)])
            writer.write(chunked, typed.events.slice(first, last - first))
    accounts = pq.ParquetFile(tmp_path / "t" / "accounts.parquet").metadata
    events = pq.ParquetFile(tmp_path / "t" / "events.parquet").metadata
    assert [accounts.row_group(g).num_rows for g in range(accounts.num_row_groups)] == [40] * 5 + [30]
    for g in range(events.num_row_groups):
        stats = events.row_group(g).column(0).statistics
        assert stats.min // 40 == stats.max // 40 == g
    assert pq.read_table(tmp_path / "t" / "accounts.parquet").equals(typed.accounts)
    assert pq.read_table(tmp_path / "t" / "events.parquet").equals(typed.events)


@pytest.mark.parametrize(("fmt", "reasons", "workers"), [("jsonl", "changed", 1), ("parquet", "none", 2)])
def test_a_folder_of_either_layout_decides_the_same_bytes(
    tmp_path: Path, fmt: str, reasons: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder written by a0eaf71's writer, and the same records converted by
    today's (bad lines among them: raw rows), give the same files."""
    import escalation.portfolio._columnar_run as run

    monkeypatch.setattr(run, "COLUMNAR_BATCH", 64)
    plain = tmp_path / "plain.jsonl"
    write_portfolio(generate(300, 21, "cn-card", AT), plain)
    lines = plain.read_text().splitlines(keepends=True)
    source = tmp_path / "mixed.jsonl"
    source.write_text("".join(lines[:100]) + BAD.read_text() + "".join(lines[100:]))
    new = tmp_path / "new.typed"
    convert(source, new)
    written = pq.read_table(new / "accounts.parquet"), pq.read_table(new / "events.parquet")
    assert written[0].column("raw").null_count < written[0].num_rows  # raw rows among them
    old = tmp_path / "old.typed"
    old.mkdir()
    pq.write_table(written[0], old / "accounts.parquet", row_group_size=97)  # old options, other groups
    pq.write_table(written[1], old / "events.parquet", row_group_size=500)
    variant = tmp_path / "cn-9.yaml"
    variant.write_text(CN_POLICY.read_text().replace("days_overdue >= 8", "days_overdue >= 9"))
    files = []
    for folder in (new, old):
        out = tmp_path / f"out-{folder.stem}"
        compare(CN_POLICY, variant, folder, at=AT, out=out, fmt=fmt, reasons=reasons, workers=workers)
        names = (f"decisions.{fmt}", f"baseline.{fmt}", "changes.jsonl", "errors.jsonl", "summary.json")
        files.append({n: (out / n).read_bytes().replace(str(folder).encode(), b"<in>") for n in names})
    assert files[0] == files[1]


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 70_000), field=st.sampled_from([*ACCOUNTS, *EVENTS]))
def test_shared_zero_nulls_equal_arrow_s(rows: int, field: pa.Field) -> None:
    """The null columns a batch is given without decoding: valid, equal to ``pa.nulls``."""
    made = nulls(field.type, rows)
    made.validate(full=True)
    assert made.type == field.type and made.null_count == rows
    assert made.equals(pa.nulls(rows, field.type))
