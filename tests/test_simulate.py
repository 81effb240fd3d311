"""The day-by-day simulation: determinism, common random numbers, conservation,
error rows, the evaluators agreeing, champion/challenger arms and the report."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from escalation.portfolio.generate import generate
from escalation.record import parse_account
from escalation.simulate import arm_of
from escalation.simulate._state import Book
from escalation.simulate.run import Arms, SimulationResult, simulate

ROOT = Path(__file__).resolve().parent.parent
CN = ROOT / "policies" / "consumer-credit-cn.yaml"
LAWYER45 = ROOT / "examples" / "cn-lawyer-letter-45.yaml"
AT = dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DAYS = 12
FILES = ("summary.json", "daily.parquet", "actions.parquet", "errors.jsonl", "report.html")


def _write(records: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 generated CN accounts plus one bad row."""
    records = list(generate(120, seed=5, at=AT))
    path = _write(records, tmp_path_factory.mktemp("sim") / "book.jsonl")
    with path.open("a") as handle:
        handle.write(
            '{"id": "BAD-1", "currency": "CNY", "amount_overdue": "-5", "balance": "10", "days_overdue": 3}\n'
        )
    return path


@pytest.fixture(scope="module")
def near_threshold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Accounts 38–58 days overdue with balances a lawyer's letter applies to."""
    chosen = []
    for record in generate(3000, seed=11, at=AT):
        days = (AT.date() - dt.date.fromisoformat(record["overdue_since"])).days
        if 38 <= days <= 58 and float(record["balance"]) >= 3000 and "flags" not in record:
            chosen.append(record)
    return _write(chosen[:60], tmp_path_factory.mktemp("near") / "near.jsonl")


