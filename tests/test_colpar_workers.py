"""The columnar dry-run with worker processes (issue 12): workers read their own
batches of a typed folder, decide and fold them, and the run merges the parts
in batch order — every output file byte-identical to one process."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")

import pyarrow.parquet as pq

from escalation import DryRunResult, ExperimentEngine, compare, dry_run
from escalation.portfolio.arrow import convert, read_typed
from escalation.portfolio.generate import generate, write_portfolio

from .conftest import CN_POLICY, ROOT

AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
BAD = ROOT / "examples" / "portfolio-bad.jsonl"
EXPERIMENT = ROOT / "examples" / "experiment-lawyer-45.yaml"
BATCH = 64  # several batches per worker; not a multiple of the row groups below


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 generated CN accounts with bad lines before, among and after them."""
    folder = tmp_path_factory.mktemp("colpar")
    plain = folder / "plain.jsonl"
    write_portfolio(generate(500, 17, "cn-card", AT), plain)
    lines = plain.read_text().splitlines(keepends=True)
    bad = BAD.read_text()
    path = folder / "mixed.jsonl"
    path.write_text(bad + "".join(lines[:230]) + bad + "".join(lines[230:]) + bad)
    return path


def _regrouped(folder: Path, accounts: int, events: int) -> None:
    """Rewrite a typed folder with row groups of ``accounts`` and ``events`` rows."""
    for name, size in (("accounts", accounts), ("events", events)):
        table = pq.read_table(folder / f"{name}.parquet")
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=size)


@pytest.fixture(scope="module")
def typed(mixed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mixed`` in the typed layout, in row groups that cut across batches."""
    folder = tmp_path_factory.mktemp("colpar-typed") / "mixed.typed"
    convert(mixed, folder)
    _regrouped(folder, 37, 211)
    return folder


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CN policy with the call threshold moved from 8 to 9 days."""
    folder = tmp_path_factory.mktemp("policy")
    shutil.copytree(ROOT / "rules", folder / "rules")
    (folder / "policies").mkdir()
    path = folder / "policies" / "cn-9.yaml"
    path.write_text(CN_POLICY.read_text().replace("days_overdue >= 8", "days_overdue >= 9"))
    return path


def _run(
    kind: str, source: Path, variant: Path, out: Path, workers: int, fmt: str, reasons: str
) -> DryRunResult:
    options = {
        "at": AT,
        "out": out,
        "workers": workers,
        "fmt": fmt,
        "reasons": reasons,
        "backend": "columnar",
    }
    if kind == "compare":
        return compare(CN_POLICY, variant, source, sample=5, **options)
    if kind == "experiment":
        return dry_run(ExperimentEngine.from_file(EXPERIMENT), source, sample=5, **options)
    return dry_run(CN_POLICY, source, **options)


def _files(folder: Path) -> dict[str, bytes]:
    """Every output file; plotly names the report's chart divs by random uuids."""
    files = {p.name: p.read_bytes().replace(str(folder).encode(), b"<out>") for p in sorted(folder.iterdir())}
    uuid = rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    files["report.html"] = re.sub(uuid, b"<uuid>", files["report.html"])
    return files


class TestWorkersWriteTheSameFiles:
    @pytest.mark.parametrize(
        ("source", "fmt", "reasons", "kind"),
        [
            ("typed", "jsonl", "none", "compare"),
            ("typed", "parquet", "changed", "experiment"),
            ("typed", "jsonl", "all", "experiment"),
            ("typed", "parquet", "none", "single"),
            ("jsonl", "parquet", "all", "compare"),
            ("jsonl", "jsonl", "changed", "experiment"),
        ],
    )
    def test_one_two_and_three_workers_write_identical_files(
        self, source: str, fmt: str, reasons: str, kind: str, mixed: Path, typed: Path, variant: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    ) -> None:  # fmt: skip
        """Decisions, baseline, changes, errors, summary and report: the same bytes with 1, 2 or 3 workers."""
        import escalation.portfolio._columnar_run as run

        monkeypatch.setattr(run, "COLUMNAR_BATCH", BATCH)
        portfolio = typed if source == "typed" else mixed
        results = [_run(kind, portfolio, variant, tmp_path / str(w), w, fmt, reasons) for w in (1, 2, 3)]
        one = _files(tmp_path / "1")
        assert {f"decisions.{fmt}", "errors.jsonl", "summary.json", "report.html"} <= set(one)
        assert (kind != "single") == (f"baseline.{fmt}" in one and "changes.jsonl" in one)
        assert one == _files(tmp_path / "2")
        assert one == _files(tmp_path / "3")
        first = results[0]
        assert first.accounts == first.decided + first.errors and first.errors > 0
        assert all(r.sample == first.sample and r.arms == first.arms for r in results)
        assert all((r.vectorised, r.fallback) == (first.vectorised, first.fallback) for r in results)

    def test_typed_folder_and_its_source_give_the_same_decisions(
        self, mixed: Path, typed: Path, variant: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Workers reading their own slices of the typed folder decide as the parent-read JSONL does."""
        import escalation.portfolio._columnar_run as run

        monkeypatch.setattr(run, "COLUMNAR_BATCH", BATCH)
        a = _run("compare", mixed, variant, tmp_path / "a", 1, "jsonl", "changed")
        b = _run("compare", typed, variant, tmp_path / "b", 2, "jsonl", "changed")
        assert (a.accounts, a.decided, a.errors, a.changed) == (b.accounts, b.decided, b.errors, b.changed)
        for name in ("decisions.jsonl", "baseline.jsonl", "changes.jsonl"):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


class TestSlices:
    @pytest.mark.parametrize(("size", "accounts", "events"), [(64, 37, 211), (100, 100, 5000), (7, 1000, 13)])
    def test_each_batch_is_read_typed_s(
        self, size: int, accounts: int, events: int, typed: Path, tmp_path: Path
    ) -> None:
        """Batch k read by number holds the accounts and events of read_typed's k-th batch."""
        from escalation.portfolio._typed_slices import TypedSlices

        folder = tmp_path / "t"
        shutil.copytree(typed, folder)
        _regrouped(folder, accounts, events)
        expected = list(read_typed(folder, size))
        slices = TypedSlices.open(folder, size)
        assert slices is not None
        assert len(expected) == len(slices)
        order = [*range(len(slices)), *reversed(range(len(slices))), 0]  # in order (a worker's), and not
        for k in order:
            got = slices.batch(k)
            assert expected[k].accounts.equals(got.accounts)
            assert expected[k].events.equals(got.events)
            assert expected[k].source == got.source

    def test_events_without_statistics_are_read_in_one_process(self, typed: Path, tmp_path: Path) -> None:
        """A folder whose events carry no row-group statistics cannot be cut by account: None."""
        from escalation.portfolio._typed_slices import TypedSlices

        folder = tmp_path / "t"
        shutil.copytree(typed, folder)
        table = pq.read_table(folder / "events.parquet")
        pq.write_table(table, folder / "events.parquet", write_statistics=False)
        assert TypedSlices.open(folder, 64) is None
