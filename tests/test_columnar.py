"""The columnar evaluator against the reference engine (``native``): every
shipped policy's suite cases and generated portfolios, zero differing
decisions; the per-zone offset tables against ``zoneinfo`` on DST edges; the
typed layout round trip and the dry-run's ``--backend``/``--reasons``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("pyarrow")

from escalation import Engine  # noqa: E402
from escalation.backends.columnar import ColumnarPolicy, covers, decide_table  # noqa: E402
from escalation.backends.columnar._zones import table_for  # noqa: E402
from escalation.policy import load_policy  # noqa: E402
from escalation.policytest import Suite  # noqa: E402
from escalation.portfolio.arrow import read_typed, to_batch, write_typed  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402
from escalation.portfolio.writer import decision_row  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POLICIES = sorted((ROOT / "policies").glob("*.yaml"))
SHIPPED = [p for p in POLICIES if not p.name.endswith("_test.yaml")]
AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
KEYS = ("status", "action", "channel", "severity", "next_eligible_at", "hold", "blocked_guards")


def _differences(policy_path: Path, records: list[dict[str, Any]], now: dt.datetime) -> tuple[list[str], int]:
    """Rows whose decision (or error) differs between columnar and native; rows vectorised."""
    policy = load_policy(policy_path)
    result = decide_table(to_batch(list(enumerate(records, 1))), [ColumnarPolicy(policy)], now=now)
    engine = Engine(policy)
    out = []
    for i, record in enumerate(records):
        got = result.decisions[0][i]
        try:
            ref: dict[str, Any] | None = decision_row(engine.decide(record, now=now, trace=False))
        except Exception:
            ref = None
        if (ref is None) != (got is None):
            out.append(f"{record.get('id')}: native {ref} columnar {got}")
        elif ref is not None and got is not None and any(ref[k] != got[k] for k in KEYS):
            out.append(f"{record.get('id')}: {[(k, ref[k], got[k]) for k in KEYS if ref[k] != got[k]]}")
    return out, result.vectorised


class TestCoverage:
    def test_every_shipped_policy_is_covered(self) -> None:
        """The columnar evaluator covers every shipped policy (no whole-policy fallback)."""
        assert {} == {p.name: why for p in SHIPPED if (why := covers(load_policy(p))) is not None}


class TestSuiteCases:
    @pytest.mark.parametrize("suite", sorted((ROOT / "policies").glob("*_test.yaml")), ids=lambda p: p.stem)
    def test_suite_cases_agree(self, suite: Path) -> None:
        """Every case of a shipped policy's suite gets the same decision (or error) from both."""
        import yaml

        data = Suite.model_validate(yaml.safe_load(suite.read_text()))
        policy = suite.parent / (data.policy or suite.name.replace("_test.yaml", ".yaml"))
        differing = []
        for case in data.cases:
            now = dt.datetime.fromisoformat(case.now)
            found, _ = _differences(policy, [{**data.defaults, **case.account}], now)
            differing.extend(f"{case.name}: {d}" for d in found)
        assert [] == differing