@pytest.fixture(scope="module")
def twice(portfolio: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationResult, Path, Path]:
    """The same simulation (CN vs itself, 2 runs, an arm split) written twice."""
    folders = [tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")]
    result = None
    for folder in folders:
        result = simulate(
            CN, portfolio, at=AT, days=DAYS, baseline=CN, runs=2, seed=7, out=folder, arms=Arms(0.3)
        )
    assert result is not None
    return result, folders[0], folders[1]


class TestDeterminism:
    def test_same_seed_gives_byte_identical_files(self, twice: tuple[SimulationResult, Path, Path]) -> None:
        """Every output file is byte-identical for the same inputs and seed."""
        _, a, b = twice
        for name in FILES:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name

    def test_baseline_against_itself_differs_in_nothing(
        self, twice: tuple[SimulationResult, Path, Path]
    ) -> None:
        """The same policy as candidate and baseline: every metric's difference is zero in every run."""
        result, folder, _ = twice
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["difference"]
        for metric, diff in summary["difference"].items():
            assert diff["mean"] in (0, "0.00"), metric
            assert result.difference(metric)["runs"] == [0, 0], metric  # type: ignore[index]
        assert summary["totals"]["candidate"] == summary["totals"]["baseline"]
        assert (
            summary["totals"]["candidate"]["actions"] > 0 and summary["totals"]["candidate"]["payments"] > 0
        )

    def test_workers_do_not_change_the_result(self, portfolio: Path, tmp_path: Path) -> None:
        """Two worker processes give the same summary as one."""
        one = simulate(CN, portfolio, at=AT, days=4, baseline=LAWYER45, seed=2, out=tmp_path / "one")
        two = simulate(
            CN, portfolio, at=AT, days=4, baseline=LAWYER45, seed=2, out=tmp_path / "two", workers=2
        )
        assert one.runs == two.runs
        assert (tmp_path / "one" / "summary.json").read_bytes() == (
            tmp_path / "two" / "summary.json"
        ).read_bytes()

    def test_another_seed_draws_other_answers(self, portfolio: Path) -> None:
        """A different seed changes what customers do (the seed is used)."""
        one = simulate(CN, portfolio, at=AT, days=DAYS, seed=7)
        other = simulate(CN, portfolio, at=AT, days=DAYS, seed=8)
        assert one.runs["candidate"][0].daily != other.runs["candidate"][0].daily


class TestConservation:
    def test_balances_and_accounts_are_conserved(self, twice: tuple[SimulationResult, Path, Path]) -> None:
        """start − payments + charges = end; accounts in = cured + active + written off + errors."""
        result, folder, _ = twice
        summary = json.loads((folder / "summary.json").read_text())
        for label, runs in summary["conservation"].items():
            for c in runs:
                from decimal import Decimal

                start, paid, charged, end = (Decimal(c[k]) for k in ("start", "payments", "charges", "end"))
                assert start - paid + charged == end, label
                assert c["accounts"] == c["cured"] + c["active"] + c["written_off"] + c["errors"] == 121
                assert c["errors"] == 1
        for runs in result.runs.values():
            for run in runs:
                assert (
                    run.totals["collected"]
                    == run.balance["payments"]
                    == sum(d["collected"] for d in run.daily)
                )
                assert run.totals["cured"] == run.end["cured"]

    def test_daily_table_sums_to_the_totals(self, twice: tuple[SimulationResult, Path, Path]) -> None:
        """daily.parquet holds one row per policy, run and day, and its flows sum to the summary's totals."""
        result, folder, _ = twice
        table = pq.read_table(folder / "daily.parquet").to_pylist()
        assert 2 * 2 * DAYS == len(table)
        actions = sum(r["actions"] for r in table if r["policy"] == "candidate") / 2
        assert result.mean("candidate", "actions") == actions
        per_action = pq.read_table(folder / "actions.parquet").to_pylist()
        assert sum(r["count"] for r in per_action) == sum(r["actions"] for r in table)

    def test_the_error_row_is_reported_not_simulated(
        self, twice: tuple[SimulationResult, Path, Path]
    ) -> None:
        """A bad record becomes one error row naming its field; the rest of the book runs."""
        result, folder, _ = twice
        rows = [json.loads(line) for line in (folder / "errors.jsonl").read_text().splitlines()]
        assert [("BAD-1", 121)] == [(r["account_id"], r["row"]) for r in rows]
        assert "amount_overdue" in rows[0]["message"]
        assert 1 == len(result.errors)


class TestHistory:
    def test_simulated_events_are_valid_history(self, portfolio: Path) -> None:
        """Every event the simulation appends is a valid record history event, with money as amounts."""
        from escalation.backends.columnar import ColumnarPolicy
        from escalation.policy import load_policy
        from escalation.portfolio.arrow import records_of
        from escalation.simulate._loop import run_policy
        from escalation.simulate.model import bundled_model, load_response_model
        from escalation.simulate.run import _instants, _load_book

        policy = load_policy(CN)
        book = _load_book(portfolio, "CNY", AT, "Asia/Shanghai")
        done = run_policy(
            book,
            ColumnarPolicy(policy),
            load_response_model(bundled_model("cn-card")),
            _instants(AT, DAYS, "Asia/Shanghai"),
            seed=3,
            run=0,
            grace=3,
        )
        final: Book = done.book
        active = [i for i in range(len(final.status)) if final.status[i] != 3]
        (_, batch), *_ = final.batches(__import__("numpy").array(active), 10_000)
        outcomes = set()
        for record in records_of(batch, list(range(len(batch)))):
            account = parse_account(record)  # type: ignore[arg-type]
            outcomes |= {e.outcome.value for e in account.history if e.outcome and e.at > AT}
            assert all(
                e.amount is not None and e.amount > 0
                for e in account.history
                if e.outcome == "payment" and e.at > AT
            )
        assert {"delivered", "payment"} <= outcomes


class TestPolicyChange:
    def test_lawyer_letter_at_45_days_sends_more_lawyer_letters(self, near_threshold: Path) -> None:
        """The lawyer's letter from day 45 instead of 61: more of them within the horizon, more cost."""
        result = simulate(LAWYER45, near_threshold, at=AT, days=14, baseline=CN)
        new, old = result.runs["candidate"][0], result.runs["baseline"][0]
        letters = {k: sum(v) for k, v in new.actions.items() if k.startswith("lawyer_letter")}
        before = {k: sum(v) for k, v in old.actions.items() if k.startswith("lawyer_letter")}
        assert sum(letters.values()) > sum(before.values())
        assert result.difference("cost")["mean"] > 0  # type: ignore[index]

    def test_native_and_columnar_agree(self, near_threshold: Path) -> None:
        """The reference engine and the columnar evaluator give the same simulation."""
        a = simulate(LAWYER45, near_threshold, at=AT, days=6, baseline=CN, backend="native")
        b = simulate(LAWYER45, near_threshold, at=AT, days=6, baseline=CN, backend="columnar")
        for label in ("candidate", "baseline"):
            assert a.runs[label][0].daily == b.runs[label][0].daily
            assert a.runs[label][0].actions == b.runs[label][0].actions


class TestArms:
    def test_shares_are_within_tolerance(self) -> None:
        """20 % of 20,000 ids land in the challenger arm, within 4 standard deviations."""
        hits = sum(arm_of(f"CN-{i:07d}", "exp-1", 0.2) for i in range(20_000))
        assert abs(hits / 20_000 - 0.2) < 4 * (0.2 * 0.8 / 20_000) ** 0.5

    def test_assignment_is_stable_and_order_free(self) -> None:
        """The arm depends on the id and the salt only: same on every call, in any order; a salt redraws."""
        ids = [f"A-{i}" for i in range(2000)]
        first = {i: arm_of(i, "s", 0.5) for i in ids}
        again = {i: arm_of(i, "s", 0.5) for i in reversed(ids)}
        assert first == again
        other = {i: arm_of(i, "t", 0.5) for i in ids}
        assert first != other

    def test_results_are_reported_by_arm(self, twice: tuple[SimulationResult, Path, Path]) -> None:
        """Both arms under both policies; the arms partition the decided accounts and match arm_of."""
        result, folder, _ = twice
        summary = json.loads((folder / "summary.json").read_text())
        ids = [json.loads(line)["id"] for line in result_lines(result)]
        challengers = sum(arm_of(i, "escalation", 0.3) for i in ids)
        for label in ("candidate", "baseline"):
            arms = summary["arms"][label]
            assert challengers == arms["challenger"]["accounts"]
            assert 120 == arms["challenger"]["accounts"] + arms["champion"]["accounts"]


def result_lines(result: SimulationResult) -> list[str]:
    """The decided accounts' lines of the fixture portfolio (the bad row excluded)."""
    source = next(iter(result.errors)).source
    assert source is not None
    return [line for line in Path(source).read_text().splitlines() if "BAD-1" not in line]


class TestReport:
    def test_report_is_self_contained(self, twice: tuple[SimulationResult, Path, Path]) -> None:
        """The report embeds its JavaScript; shows curves, matrix, segments, arms and conservation."""
        _, folder, _ = twice
        text = (folder / "report.html").read_text()
        assert not re.search(r"<script[^>]+src=", text)
        for heading in (
            "Key figures",
            "Cumulative recoveries and cost",
            "Cumulative letters",
            "Volumes by tier per week",
            "Roll-rate matrix",
            "By segment",
            "By arm",
            "Conservation",
        ):
            assert heading in text, heading
        assert "sha256:" in text and "cn-card" in text

    @pytest.mark.skipif(
        shutil.which("chromium") is None and not os.environ.get("CI"),
        reason="chromium is not installed (under CI=true this test fails instead)",
    )
    def test_report_renders_in_headless_chromium(
        self, twice: tuple[SimulationResult, Path, Path], tmp_path: Path
    ) -> None:
        """Headless Chromium renders the report offline to a non-trivial screenshot."""
        _, folder, _ = twice
        shot = tmp_path / "report.png"
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--screenshot={shot}",
                "--window-size=1400,2400",
                "--virtual-time-budget=5000",
                (folder / "report.html").as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert shot.stat().st_size > 50_000
