"""The dry-run's one-pass columnar fold (``escalation.portfolio._fold_batch``:
each column hashed once, every tally from one grouping, JSON lines from those
codes, change lines without ``json.dumps``) held equal to the fold it replaced
(``tests/_fold_reference.py``: a group-by per tally, decisions written row by
row through ``json.dumps``): the same files byte for byte and the same tallies
down to each dict's key order and each ``Decimal``'s exponent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow")

import numpy as np
import pyarrow as pa

from escalation.backends.columnar import TableResult
from escalation.decision import ErrorRow
from escalation.portfolio._coded import list_codes
from escalation.portfolio._fold import fold
from escalation.portfolio.writer import DecisionWriter, decision_schema

from . import _fold_reference as reference
from .test_colpar_fold import _state, _tallies

_AWKWARD = st.sampled_from(['a"b', "c\\d", "e\nf", "中文", "", "x"])
_decision = st.fixed_dictionaries(
    {
        "status": st.one_of(st.sampled_from(["act", "wait", "hold", "none", "offer"]), _AWKWARD),
        "action": st.one_of(st.sampled_from(["sms", "phone_call", "letter", None]), _AWKWARD),
        "channel": st.sampled_from(["sms", "phone", None, 'q"']),
        "severity": st.one_of(st.none(), st.integers(1, 5)),
        "reason": st.one_of(st.none(), st.sampled_from(["", 'why "so"', "因为"])),
        "next_eligible_at": st.sampled_from([None, "2026-11-24T08:00:00+08:00"]),
        "hold": st.sampled_from([None, "dispute", "h\\"]),
        "blocked_guards": st.one_of(
            st.none(), st.lists(st.sampled_from(["contact-hours", "frequency", "cooldown", 'g"']), max_size=3)
        ),
        "policy_fingerprint": st.sampled_from(["sha256:a", "sha256:b"]),
    }
)
_row = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text("ab7-é", min_size=1, max_size=6), _AWKWARD),
        "error": st.booleans(),
        "units": st.integers(-(10**9), 10**12),
        "days": st.integers(-3, 400),
        "new": _decision,
        "old": _decision,
    }
)


def _result(rows: list[dict[str, Any]], baseline: bool, minor: int) -> TableResult:
    """The fields of a decided batch that the fold reads (error rows: null decision rows)."""
    tables = []
    for key in ("new", "old") if baseline else ("new",):
        data = [None if r["error"] else {"account_id": r["id"], **r[key]} for r in rows]
        columns = {f.name: [None if d is None else d[f.name] for d in data] for f in decision_schema()}
        tables.append(pa.table(columns, schema=decision_schema()))
    errors = [
        ErrorRow(row=i, code="bad", message="m", account_id=r["id"]) if r["error"] else None
        for i, r in enumerate(rows)
    ]
    return TableResult(
        rows=[], ids=[], balances=[], days=[], decisions=[], errors=errors, tables=tables,
        decided=np.array([not r["error"] for r in rows], bool),
        balance_units=np.array([r["units"] for r in rows], np.int64),
        days_overdue=np.array([r["days"] for r in rows], np.int64), minor_units=minor,
    )  # fmt: skip


class _RowByRow(DecisionWriter):
    """The reference writer: JSON lines through ``json.dumps`` of each row."""

    def write_table(self, table: Any) -> None:
        if self.fmt != "jsonl":
            super().write_table(table)
            return
        for row in table.to_pylist():
            self.write(row)


def _both(batches: list[list[dict[str, Any]]], fmt: str, baseline: bool, arms: bool, minor: int,
          tmp: pytest.TempPathFactory) -> tuple[str, str]:  # fmt: skip
    fast = _tallies(tmp.mktemp("fast"), fmt, baseline, arms, DecisionWriter)
    slow = _tallies(tmp.mktemp("slow"), fmt, baseline, arms, _RowByRow)
    for batch in batches:
        fold(range(len(batch)), _result(batch, baseline, minor), fast, None)
        reference.fold(range(len(batch)), _result(batch, baseline, minor), slow, None)
    return _state(fast), _state(slow)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(_row, max_size=30), min_size=1, max_size=3),
    repeat=st.integers(1, 20),
    fmt=st.sampled_from(["jsonl", "parquet"]),
    baseline=st.booleans(),
    arms=st.booleans(),
    minor=st.sampled_from([0, 2, 3]),
)
def test_one_pass_fold_equals_the_reference_fold(
    batches: list[list[dict[str, Any]]], repeat: int, fmt: str, baseline: bool, arms: bool, minor: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    """Random batches (repeated rows: combinations met many times) folded both ways agree."""
    arms = arms and baseline  # an experiment always has its champion as baseline
    fast, slow = _both([b * repeat for b in batches], fmt, baseline, arms, minor, tmp_path_factory)
    assert fast == slow


def test_many_distinct_values_take_the_sorting_paths(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Statuses, actions and lists so varied that the combined codes outgrow a
    table (renumbered by sort) and the lists outgrow a number (numbered by
    tuples): still equal to the reference."""
    guards = [f"g{k}" for k in range(40)]
    rows = [
        {"id": f"A-{i}", "error": i % 17 == 0, "units": i * 7919 % 100_003, "days": i % 200,
         "new": {"status": ["act", f"s{i % 60}"][i % 2], "action": f"a{i % 70}", "channel": None,
                 "severity": i % 4 or None, "reason": f"r{i % 5}", "next_eligible_at": f"t{i % 90}",
                 "hold": None, "blocked_guards": [guards[(i * k) % 40] for k in range(i % 13)],
                 "policy_fingerprint": "f"},
         "old": {"status": ["act", f"s{i % 50}"][i % 3 == 0], "action": f"a{i % 40}", "channel": "c",
                 "severity": 2, "reason": None, "next_eligible_at": None, "hold": "h",
                 "blocked_guards": [], "policy_fingerprint": "f"}}
        for i in range(3000)
    ]  # fmt: skip
    for fmt in ("jsonl", "parquet"):
        fast, slow = _both([rows[:1700], rows[1700:]], fmt, True, True, 2, tmp_path_factory)
        assert fast == slow


def test_list_codes_number_equal_lists_alike() -> None:
    """Equal lists get equal codes and unequal lists unequal ones, by number and
    by tuple (lists too long to number), and each code's value is its list."""
    lists = [[], None, ["a"], ["a", "b"], ["b", "a"], ["a"], ["a", "b"], [], None, ["b"], ["a", "a"]]
    long = [[f"g{k % 41}" for k in range(i, i + 14)] for i in range(5)] * 2
    for data in (lists, long, lists + long):
        codes, items = list_codes(pa.array(data, pa.list_(pa.string())))
        assert [codes.values[c] for c in codes.codes.tolist()] == data
        assert len(set(codes.codes.tolist())) == len({repr(v) for v in data})
        flat = [g for v in data if v for g in v]
        assert [items.values[c] for c in items.codes.tolist()] == flat
