"""The columnar facts stage's faster kernels (issue 12, fifth round) against
the direct computation or the functions they stand in for, on drawn inputs:
event columns decoded from the Arrow buffers (sliced chunks, nulls,
dictionary or plain) vs ``_column``'s decoders; the (tier, account) grids of
``tier_stats`` (in and out of the cycle, counting or not, instants before
1970, equal instants) vs a loop over the events; the events of some accounts
by binary search; the contact counts of both windows from one ``bincount``;
the other zones numbered at once vs ``other_zones``."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

pytest.importorskip("pyarrow")

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.backends.columnar import _decode as decode
from escalation.backends.columnar._column import _money, _sets
from escalation.backends.columnar._counts import contact_columns
from escalation.backends.columnar._history import events_of, tier_stats
from escalation.backends.columnar._multizone import other_zones, other_zones_at_once
from escalation.backends.columnar._zones import DAY_US

from ._column_reference import _codes, _is, _labels


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()


_WORDS = ["phone", "sms", "email", "letter", "outbound", "inbound", "pigeon", ""]


def _chunked(
    values: list[Any], cuts: list[int], typ: pa.DataType, encode: bool, lead: int
) -> pa.ChunkedArray:
    """``values`` in chunks cut at ``cuts``, each a slice (offset ``lead``) of a longer array."""
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    chunks = []
    for a, b in itertools.pairwise(bounds):
        part = pa.array([values[a]] * lead + values[a:b], typ).slice(lead)
        chunks.append(part.dictionary_encode() if encode else part)
    if not chunks:
        chunks = [pa.array([], typ).dictionary_encode() if encode else pa.array([], typ)]
    return pa.chunked_array(chunks)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([*_WORDS, None]), max_size=50),
    st.lists(st.integers(0, 50), max_size=4),
    st.booleans(),
    st.integers(0, 3),
)
def test_decoding_from_the_buffers_equals_the_decoders(
    values: list[str | None], cuts: list[int], encode: bool, lead: int
) -> None:
    """Codes and unknown words, one word's mask, labels and null masks of sliced chunks."""
    column = _chunked(values, cuts, pa.string(), encode, lead)
    vocabulary = ["phone", "sms", "email", "letter"]
    got, got_bad = decode.codes(column, vocabulary)
    want, want_bad = _codes(column, vocabulary)
    assert _equal(got, want) and _equal(got_bad, want_bad)
    assert _equal(decode.is_word(column, "outbound"), _is(column, "outbound"))
    assert _equal(decode.labels(column), _labels(column))
    assert _equal(decode.nulls(column), np.asarray(column.is_null(), dtype=bool))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.booleans()), max_size=40),
    st.lists(st.integers(0, 40), max_size=3),
    st.integers(0, 9),
)
def test_booleans_and_amounts_from_the_buffers(values: list[bool | None], cuts: list[int], lead: int) -> None:
    """``fill_null(False)`` of a sliced boolean column; amounts taken at positions
    (an all-null column without a take)."""
    column = _chunked(values, cuts, pa.bool_(), False, lead)
    assert _equal(decode.true_values(column), np.asarray(column.fill_null(False), dtype=bool))
    amounts = pa.chunked_array([pa.array([None if v is None else int(v) * 7 for v in values], pa.int64())])
    money = amounts.cast(pa.decimal128(38, 4))
    at = np.flatnonzero(np.asarray([v is not None and v for v in values], dtype=bool))
    for col in (money, pa.chunked_array([pa.nulls(len(values), pa.decimal128(38, 4))])):
        got = decode.money_at(col, at)
        want = _money(col.take(pa.array(at, pa.int64())))
        assert all(_equal(a, b) for a, b in zip(got, want, strict=True))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.lists(st.sampled_from(["dispute", "hardship", "x", "", "\x1f"]), max_size=3)),
        max_size=20,
    ),
    st.booleans(),
)
def test_sparse_sets_equal_the_sets(rows: list[list[str] | None], sliced: bool) -> None:
    arr = pa.array([None, *rows] if sliced else rows, pa.list_(pa.string()))
    column = pa.chunked_array([arr.slice(1) if sliced else arr])
    assert decode.sets(column).tolist() == _sets(column).tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["A", "B", "C"]), max_size=8),
    st.data(),
)
def test_other_zones_at_once_equal_the_loop(own: list[str], data: st.DataObject) -> None:
    names = np.asarray(own, dtype=object)
    zone = st.sampled_from(["A", "B", "C", "D", "", None])
    rows = [data.draw(st.one_of(st.none(), st.lists(zone, max_size=4))) for _ in own]
    column = pa.chunked_array([pa.array(rows, pa.list_(pa.string()))])
    want, (got, multi) = other_zones(names, column), other_zones_at_once(names, column)
    assert len(want) == len(got) and all(a.tolist() == b.tolist() for a, b in zip(want, got, strict=True))
    several = np.logical_or.reduce([s != None for s in want]) if want else np.zeros(len(own), bool)  # noqa: E711
    assert _equal(multi, several)


