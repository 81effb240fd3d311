"""Changed rows' reasons in a columnar dry-run (``--reasons changed``) against
the reference: the output rows the explainer makes (record validated once,
facts derived once for policies with equal facts inputs, the ladder asked for
the output row alone) equal ``decision_row(Engine.decide(...))`` on generated
accounts of every profile; the records rebuilt from the typed layout column by
column equal those rebuilt row by row (:func:`record_of`)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")

from escalation import Engine  # noqa: E402
from escalation.backends.columnar import ColumnarPolicy, decide_table  # noqa: E402
from escalation.backends.columnar._explain import Explainer  # noqa: E402
from escalation.policy import Policy, load_policy  # noqa: E402
from escalation.portfolio._typed_records import _iso_instants  # noqa: E402
from escalation.portfolio.arrow import EVENTS, TypedBatch, record_of, records_of, to_batch  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402

from ._explainer_checks import explained_rows, reference_rows  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")


def _later(text: str) -> str:
    """Every ``days_overdue >= N`` of a policy one day later (conditions only)."""
    return re.sub(r"days_overdue >= (\d+)", lambda m: f"days_overdue >= {int(m[1]) + 1}", text)


def _policies(profile: str, tmp_path: Path) -> tuple[Policy, Policy]:
    """The profile's policy and a variant differing in its thresholds alone."""
    path = ROOT / PROFILES[profile].policy
    variant = tmp_path / path.name
    variant.write_text(_later(path.read_text()))
    return load_policy(variant), load_policy(path)


def _spoiled(made: Iterable[dict[str, Any]]) -> list[object]:
    """Some records the engine refuses among them (each reference error too)."""
    records = list(made)
    out: list[object] = list(records)
    out[3] = {**records[3], "currency": "XXX"}
    out[5] = {**records[5], "flags": ["no-such-flag"]}
    out[7] = "not a record"
    return out


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_rows_equal_decide_on_generated_accounts(profile: str, tmp_path: Path) -> None:
    """Candidate and baseline differing in thresholds (facts shared), the same
    policy twice, and the other order: every output row, reason included, and
    every error equal the reference engine's."""
    later, base = _policies(profile, tmp_path)
    records = _spoiled(generate(300, 11, profile, NOW))
    for pair in ([later, base], [base, base], [base, later]):
        engines = [Engine(p) for p in pair]
        explainer = Explainer(engines, NOW)
        assert explainer.facts_of == [0, 0]  # the facts are derived once
        for record in records:
            assert explained_rows(explainer, record) == reference_rows(engines, record)


def test_policies_with_other_facts_inputs_derive_their_own(tmp_path: Path) -> None:
    """A baseline whose promise grace and limitation period differ (its facts
    differ: ``time_barred``) derives its own facts; one in another time zone
    (its record checks differ) decides itself."""
    path = ROOT / PROFILES["cn-card"].policy
    text = path.read_text()
    assert "grace: 3d                 # payments" in text
    graced = tmp_path / "graced.yaml"  # (and later thresholds: some decisions differ)
    graced.write_text(
        _later(text)
        .replace("grace: 3d                 # payments", "grace: 9d  # payments")
        .replace("    years: 3\n", "    years: 1\n", 1)
    )
    zoned = tmp_path / "zoned.yaml"
    zoned.write_text(_later(text).replace("timezone: Asia/Shanghai", "timezone: Asia/Tokyo", 1))
    base, other, away = load_policy(path), load_policy(graced), load_policy(zoned)
    records = _spoiled(generate(300, 12, "cn-card", NOW))
    for pair, facts_of, same in (
        ([base, other], [0, 1], [True, True]),
        ([base, away], [0, 1], [True, False]),
    ):
        engines = [Engine(p) for p in pair]
        explainer = Explainer(engines, NOW)
        assert (explainer.facts_of, explainer.same) == (facts_of, same)
        differ = 0
        for record in records:
            want = reference_rows(engines, record)
            assert explained_rows(explainer, record) == want
            differ += not isinstance(want, str) and want[0]["reason"] != want[1]["reason"]
        assert differ > 0  # the policies do decide some accounts differently


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_changed_rows_of_a_columnar_batch_carry_the_reference_rows(profile: str, tmp_path: Path) -> None:
    """``decide_table(..., reasons="changed")``: each changed row's output rows
    under both policies are the reference engine's, reasons included."""
    later, base = _policies(profile, tmp_path)
    records = list(generate(400, 13, profile, NOW))
    result = decide_table(
        to_batch(list(enumerate(records, 1))),
        [ColumnarPolicy(later), ColumnarPolicy(base)],
        now=NOW,
        reasons="changed",
    )
    engines = [Engine(later), Engine(base)]
    explained = 0
    for i, record in enumerate(records):
        rows = [result.decisions[0][i], result.decisions[1][i]]
        if rows[0] is None or rows[0]["reason"] is None:
            continue
        explained += 1
        want = reference_rows(engines, record)
        assert rows == want
    assert explained >= result.reasons_rendered > 0


