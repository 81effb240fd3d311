"""Dry-runs of a champion/challenger experiment: each account under its arm's
policy against the champion, counted by arm — on the reference and the
columnar paths, in the API, summary.json, the report and the CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from escalation import DryRunResult, ExperimentEngine, JsonlJournal, UsageError, arm_of, dry_run
from escalation.cli import main
from escalation.journal.audit import replay, verify

from .conftest import CN_POLICY, NOW, ROOT

EXPERIMENT = ROOT / "examples" / "experiment-lawyer-45.yaml"
CHALLENGER = ROOT / "examples" / "cn-lawyer-letter-45.yaml"
PORTFOLIO = ROOT / "examples" / "portfolio-cn.jsonl"
BAD = ROOT / "examples" / "portfolio-bad.jsonl"


@pytest.fixture(scope="module")
def engine() -> ExperimentEngine:
    return ExperimentEngine.from_file(EXPERIMENT)


@pytest.fixture(scope="module", params=["native", "columnar"])
def run(
    request: pytest.FixtureRequest, engine: ExperimentEngine, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DryRunResult, Path]:
    out = tmp_path_factory.mktemp(f"exp-{request.param}")
    return dry_run(engine, PORTFOLIO, at=NOW, out=out, backend=request.param, reasons="all"), out


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class TestByArm:
    def test_arm_counts_add_up_to_the_decided_accounts(self, run: tuple[DryRunResult, Path]) -> None:
        """Accounts, balances, decision mixes and transitions of the two arms add up to the totals."""
        result, _ = run
        arms = result.arms
        assert ("lawyer-letter-45", 0.2) == (result.experiment, result.share)
        assert ["champion", "challenger"] == list(arms)
        assert result.decided == 1000 == sum(a.accounts for a in arms.values())
        mixed = Counter[str]()
        for arm in arms.values():
            mixed.update({k: t.accounts for k, t in arm.decisions.by_action.items()})
            assert arm.accounts == sum(t.accounts for t in arm.decisions.by_action.values())
            assert arm.accounts == sum(t.accounts for t in arm.transitions.values())
        assert {k: t.accounts for k, t in result.candidate.by_action.items()} == dict(mixed)
        total = {k: t.accounts for k, t in result.transitions.items()}
        by_arm = Counter[tuple[str, str]]()
        for arm in arms.values():
            by_arm.update({k: t.accounts for k, t in arm.transitions.items()})
        assert total == dict(by_arm)
        assert sum(a.balance for a in arms.values()) == sum(
            t.balance for t in result.candidate.by_status.values()
        )

    def test_only_the_challenger_arm_changes(self, run: tuple[DryRunResult, Path]) -> None:
        """The champion arm is decided by the baseline's policy: nothing changes there."""
        result, _ = run
        champion, challenger = result.arms["champion"], result.arms["challenger"]
        assert 0 == champion.changed and all(old == new for old, new in champion.transitions)
        assert result.changed == challenger.changed > 0
        assert result.changed_balance == challenger.changed_balance

    def test_arms_follow_arm_of(self, run: tuple[DryRunResult, Path], engine: ExperimentEngine) -> None:
        """Each decision row is its arm's policy's (by fingerprint); the arm sizes are arm_of's."""
        result, out = run
        spec = engine.experiment
        fingerprints = {
            True: engine.challenger.policy.fingerprint,
            False: engine.champion.policy.fingerprint,
        }
        decided = rows(out / "decisions.jsonl")
        picked = [arm_of(r["account_id"], spec.salt, spec.challenger.share) for r in decided]
        assert [fingerprints[p] for p in picked] == [r["policy_fingerprint"] for r in decided]
        assert sum(picked) == result.arms["challenger"].accounts
        assert {engine.champion.policy.fingerprint} == {
            r["policy_fingerprint"] for r in rows(out / "baseline.jsonl")
        }

    def test_challenger_rows_equal_a_dry_run_of_the_challenger(
        self, run: tuple[DryRunResult, Path], engine: ExperimentEngine, tmp_path: Path
    ) -> None:
        """The experiment's rows are the challenger's own dry-run rows for challenger accounts
        and the champion's for the others; changes.jsonl lists challenger accounts only."""
        result, out = run
        options: Any = {"out": tmp_path, "backend": result.backend, "reasons": "all"}
        plain = dry_run(CHALLENGER, PORTFOLIO, at=NOW, baseline=CN_POLICY, **options)
        assert plain.decided == result.decided
        challenger, champion = rows(tmp_path / "decisions.jsonl"), rows(tmp_path / "baseline.jsonl")
        expected = [
            c if engine.arm(c["account_id"]) == "challenger" else b
            for c, b in zip(challenger, champion, strict=True)
        ]
        assert expected == rows(out / "decisions.jsonl")
        changed = rows(out / "changes.jsonl")
        assert changed and {"challenger"} == {engine.arm(c["account_id"]) for c in changed}

    def test_summary_json_has_the_arms(self, run: tuple[DryRunResult, Path]) -> None:
        result, out = run
        summary = json.loads((out / "summary.json").read_text())
        section = summary["experiment"]
        assert ("lawyer-letter-45", 0.2) == (section["id"], section["share"])
        assert result.decided == sum(arm["accounts"] for arm in section["arms"].values())
        assert summary["changed"] == section["arms"]["challenger"]["changed"]
        assert "experiment" == summary["candidate"]["policy"]["version"]
        assert "2026.11-lawyer45" == section["arms"]["challenger"]["policy"]["version"]
        assert "lawyer-letter-45 · challenger" in (out / "report.html").read_text()


