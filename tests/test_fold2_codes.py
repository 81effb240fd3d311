"""The codes ``decide_table`` hands the dry-run's fold with its decision tables
(``TableResult.codes``: the label columns' codes, so the fold does not hash
those string columns again) held against :func:`codes_of` of the columns
themselves, on generated accounts of every profile with fallback rows, rows
explained by the reference engine and error rows; and the fold given those
codes (or any other numbering of the same values) folding byte for byte as the
fold that hashes every column itself."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow")

import numpy as np

from escalation.backends.columnar import ColumnarPolicy, TableResult, decide_table
from escalation.backends.columnar._table import decide_reference
from escalation.portfolio._coded import Codes, codes_of, interleaved
from escalation.portfolio._fold import fold
from escalation.portfolio.arrow import to_batch
from escalation.portfolio.generate import PROFILES, generate

from .test_colfold_equal import _result, _row
from .test_colpar_fold import _state, _tallies
from .test_columnar import _densify
from .test_reasons_changed import _policies

NOW = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
HANDED = ("status", "action", "channel", "next_eligible_at", "hold", "policy_fingerprint")


def _same_column(handed: Codes, column: Any) -> None:
    """``handed`` numbers ``column`` as :func:`codes_of` does, up to the numbering:
    each row's value, and one code per value."""
    assert len(set(handed.values)) == len(handed.values)
    assert [handed.values[c] for c in handed.codes.tolist()] == column.to_pylist()
    hashed = codes_of(column)
    assert [hashed.values[c] for c in hashed.codes.tolist()] == column.to_pylist()


def _batch(profile: str) -> Any:
    """600 generated accounts of ``profile`` (histories densified) with bad records among them."""
    records: list[Any] = _densify(list(generate(600, 5, profile, NOW)))
    good = records[0]
    records[7] = {"id": "X"}  # (no balance, no dates: the reference engine refuses it)
    records[300] = {**good, "id": "BAD-1", "flags": ["Dispute"]}
    records[-1] = {"__error__": {"row": 600, "code": "invalid_json", "message": "not JSON"}}
    return to_batch(list(enumerate(records, 1)))


@pytest.fixture(scope="module", params=sorted(PROFILES))
def decided(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[TableResult]:
    """A profile's batch decided under its policy and a variant, reasons of changed
    rows explained; and the same batch decided row by row by the reference engine."""
    policies = [ColumnarPolicy(p) for p in _policies(request.param, tmp_path_factory.mktemp("variant"))]
    batch = _batch(request.param)
    return [
        decide_table(batch, policies, now=NOW, reasons="changed", dicts=False),
        decide_reference(batch, policies, now=NOW, reasons="changed"),
    ]


def test_handed_codes_are_the_columns_codes(decided: list[TableResult]) -> None:
    """Every handed column, in every table, rows of each kind among them."""
    vectorised, reference = decided
    assert vectorised.fallback > 0 and vectorised.reasons_rendered > 0 and vectorised.vectorised > 0
    assert sum(e is not None for e in vectorised.errors) >= 3
    assert reference.vectorised == 0
    for res in decided:
        assert len(res.codes) == len(res.tables) == 2
        for table, codes in zip(res.tables, res.codes, strict=True):
            assert sorted(codes) == sorted(HANDED)
            for name in HANDED:
                _same_column(codes[name], table.column(name))


@pytest.mark.parametrize("arms", [False, True])
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_fold_with_handed_codes_folds_alike(
    decided: list[TableResult], fmt: str, arms: bool, tmp_path: Path
) -> None:
    """The fold reading the handed codes writes and tallies what it does hashing every column."""
    for k, res in enumerate(decided):
        states = []
        for name, codes in (("handed", res.codes), ("hashed", [])):
            folder = tmp_path / f"{k}-{name}"
            folder.mkdir()
            tallies = _tallies(folder, fmt, True, arms)
            fold(range(len(res.errors)), _with_codes(res, codes), tallies, None)
            states.append(_state(tallies))
        assert states[0] == states[1]


def _with_codes(res: TableResult, codes: list[dict[str, Any]]) -> TableResult:
    return TableResult(
        rows=[], ids=[], balances=[], days=[], decisions=[], errors=res.errors, tables=res.tables,
        codes=codes, decided=res.decided, balance_units=res.balance_units,
        days_overdue=res.days_overdue, minor_units=res.minor_units,
    )  # fmt: skip


def _renumbered(column: Any) -> Codes:
    """A column's codes numbered in reverse order of first appearance, with a value no row holds."""
    hashed = codes_of(column)
    values = ["(unused)", *reversed(hashed.values)]
    last = len(hashed.values)
    return Codes(np.asarray([last - c for c in hashed.codes.tolist()], np.int64), values)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(_row, max_size=30),
    fmt=st.sampled_from(["jsonl", "parquet"]),
    baseline=st.booleans(),
    arms=st.booleans(),
)
def test_fold_takes_any_numbering(rows: list[dict[str, Any]], fmt: str, baseline: bool, arms: bool,
                                  tmp_path_factory: pytest.TempPathFactory) -> None:  # fmt: skip
    """Handed codes in another numbering than :func:`codes_of`'s (and values no row
    holds), error rows among the rows: the same files and tallies."""
    arms = arms and baseline
    res = _result(rows, baseline, 2)
    states = []
    for codes in ([{c: _renumbered(t.column(c)) for c in HANDED} for t in res.tables], []):
        folder = tmp_path_factory.mktemp("numbering")
        tallies = _tallies(folder, fmt, baseline, arms)
        fold(range(len(rows)), _with_codes(res, codes), tallies, None)
        states.append(_state(tallies))
    assert states[0] == states[1]


def test_interleaved_takes_each_row_from_its_table() -> None:
    """Two columns' codes end to end, rows picked: each picked row's value, one code per value."""
    first = Codes(np.array([0, 1, 0, 2]), ["a", "b", None])
    second = Codes(np.array([1, 0, 0, 1]), [None, "c"])
    joined = interleaved(first, second, np.array([0, 5, 2, 7, 4]))
    assert [joined.values[c] for c in joined.codes.tolist()] == ["a", None, "a", "c", "c"]
    assert len(set(joined.values)) == len(joined.values)