def _densify(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every third account with a history gets 1–5 more events on the days of
    its latest ones (connected and unanswered calls, messages), so frequency
    windows, cooldowns and daily limits are reached and crossed."""
    outcomes = ["conversation", "no_answer", "busy", "promise_to_pay", "delivered"]
    for index, record in enumerate(records):
        history = record.get("history") or []
        if index % 3 or not history:
            continue
        extra = []
        for k in range(1 + index % 5):
            last = dict(history[-1 - k % len(history)])
            moment = dt.datetime.fromisoformat(last["at"]) + dt.timedelta(hours=(k * 7 + index) % 30)
            if moment >= AT:
                moment = AT - dt.timedelta(minutes=1 + k)
            last["at"] = moment.isoformat()
            last["outcome"] = outcomes[(index + k) % len(outcomes)]
            extra.append(last)
        record["history"] = sorted([*history, *extra], key=lambda e: dt.datetime.fromisoformat(e["at"]))
    return records


def _profile_run(profile: str, accounts: int, seed: int) -> int:
    spec = PROFILES[profile]
    records = _densify(list(generate(accounts, seed, profile, AT)))
    found, vectorised = _differences(ROOT / spec.policy, records, AT)
    assert [] == found[:10]
    assert vectorised > 0
    return vectorised


class TestGenerated:
    @pytest.mark.parametrize("profile", sorted(PROFILES))
    def test_generated_portfolio_agrees(self, profile: str) -> None:
        """20,000 generated accounts per profile: zero differing decisions."""
        _profile_run(profile, 20_000, 11)

    @pytest.mark.slow
    @pytest.mark.parametrize("profile", sorted(PROFILES))
    def test_generated_portfolio_agrees_at_scale(self, profile: str) -> None:
        """100,000 generated accounts per profile (another seed): zero differing decisions."""
        _profile_run(profile, 100_000, 12)


class TestZones:
    @pytest.mark.parametrize(
        "name",
        ["Europe/London", "America/New_York", "Australia/Lord_Howe", "America/Havana", "Asia/Shanghai"],
    )
    def test_local_day_matches_zoneinfo_on_dst_edges(self, name: str) -> None:
        """Local days from the offset table equal ``astimezone().date()``, a microsecond
        either side of every transition and at random instants."""
        tz = ZoneInfo(name)
        first = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**6
        last = int(dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**6
        table = table_for(name, tz, first, last)
        edges = np.concatenate([table.starts_us + d for d in (-1, 0, 1, -(10**6), 3_600 * 10**6)])
        rng = np.random.default_rng(5)
        instants = np.concatenate([edges[(edges > first) & (edges < last)], rng.integers(first, last, 5_000)])
        expected = [
            (
                (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(x)))
                .astimezone(tz)
                .date()
                - dt.date(1970, 1, 1)
            ).days
            for x in instants.tolist()
        ]
        assert expected == table.local_day(instants).tolist()


class TestTypedLayout:
    def test_round_trip_keeps_every_row(self, tmp_path: Path) -> None:
        """Written and read back in batches, the typed layout gives the same decisions."""
        records = list(generate(500, 3, "uk-loan", AT))
        write_typed(iter(records), tmp_path / "p.typed", batch=128)
        policy = ColumnarPolicy(load_policy(ROOT / "policies" / "uk-consumer-loan.yaml"))
        rows = []
        for batch in read_typed(tmp_path / "p.typed", batch=100):
            result = decide_table(batch, [policy], now=AT)
            rows.extend(result.decisions[0])
        direct = decide_table(to_batch(list(enumerate(records, 1))), [policy], now=AT).decisions[0]
        assert [r and {k: r[k] for k in KEYS} for r in direct] == [
            r and {k: r[k] for k in KEYS} for r in rows
        ]

    def test_bad_rows_become_error_rows(self) -> None:
        """A record that fails validation travels raw and becomes the reference engine's error row."""
        good = next(iter(generate(1, 3, "cn-card", AT)))
        bad = {**good, "id": "BAD-1", "flags": ["Dispute"]}
        result = decide_table(
            to_batch([(1, good), (2, bad), (3, {"id": "X"})]),
            [ColumnarPolicy(load_policy(ROOT / "policies" / "consumer-credit-cn.yaml"))],
            now=AT,
        )
        assert [False, True, True] == [e is not None for e in result.errors]
        assert result.errors[1] is not None and "flags.0" in json.dumps(result.errors[1].model_dump())


class TestDryRun:
    def test_backends_write_the_same_decisions(self, tmp_path: Path) -> None:
        """`--backend columnar --reasons all` writes the same decisions.jsonl as `--backend native`."""
        from escalation import compare

        portfolio = ROOT / "examples" / "portfolio-cn.jsonl"
        base = ROOT / "policies" / "consumer-credit-cn.yaml"
        native = compare(base, base, portfolio, at=AT, out=tmp_path / "n", backend="native")
        columnar = compare(
            base, base, portfolio, at=AT, out=tmp_path / "c", backend="columnar", reasons="all"
        )
        assert "columnar" == columnar.backend
        assert native.accounts == columnar.accounts == columnar.vectorised + columnar.fallback
        assert (tmp_path / "n" / "decisions.jsonl").read_text() == (
            tmp_path / "c" / "decisions.jsonl"
        ).read_text()

    def test_summaries_and_changes_match_the_reference_path(self, tmp_path: Path) -> None:
        """The columnar fold (Arrow group-bys) gives the reference loop's summary,
        transitions and changes.jsonl, reasons included, for a one-threshold change."""
        from escalation import compare

        portfolio = ROOT / "examples" / "portfolio-cn.jsonl"
        base = ROOT / "policies" / "consumer-credit-cn.yaml"
        candidate = tmp_path / "candidate.yaml"
        candidate.write_text(base.read_text().replace("days_overdue >= 8", "days_overdue >= 9"))
        native = compare(base, candidate, portfolio, at=AT, out=tmp_path / "n", backend="native")
        columnar = compare(base, candidate, portfolio, at=AT, out=tmp_path / "c", backend="columnar")
        assert columnar.changed == native.changed > 0
        assert columnar.transitions == native.transitions
        assert columnar.changed_days == native.changed_days
        assert (columnar.candidate, columnar.baseline) == (native.candidate, native.baseline)
        assert (tmp_path / "n" / "changes.jsonl").read_text() == (
            tmp_path / "c" / "changes.jsonl"
        ).read_text()
        summary = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("n", "c")]
        for one in summary:
            one.pop("backend")
            one.pop("files", None)
        assert summary[0] == summary[1]

    def test_a_batch_the_vectorised_path_rejects_is_decided_by_the_reference(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A kernel that raises on a batch neither stops the dry-run nor drops a row:
        every row of that batch is decided by the reference engine, and counted."""
        import escalation.backends.columnar as columnar
        from escalation import compare

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise ValueError("a kernel failed on this batch")

        portfolio = ROOT / "examples" / "portfolio-cn.jsonl"
        base = ROOT / "policies" / "consumer-credit-cn.yaml"
        native = compare(base, base, portfolio, at=AT, out=tmp_path / "n", backend="native")
        monkeypatch.setattr(columnar, "decide_table", broken)
        result = compare(base, base, portfolio, at=AT, out=tmp_path / "c", backend="columnar", reasons="all")
        assert (0, native.accounts) == (result.vectorised, result.fallback)
        assert (tmp_path / "n" / "decisions.jsonl").read_text() == (
            tmp_path / "c" / "decisions.jsonl"
        ).read_text()

    def test_reasons_none_writes_the_report(self, tmp_path: Path) -> None:
        """`--reasons none` with a baseline: changed accounts carry empty reasons, the report renders."""
        from escalation import compare

        base = ROOT / "policies" / "consumer-credit-cn.yaml"
        candidate = tmp_path / "candidate.yaml"
        candidate.write_text(base.read_text().replace("days_overdue >= 8", "days_overdue >= 9"))
        result = compare(base, candidate, ROOT / "examples" / "portfolio-cn.jsonl", at=AT,
                         out=tmp_path / "o", backend="columnar", reasons="none")  # fmt: skip
        assert result.changed > 0 and all(c.candidate_reason == "" for c in result.sample)
        assert (tmp_path / "o" / "report.html").stat().st_size > 0

    def test_parquet_decisions_match(self, tmp_path: Path) -> None:
        """`--format parquet`: the columnar Arrow tables hold the reference rows."""
        import pyarrow.parquet as pq

        from escalation import dry_run

        portfolio = ROOT / "examples" / "portfolio-cn.jsonl"
        base = ROOT / "policies" / "consumer-credit-cn.yaml"
        for backend in ("native", "columnar"):
            dry_run(
                base, portfolio, at=AT, out=tmp_path / backend, backend=backend, fmt="parquet", reasons="all"
            )  # type: ignore[arg-type]
        rows = [pq.read_table(tmp_path / b / "decisions.parquet").to_pylist() for b in ("native", "columnar")]
        assert len(rows[0]) == 1000
        assert rows[0] == rows[1]


def test_jsonl_from_arrow_is_json_dumps() -> None:
    """Decision rows written from an Arrow table are byte for byte `json.dumps` of each row
    (quotes, backslashes, control characters, non-ASCII, nulls, lists)."""
    import pyarrow as pa

    from escalation.portfolio.writer import decision_schema, jsonl_bytes

    rows = [
        {"account_id": 'a"b\\c', "status": "act", "action": "x", "channel": None, "severity": 2,
         "reason": "line\nbreak\t中文 \u2028", "next_eligible_at": None, "hold": None,
         "blocked_guards": [], "policy_fingerprint": "sha256:f"},
        {"account_id": "C-2", "status": "wait", "action": None, "channel": None, "severity": None,
         "reason": None, "next_eligible_at": "2026-11-24T08:00:00+08:00", "hold": None,
         "blocked_guards": ["g-1", "g\"2"], "policy_fingerprint": "sha256:f"},
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=decision_schema())
    expected = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    assert expected.encode() == jsonl_bytes(table)
    assert expected.split("\n")[1].encode() + b"\n" == jsonl_bytes(table.slice(1))
