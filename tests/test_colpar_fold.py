"""The columnar fold batch by batch (issue 12): each batch folded on its own
into a part (in whichever process decided it) and the parts merged in batch
order give exactly what folding every batch straight into the run's tallies
gives — the same files byte for byte, and the same tallies down to each
dict's key order and each ``Decimal``'s exponent."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow")

import numpy as np
import pyarrow as pa

from escalation import ExperimentEngine
from escalation.backends.columnar import TableResult
from escalation.decision import ErrorRow
from escalation.portfolio._arms import ArmTallies
from escalation.portfolio._fold import Plan, Tallies, fold, fold_part, merge
from escalation.portfolio.results import PolicyInfo, SummaryBuilder
from escalation.portfolio.writer import DecisionWriter, decision_schema

from .conftest import ROOT

EXPERIMENT = ExperimentEngine.from_file(ROOT / "examples" / "experiment-lawyer-45.yaml")

_decision = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["act", "wait", "hold", "none"]),
        "action": st.sampled_from(["sms", "phone_call", "letter", None]),
        "channel": st.sampled_from(["sms", "phone", None]),
        "reason": st.sampled_from(["", 'why "so"', "因为"]),
        "blocked_guards": st.lists(st.sampled_from(["contact-hours", "frequency", "cooldown"]), max_size=2),
    }
)
_row = st.fixed_dictionaries(
    {
        "id": st.text("ab7-é", min_size=1, max_size=6),
        "error": st.booleans(),
        "units": st.integers(0, 10**9),
        "days": st.integers(-3, 400),
        "new": _decision,
        "old": _decision,
    }
)


def _result(rows: list[dict[str, Any]], baseline: bool, minor: int) -> TableResult:
    """The fields of a decided batch that the fold reads (error rows: null decision rows)."""
    tables = []
    for key in ("new", "old") if baseline else ("new",):
        data = [
            None
            if r["error"]
            else {
                "account_id": r["id"],
                "severity": 1,
                "hold": None,
                **r[key],
                "next_eligible_at": None,
                "policy_fingerprint": key,
            }
            for r in rows
        ]
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


def _tallies(
    folder: Path, fmt: str, baseline: bool, arms: bool, writer: type[DecisionWriter] = DecisionWriter
) -> Tallies:
    names = ("decisions", "baseline") if baseline else ("decisions",)
    info = PolicyInfo(id="p", version="1", fingerprint="f")
    return Tallies(
        [SummaryBuilder(info) for _ in names],
        {name: writer(folder / f"{name}.{fmt}", fmt) for name in names},  # type: ignore[arg-type]
        io.StringIO(), io.StringIO() if baseline else None, 3,
        arms=ArmTallies(EXPERIMENT.experiment, EXPERIMENT.champion.policy, EXPERIMENT.challenger.policy)
        if arms else None,
    )  # fmt: skip


def _state(tallies: Tallies) -> str:
    """Every tally in order, ``Decimal`` exponents included (``repr``), and every file."""
    for writer in tallies.writers.values():
        writer.close()
    files = {name: Path(w.path).read_bytes() for name, w in tallies.writers.items()}
    texts = [f.getvalue() for f in (tallies.error_file, tallies.changes_file) if isinstance(f, io.StringIO)]
    arms = tallies.arms
    arm_state = (
        [vars(b) for b in arms.builders.values()], arms.accounts, arms.transitions, arms.changed
    ) if arms is not None else None  # fmt: skip
    return repr((
        [vars(s) for s in tallies.summaries], tallies.transitions, tallies.changes, tallies.changed_days,
        tallies.accounts, tallies.decided, tallies.errors, tallies.changed, tallies.changed_balance,
        arm_state, files, texts,
    ))  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(_row, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=5),
    fmt=st.sampled_from(["jsonl", "parquet"]),
    baseline=st.booleans(),
    arms=st.booleans(),
    minor=st.sampled_from([0, 2, 3]),
)
def test_parts_merged_in_order_equal_folding_each_batch(
    rows: list[dict[str, Any]], cuts: list[int], fmt: str, baseline: bool, arms: bool, minor: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    """Folding each batch into the run and merging each batch's part give the same files and tallies."""
    arms = arms and baseline  # an experiment always has its champion as baseline
    bounds = sorted({0, len(rows), *(c for c in cuts if c <= len(rows))})
    batches = [rows[a:b] for a, b in itertools.pairwise(bounds)]
    direct = _tallies(tmp_path_factory.mktemp("direct"), fmt, baseline, arms)
    merged = _tallies(tmp_path_factory.mktemp("merged"), fmt, baseline, arms)
    plan = Plan(fmt, baseline, 3, EXPERIMENT.experiment if arms else None)
    counted: list[int] = []
    for batch in batches:
        fold(range(len(batch)), _result(batch, baseline, minor), direct, None)
        merge(fold_part(len(batch), _result(batch, baseline, minor), plan), merged, counted.append)
    assert [len(b) for b in batches] == counted
    assert _state(direct) == _state(merged)


def test_sums_keep_the_one_pass_exponents() -> None:
    """A part's balances add into the run as one pass would: ``0`` stays ``0``, cents stay cents."""
    rows = [{"id": "a", "error": False, "units": 0, "days": 3, "new": {"status": "none", "action": None,
             "channel": None, "reason": "", "blocked_guards": []}}]  # fmt: skip
    rows[0]["old"] = rows[0]["new"]
    plan = Plan(None, True, 3)
    tallies = Tallies(
        [SummaryBuilder(PolicyInfo(id="p", version="1", fingerprint="f")) for _ in range(2)],
        {},
        None,
        None,
        3,
    )
    merge(fold_part(1, _result(rows, True, 2), plan), tallies)
    assert "Decimal('0.00')" == repr(tallies.summaries[0].status["none"][1])
    assert "Decimal('0')" == repr(tallies.changed_balance)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "(wait)", None]), st.sampled_from(["x", "y"]), st.integers(0, 2**40)
        ),
        max_size=60,
    )
)
def test_grouping_equals_an_arrow_group_by(rows: list[tuple[str | None, str, int]]) -> None:
    """The fold's grouping (numpy over dictionary codes, ``_coded.combos``) gives an
    Arrow group-by's groups, sums and counts, groups in order of first appearance."""
    from escalation.portfolio._coded import codes_of, combos

    first = pa.array([r[0] for r in rows], pa.string())
    second = pa.array([r[1] for r in rows], pa.string())
    units = np.array([r[2] for r in rows], np.int64)
    table = pa.table({"a": first, "b": second, "u": units})
    expected = table.group_by(["a", "b"]).aggregate([("u", "sum"), ("u", "count")]).to_pylist()
    coded = [codes_of(first), codes_of(second)]
    holders, counts, sums = combos([(c.codes, len(c.values)) for c in coded], units)
    got = [
        {
            "a": coded[0].values[coded[0].codes[h]],
            "b": coded[1].values[coded[1].codes[h]],
            "u_sum": s,
            "u_count": c,
        }
        for h, c, s in zip(holders.tolist(), counts, sums, strict=True)
    ]
    assert sorted(expected, key=repr) == sorted(got, key=repr)
    assert [(r[0], r[1]) for r in dict.fromkeys((r[0], r[1]) for r in rows)] == [
        (g["a"], g["b"]) for g in got
    ]