def _row_by_row(batch: TypedBatch, indices: list[int]) -> list[object]:
    """The records rebuilt through :func:`record_of` from Arrow's row dicts."""
    rows = batch.accounts.to_pylist()
    history: dict[int, list[dict[str, Any]]] = {}
    for event in batch.events.to_pylist():
        history.setdefault(event["account"], []).append(event)
    return [record_of(rows[i], history.get(i, [])) for i in indices]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_records_equal_those_rebuilt_row_by_row(profile: str) -> None:
    records: list[Any] = list(generate(200, 14, profile, NOW))
    records[4] = {"id": "raw", "unknown": 1}  # travels raw
    batch = to_batch(list(enumerate(records, 1)))
    indices = [0, 4, 5, 17, *range(40, 200, 3)]
    got, want = records_of(batch, indices), _row_by_row(batch, indices)
    assert json.dumps(got) == json.dumps(want)  # key order too


_UTC = dt.UTC
_TWO_ACCOUNTS = to_batch([(1, next(generate(1, 15, "cn-card", NOW)))] * 2).accounts
_INSTANTS = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2199, 12, 31), timezones=st.just(_UTC))


@settings(max_examples=60, deadline=None)
@given(
    at=st.lists(_INSTANTS, min_size=1, max_size=12),
    consent=st.lists(st.none() | _INSTANTS, min_size=12, max_size=12),
    texts=st.lists(st.none() | st.sampled_from(["sms", "x", "一"]), min_size=12, max_size=12),
    flags=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_event_records_equal_row_by_row_s(
    at: list[dt.datetime], consent: list[dt.datetime | None], texts: list[str | None], flags: list[bool]
) -> None:
    """Drawn events (instants 1900–2199 with or without microseconds, nulls,
    text in every optional column): the same event records either way."""
    n = len(at)
    events = pa.Table.from_pylist(
        [
            {
                "account": k % 2,
                "at": at[k],
                **{name: texts[(k + j) % 12] for j, name in enumerate(EVENTS.names[2:7])},
                "consent_until": consent[k],
                "misdirected": flags[k],
                "amount": None,
                "offer": texts[(k + 5) % 12],
                "actor": texts[(k + 6) % 12],
            }
            for k in range(n)
        ],
        schema=EVENTS,
    )
    batch = TypedBatch(_TWO_ACCOUNTS, events)
    assert json.dumps(records_of(batch, [0, 1])) == json.dumps(_row_by_row(batch, [0, 1]))
    column = events.column("consent_until")
    assert _iso_instants(column) == [c.isoformat() if c is not None else None for c in column.to_pylist()]


def test_an_evaluation_refused_while_explaining_sends_the_batch_to_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference engine refusing to evaluate a changed row while its reasons
    are asked (an ``EvaluationError``) neither stops the dry-run nor loses a row:
    the batch is decided row by row by the reference engine, as for any failure
    of the vectorised path, and the changes are the native dry-run's."""
    from escalation import compare
    from escalation.errors import EvaluationError

    def refused(self: Explainer, record: object) -> Any:
        raise EvaluationError("refused while explaining")

    portfolio = ROOT / "examples" / "portfolio-cn.jsonl"
    base = ROOT / "policies" / "consumer-credit-cn.yaml"
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(_later(base.read_text()))
    native = compare(base, candidate, portfolio, at=NOW, out=tmp_path / "n", backend="native")
    vectorised = compare(base, candidate, portfolio, at=NOW, out=tmp_path / "v", backend="columnar")
    monkeypatch.setattr(Explainer, "rows", refused)
    result = compare(base, candidate, portfolio, at=NOW, out=tmp_path / "c", backend="columnar")
    assert result.changed == native.changed > 0
    assert vectorised.vectorised > 0 and (result.vectorised, result.fallback) == (0, native.accounts)
    assert result.decided + result.errors == result.accounts == native.accounts
    assert (tmp_path / "n" / "changes.jsonl").read_text() == (tmp_path / "c" / "changes.jsonl").read_text()
    for name in ("changes.jsonl", "decisions.jsonl", "baseline.jsonl", "errors.jsonl"):
        assert (tmp_path / "v" / name).read_text() == (tmp_path / "c" / name).read_text(), name