@st.composite
def _histories(draw: st.DrawFn) -> dict[str, Any]:
    """Events sorted by account then instant, with each account's cycle start."""
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 4))
    outcomes = 5
    rows = []
    for a in range(n):
        for _ in range(draw(st.integers(0, 7))):
            instant = draw(st.sampled_from([-5, -1, 0, 3, 3, 10, 20, 20, 35]))  # ties, before 1970
            rows.append((a, instant, draw(st.integers(-1, k - 1)), draw(st.integers(-1, outcomes - 1)),
                         draw(st.booleans())))  # fmt: skip
    rows.sort(key=lambda r: (r[0], r[1]))
    cycle = np.asarray([draw(st.sampled_from([-10, -3, 0, 4, 15, 40])) for _ in range(n)], np.int64)
    today = np.asarray([draw(st.sampled_from([-10, 3, 20, 36])) for _ in range(n)], np.int64)
    counts = np.asarray(
        [[draw(st.booleans()) for _ in range(outcomes + 1)] for _ in range(k)], dtype=bool
    ).reshape(k, outcomes + 1)
    if draw(st.booleans()):  # mostly counting: the path that starts from the cycle's figures
        counts[:, :] = True
        counts[0, draw(st.integers(0, outcomes))] = False
    return {"n": n, "k": k, "rows": rows, "cycle": cycle, "today": today, "counts": counts}


@settings(max_examples=400, deadline=None)
@given(_histories())
def test_tier_stats_equal_the_loop(h: dict[str, Any]) -> None:
    n, k, rows, cycle_us, today_us, counts = h["n"], h["k"], h["rows"], h["cycle"], h["today"], h["counts"]
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    ev_acc, ev_ts, action, outcome = (np.asarray(c, dtype=np.int64) for c in cols[:4])
    outbound = np.asarray(cols[4], dtype=bool)
    in_cycle = ev_ts >= cycle_us[ev_acc]
    stats = tier_stats(n, counts, (ev_acc, ev_ts, action, outcome, outbound, in_cycle), today_us, cycle_us)
    tried, done = np.zeros((k, n), np.int64), np.zeros((k, n), np.int64)
    last_in, last_counted, ever = (np.full((k, n), -1, np.int64) for _ in range(3))
    today = np.zeros(n, np.int64)
    for a, ts, t, o, out in rows:
        if not out or t < 0:
            continue
        ever[t, a] = max(ever[t, a], ts)
        today[a] += ts >= today_us[a]
        if ts >= cycle_us[a]:
            tried[t, a] += 1
            last_in[t, a] = max(last_in[t, a], ts)
            if counts[t, o + 1]:
                done[t, a] += 1
                last_counted[t, a] = max(last_counted[t, a], ts)
    assert _equal(stats.tried, tried) and _equal(stats.done, done)
    assert _equal(stats.last_in_cycle, last_in) and _equal(stats.last_counted, last_counted)
    assert _equal(stats.last_ever, ever) and _equal(stats.today, today)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=40), st.sets(st.integers(0, 11)))
def test_events_of_accounts_by_binary_search(accounts: list[int], rows: set[int]) -> None:
    ev_acc = np.asarray(sorted(accounts), dtype=np.int64)
    chosen = np.asarray(sorted(rows), dtype=np.int64)
    assert _equal(events_of(ev_acc, chosen), np.flatnonzero(np.isin(ev_acc, chosen)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4), st.integers(0, 40), st.integers(-1, 3), st.integers(-1, 3), st.booleans()
        ),
        max_size=40,
    )
)
def test_contact_counts_equal_the_loop(events: list[tuple[int, int, int, int, bool]]) -> None:
    """Both windows' edges (an event exactly 7 and 30 days before now counts in neither)."""
    n, now = 5, 40 * DAY_US
    events.sort()
    cols = list(zip(*events, strict=True)) if events else [[]] * 5
    ev_acc = np.asarray(cols[0], dtype=np.int64)
    ev_ts = np.asarray(cols[1], dtype=np.int64) * DAY_US
    channel, outcome = (np.asarray(c, dtype=np.int64) for c in cols[2:4])
    outbound = np.asarray(cols[4], dtype=bool)
    names = ["phone", "sms", "email", "letter"]
    got = contact_columns(n, now, (ev_acc, ev_ts, channel, outcome, outbound), names, 2)
    c30, c7, talks = np.zeros((4, n), np.int64), np.zeros((4, n), np.int64), np.zeros(n, np.int64)
    for a, day, c, o, out in events:
        at = day * DAY_US
        if out and c >= 0 and at > now - 30 * DAY_US:
            c30[c, a] += 1
            c7[c, a] += at > now - 7 * DAY_US
        talks[a] += o == 2 and at > now - 30 * DAY_US
    for c, name in enumerate(names):
        assert _equal(got[f"contacts_30d.{name}"].values, c30[c])
        assert _equal(got[f"contacts_7d.{name}"].values, c7[c])
    assert _equal(got["conversations_30d"].values, talks)
