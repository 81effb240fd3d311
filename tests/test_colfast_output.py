"""The columnar dry-run's fast paths held equal to their reference: JSON lines
from an Arrow table (each distinct rest-of-line rendered once) against
``json.dumps`` of every row, and a batch decided without keeping the validated
accounts against the same batch decided keeping them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation.backends.columnar import ColumnarPolicy, decide_table  # noqa: E402
from escalation.policy import load_policy  # noqa: E402
from escalation.portfolio.arrow import to_batch  # noqa: E402
from escalation.portfolio.generate import generate  # noqa: E402
from escalation.portfolio.writer import DECISION_FIELDS, decision_schema, jsonl_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# values JSON must escape or keep as they are: quotes, backslashes, control
# characters, line separators, non-ASCII, the empty string
_AWKWARD = st.sampled_from(['a"b', "c\\d", "e\nf\tg", "\x00\x1f", "中文 \u2028", "", "x", "\x7f", "é"])
_FEW = st.one_of(st.none(), st.sampled_from(["act", "wait", "none", "hold", "offer"]), _AWKWARD)


def _row() -> st.SearchStrategy[dict[str, Any]]:
    numbered = st.from_regex(r"CN-[0-9]{1,7}", fullmatch=True)
    ident = st.one_of(st.text(min_size=1, max_size=12), _AWKWARD, numbered)
    return st.fixed_dictionaries(
        {
            "account_id": ident,
            "status": _FEW,
            "action": _FEW,
            "channel": _FEW,
            "severity": st.one_of(st.none(), st.integers(-3, 40)),
            "reason": st.one_of(st.none(), st.text(max_size=20), _AWKWARD),
            "next_eligible_at": st.one_of(st.none(), st.sampled_from(["2026-11-24T08:00:00+08:00", 'q"'])),
            "hold": _FEW,
            "blocked_guards": st.lists(st.one_of(_AWKWARD, st.sampled_from(["g-1", "g-2"])), max_size=3),
            "policy_fingerprint": st.sampled_from(["sha256:f", "sha256:e"]),
        }
    )


def _expected(rows: list[dict[str, Any]]) -> bytes:
    """What ``DecisionWriter.write`` writes for each row (its fields in the
    order ``decision_row`` builds them)."""
    ordered = [{name: r[name] for name in DECISION_FIELDS} for r in rows]
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in ordered).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_row(), min_size=1, max_size=40), repeat=st.integers(1, 30), cut=st.integers(0, 5))
def test_jsonl_bytes_is_json_dumps_of_each_row(rows: list[dict[str, Any]], repeat: int, cut: int) -> None:
    """Repeated rows (a combination met many times), a sliced table and a
    table in several chunks: byte for byte ``json.dumps`` of each row."""
    many = rows * repeat
    table = pa.Table.from_pylist(many, schema=decision_schema())
    assert jsonl_bytes(table) == _expected(many)
    cut = min(cut, len(many) - 1)
    assert jsonl_bytes(table.slice(cut)) == _expected(many[cut:])
    chunked = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    assert jsonl_bytes(chunked) == _expected(many)


def test_jsonl_bytes_with_many_distinct_combinations() -> None:
    """Every row its own combination of fields (reasons and instants all
    distinct): the combinations numbered by sort, not by table, still agree."""
    rows = [
        {"account_id": f"A-{i}", "status": ["act", "wait", None][i % 3], "action": f"a{i % 7}",
         "channel": None, "severity": i % 11, "reason": f"reason {i} \"q\"", "next_eligible_at": f"t{i}",
         "hold": ["h", None][i % 2], "blocked_guards": [f"g{i % 5}"] * (i % 3), "policy_fingerprint": "f"}
        for i in range(5000)
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=decision_schema())
    assert list(table.column_names) == list(DECISION_FIELDS)
    assert jsonl_bytes(table) == _expected(rows)


def test_decide_table_without_accounts_decides_alike() -> None:
    """``ColumnarPolicy(..., accounts=False)`` (the dry-run) skips validating
    the rows at status ``offer``: the same decision tables, rows decided,
    counts and fallbacks as keeping them, and those rows are there."""
    now = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
    base = load_policy(ROOT / "policies" / "consumer-credit-cn.yaml")
    records = list(generate(3000, 7, "cn-card", now))
    batch = to_batch(list(enumerate(records, start=1)), "generated")
    results = [
        decide_table(batch, [ColumnarPolicy(base, accounts=keep)], now=now, reasons="none", dicts=False)
        for keep in (True, False)
    ]
    kept, skipped = results
    offered = np.asarray(kept.tables[0].column("status").to_pylist(), dtype=object) == "offer"
    assert offered.sum() >= 5, "no rows at status `offer`: the test would prove nothing"
    assert len(kept.accounts) >= offered.sum() and not skipped.accounts
    assert kept.tables[0].equals(skipped.tables[0])
    assert (kept.decided == skipped.decided).all()
    assert (kept.vectorised, kept.fallback, kept.fallback_reasons) == (
        skipped.vectorised,
        skipped.fallback,
        skipped.fallback_reasons,
    )
