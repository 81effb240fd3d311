"""escalation.arrow.decide_batches: Arrow record batches in, one output row
per input row, equal to the local dry-run; unusable column types refused once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")

import escalation  # noqa: E402
from escalation import UsageError  # noqa: E402
from escalation.arrow import check_schema, decide_batches, output_schema  # noqa: E402

from ._scaleout import (  # noqa: E402
    AT,
    CN_POLICY,
    candidate_policy,
    comparable_errors,
    local_results,
    split_rows,
    typed_table,
    write_portfolio,
)


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("book")
    path = folder / "book.jsonl"
    clean = write_portfolio(path, 1500, every=40)
    candidate = candidate_policy(folder)
    escalation.dry_run(candidate, path, at=AT, baseline=CN_POLICY, out=folder / "local")
    return {
        "path": path,
        "candidate": candidate,
        "clean": clean,
        "local": local_results(folder / "local"),
        "lines": path.read_text(encoding="utf-8").splitlines(),
    }


def _rows(batches: Any) -> list[dict[str, Any]]:
    return [row for batch in batches for row in batch.to_pylist()]


def test_json_records_equal_the_local_dry_run(book: dict[str, Any]) -> None:
    table = pa.table({"record": book["lines"]})
    out = list(
        decide_batches(
            table.to_batches(max_chunksize=400),
            book["candidate"],
            at=AT,
            baseline=CN_POLICY,
            json_column="record",
        )
    )
    assert all(b.schema.equals(output_schema(True)) for b in out)
    rows = _rows(out)
    assert [r["row"] for r in rows] == list(range(1, len(book["lines"]) + 1))  # one row per input row
    decisions, baseline, errors = split_rows(rows, baseline=True)
    local_decisions, local_baseline, local_errors = book["local"]
    assert len(local_errors) >= 30 and len(local_decisions) + len(local_errors) == len(book["lines"])
    assert decisions == local_decisions
    assert baseline == local_baseline
    assert comparable_errors(errors) == comparable_errors(local_errors)
    assert any(d["reason"] for d in decisions.values())  # changed rows carry their reasons


def test_typed_record_columns_equal_the_local_dry_run(book: dict[str, Any]) -> None:
    table = typed_table(book["clean"])
    rows = _rows(decide_batches(table.to_batches(max_chunksize=500), book["candidate"], at=AT))
    decisions, _, errors = split_rows(rows, baseline=False)
    local = book["local"][0]
    assert not errors
    assert len(decisions) == len(book["clean"])
    keys = ("status", "action", "channel", "severity", "next_eligible_at", "hold", "blocked_guards")
    for ident, row in decisions.items():
        assert {k: row[k] for k in keys} == {k: local[ident][k] for k in keys}, ident
    assert [r["row"] for r in rows] == [number for number, _ in book["clean"]]  # from the `row` column


def test_float_money_is_refused_once_with_the_cast() -> None:
    table = pa.table({"id": ["A-1", "A-2"], "balance": [10.5, 0.1 + 0.2], "amount_overdue": [1.0, 0.1]})
    with pytest.raises(UsageError) as info:
        list(decide_batches(table, CN_POLICY, at=AT))
    message = str(info.value)
    assert "column `balance` is double" in message and "column `amount_overdue` is double" in message
    assert "cast('decimal(38,4)')" in message
    assert message.count("\n") == 2  # one line per column, not one error per row


def test_zone_less_timestamps_are_refused_with_the_cast() -> None:
    event = pa.struct([("at", pa.timestamp("us")), ("action", pa.string())])
    schema = pa.schema([("id", pa.string()), ("history", pa.list_(event))])
    with pytest.raises(UsageError, match=r"column `history\[\]\.at` is a timestamp without a time zone"):
        check_schema(schema)
    with pytest.raises(UsageError, match="TIMESTAMP_NTZ"):
        check_schema(pa.schema([("id", pa.string()), ("validation_notice_sent_at", pa.timestamp("us"))]))
    check_schema(pa.schema([("id", pa.string()), ("at", pa.timestamp("us", tz="Asia/Shanghai"))]))


def test_other_schema_problems() -> None:
    with pytest.raises(UsageError, match="no column `id`"):
        check_schema(pa.schema([("balance", pa.decimal128(38, 4))]))
    with pytest.raises(UsageError, match="must be text"):
        check_schema(pa.schema([("record", pa.int64())]), json_column="record")
    with pytest.raises(UsageError, match="no column `record`"):
        check_schema(pa.schema([("value", pa.string())]), json_column="record")


def test_nulls_are_absent_fields_and_rows_are_numbered(book: dict[str, Any]) -> None:
    first = typed_table(book["clean"][:3]).drop_columns(["row"])
    empty = first.slice(0, 0)
    rows = _rows(decide_batches([*empty.to_batches(), *first.to_batches()], CN_POLICY, at=AT, first_row=10))
    assert [r["row"] for r in rows] == [10, 11, 12]
    assert all(r["error_code"] is None for r in rows)  # null promise_to_pay etc. are absent, not errors


def test_a_bad_cell_is_an_error_row_not_a_stop() -> None:
    table = pa.table(
        {
            "id": ["A-1", "A-2"],
            "currency": ["CNY", "CNY"],
            "amount_overdue": [Decimal("1.00"), Decimal("5.00")],
            "balance": [Decimal("0.50"), Decimal("9.00")],
            "overdue_since": [dt.date(2026, 11, 1), dt.date(2026, 11, 1)],
            "timezone": ["Asia/Shanghai", "Asia/Shanghai"],
        }
    )
    rows = _rows(decide_batches(table, CN_POLICY, at=AT, reasons="all"))
    assert [r["error_code"] for r in rows] == ["invalid-record", None]
    assert "exceeds" in rows[0]["error_message"] and rows[0]["account_id"] == "A-1"
    assert rows[1]["status"] in {"act", "wait", "none", "hold"} and rows[1]["reason"]


def test_policy_by_path(tmp_path: Path) -> None:
    table = pa.table({"record": ["not json"]})
    rows = _rows(decide_batches(table, str(CN_POLICY), at=AT, json_column="record", source="s"))
    assert (rows[0]["error_code"], rows[0]["source"]) == ("invalid-json", "s")


def test_a_batch_the_columnar_path_cannot_take_is_decided_row_by_row(
    book: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import escalation.backends.columnar as columnar

    table = pa.table({"record": book["lines"][:300]})
    args = {"at": AT, "baseline": CN_POLICY, "json_column": "record"}
    expected = _rows(decide_batches(table, book["candidate"], **args))

    def broken(*_: Any, **__: Any) -> Any:
        raise ValueError("a vectorised-path bug")

    monkeypatch.setattr(columnar, "decide_table", broken)
    assert _rows(decide_batches(table, book["candidate"], **args)) == expected


def test_decide_typed_takes_the_typed_layout_and_counts_paths(book: dict[str, Any]) -> None:
    from escalation.arrow import decide_typed
    from escalation.backends.columnar import ColumnarPolicy
    from escalation.portfolio.arrow import to_batch

    pairs = [(row, record) for row, record in book["clean"][:400]]
    policies = [
        ColumnarPolicy(escalation.load_policy(book["candidate"])),
        ColumnarPolicy(escalation.load_policy(CN_POLICY)),
    ]
    stats: dict[str, int] = {}
    out = decide_typed(to_batch(pairs, "typed"), policies, at=AT, stats=stats)
    assert stats["vectorised"] + stats["fallback"] >= 400 and stats["vectorised"] > 0
    decisions, baseline, errors = split_rows(out.to_pylist(), baseline=True)
    assert not errors
    assert {k: book["local"][0][k] for k in decisions} == decisions
    assert {k: book["local"][1][k] for k in baseline} == baseline