def _comparable(result: DryRunResult) -> dict[str, Any]:
    data = dict(result.__dict__)
    for name in ("files", "backend", "vectorised", "fallback", "sample"):
        data.pop(name)
    return data


def test_reference_columnar_and_workers_agree(engine: ExperimentEngine, tmp_path: Path) -> None:
    """The reference path, the columnar path and two worker processes give the same figures."""
    native = dry_run(engine, PORTFOLIO, at=NOW, backend="native")
    columnar = dry_run(engine, PORTFOLIO, at=NOW, backend="columnar")
    workers = dry_run(engine, PORTFOLIO, at=NOW, backend="native", workers=2)
    assert "columnar" == columnar.backend
    assert _comparable(native) == _comparable(columnar) == _comparable(workers)


def test_a_plain_dry_run_has_no_experiment_section(tmp_path: Path) -> None:
    result = dry_run(CN_POLICY, PORTFOLIO, at=NOW, baseline=CHALLENGER, out=tmp_path)
    assert (None, {}) == (result.experiment, result.arms)
    assert "experiment" not in json.loads((tmp_path / "summary.json").read_text())


def test_error_rows_stay_error_rows(engine: ExperimentEngine) -> None:
    """Bad lines become error rows under an experiment too: accounts = decided + errors."""
    result = dry_run(engine, BAD, at=NOW)
    assert result.errors > 0
    assert len([line for line in BAD.read_text().splitlines() if line.strip()]) == result.accounts
    assert result.accounts == result.decided + result.errors
    assert result.decided == sum(a.accounts for a in result.arms.values())


def test_an_experiment_takes_no_baseline(engine: ExperimentEngine) -> None:
    with pytest.raises(UsageError, match="champion"):
        dry_run(engine, PORTFOLIO, at=NOW, baseline=CN_POLICY)


def test_a_journaled_experiment_dry_run_replays_clean(tmp_path: Path) -> None:
    """dry_run(journal=...) journals each account's labelled decision; verify and replay pass."""
    lines = PORTFOLIO.read_text().splitlines()[:60]
    book = tmp_path / "b.jsonl"
    book.write_text("\n".join(lines) + "\n")
    journal = JsonlJournal(str(tmp_path / "j.jsonl"))
    result = dry_run(ExperimentEngine.from_file(EXPERIMENT), book, at=NOW, journal=journal)
    stored = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    arms = Counter(json.loads(r["decision"])["experiment"]["arm"] for r in stored if "decision" in r)
    assert {k: a.accounts for k, a in result.arms.items() if a.accounts} == dict(arms)
    assert verify(journal).ok
    assert all(r.same for r in replay(journal))


class TestCommand:
    def test_dry_run_experiment_prints_the_arms(self, tmp_path: Path) -> None:
        args = ["dry-run", "--experiment", str(EXPERIMENT), "--portfolio", str(PORTFOLIO)]
        result = CliRunner().invoke(main, [*args, "--at", NOW.isoformat(), "-o", str(tmp_path)])
        assert 0 == result.exit_code, result.output
        assert "experiment lawyer-letter-45: by arm" in result.output
        assert "challenger" in json.loads((tmp_path / "summary.json").read_text())["experiment"]["arms"]

    @pytest.mark.parametrize("extra", [["-p", str(CN_POLICY)], ["-b", str(CN_POLICY)]])
    def test_experiment_with_policy_or_baseline_is_refused(self, extra: list[str]) -> None:
        args = [
            "dry-run",
            "-e",
            str(EXPERIMENT),
            *extra,
            "--portfolio",
            str(PORTFOLIO),
            "--at",
            NOW.isoformat(),
        ]
        result = CliRunner().invoke(main, args)
        assert 1 == result.exit_code and "--experiment names the policies" in result.output

    def test_neither_policy_nor_experiment_is_refused(self) -> None:
        result = CliRunner().invoke(main, ["dry-run", "--portfolio", str(PORTFOLIO), "--at", NOW.isoformat()])
        assert 1 == result.exit_code and "--policy" in result.output
