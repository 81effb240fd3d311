"""The columnar facts stage's kernels against the code they replaced (kept in
``_colfacts_reference.py``) or the direct computation, on drawn inputs: the
latest value per account by scatter vs ``np.maximum.at``; a zone table's
local day with one offset per span vs the per-instant lookup (DST edges);
column decoding chunk by chunk (dictionary-encoded or plain, nulls, words
outside the vocabulary) vs the concatenating originals."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

pytest.importorskip("pyarrow")

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.backends.columnar._column import _days, _instants, _sets
from escalation.backends.columnar._history import latest
from escalation.backends.columnar._zones import DAY_US, US, ZoneTable
from escalation.record import zone

from . import _colfacts_reference as reference
from ._column_reference import _codes, _is, _labels, _strings


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(-(2**40), 2**40)), max_size=40),
    st.integers(1, 8),
)
def test_latest_is_the_maximum_from_the_floor(pairs: list[tuple[int, int]], extra: int) -> None:
    """Sorted by account then value (a history's order), the scatter gives
    ``np.maximum.at`` from -1 — values below the floor included."""
    pairs.sort()
    n = 7 + extra
    acc = np.asarray([a for a, _ in pairs], dtype=np.int64)
    values = np.asarray([v for _, v in pairs], dtype=np.int64)
    expected = np.full(n, -1, np.int64)
    np.maximum.at(expected, acc, values)
    assert _equal(expected, latest(acc, values, n))


_ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Shanghai", "America/Havana"]
_FIRST = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp())
_LAST = int(dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp())


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(_ZONES),
    st.integers(_FIRST * US, _LAST * US),
    st.integers(0, 400 * DAY_US),
    st.integers(65, 300),
    st.randoms(use_true_random=False),
)
def test_local_day_with_one_offset_equals_the_lookup(
    name: str, start: int, span: int, count: int, rng: Any
) -> None:
    """Spans inside one offset period, across transitions and a microsecond
    either side of one: the same days as the per-instant lookup and as zoneinfo."""
    table = ZoneTable(zone(name), _FIRST - 86_400, _LAST + 86_400)
    end = min(start + span, _LAST * US)
    instants = np.sort(np.asarray([rng.randint(start, end) for _ in range(count)], dtype=np.int64))
    edges = table.starts_us[(table.starts_us > start) & (table.starts_us < end)]
    if len(edges):
        instants = np.sort(np.concatenate([instants, edges - 1, edges]))
    got = table.local_day(instants)
    assert _equal(reference._local_day(table, instants), got)
    tz = zone(name)
    for us in instants[:: max(1, len(instants) // 20)].tolist():
        moment = dt.datetime.fromtimestamp(us // US, dt.UTC).replace(microsecond=us % US).astimezone(tz)
        assert (moment.date() - dt.date(1970, 1, 1)).days == int(got[instants.tolist().index(us)])


_WORDS = ["phone", "sms", "email", "letter", "outbound", "inbound", "pigeon", ""]


def _column(values: list[str | None], cuts: list[int], encode: bool) -> pa.ChunkedArray:
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    chunks = [pa.array(values[a:b], pa.string()) for a, b in itertools.pairwise(bounds)]
    if encode:
        chunks = [c.dictionary_encode() for c in chunks]
        return pa.chunked_array(chunks, pa.dictionary(pa.int32(), pa.string()))
    return pa.chunked_array(chunks, pa.string())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([*_WORDS, None]), max_size=60),
    st.lists(st.integers(0, 60), max_size=4),
    st.booleans(),
)
def test_decoding_chunk_by_chunk_equals_the_originals(
    values: list[str | None], cuts: list[int], encode: bool
) -> None:
    """Codes, unknown words, masks, labels and strings of a column in several chunks equal the originals'."""
    column = _column(values, cuts, encode)
    vocabulary = ["phone", "sms", "email", "letter"]
    codes, bad = _codes(column, vocabulary)
    old_codes, old_bad = reference._codes(column, vocabulary)
    assert _equal(codes, old_codes) and _equal(bad, old_bad)
    assert _equal(_is(column, "outbound"), reference._codes(column, ["outbound"])[0] == 0)
    assert _equal(_labels(column), reference._labels(column))
    assert _equal(_strings(column), reference._strings(column))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(10**6), 10**6)), max_size=30))
def test_dates_and_instants_equal_the_originals(values: list[int | None]) -> None:
    """Days and instants (with nulls or without: the path without a fill) equal the originals'."""
    days = pa.chunked_array([pa.array(values, pa.int32()).cast(pa.date32())])
    assert all(_equal(a, b) for a, b in zip(_days(days), reference._days(days), strict=True))
    instants = pa.chunked_array([pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="UTC"))])
    assert all(_equal(a, b) for a, b in zip(_instants(instants), reference._instants(instants), strict=True))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.lists(st.sampled_from(["dispute", "hardship", "x"]), max_size=3)), max_size=20
    )
)
def test_sets_equal_the_originals(rows: list[list[str] | None]) -> None:
    """Set columns (null, empty, or all null: the path without encoding) equal the originals'."""
    column = pa.chunked_array([pa.array(rows, pa.list_(pa.string()))])
    assert reference._sets(column).tolist() == _sets(column).tolist()
