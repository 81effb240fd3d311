"""CLI commands for portfolios: ``escalation dry-run`` and
``escalation portfolio generate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from escalation.cli.common import EXIT_DIFFER, EXIT_ERROR, fail, needs_extra, parse_at, policy_errors
from escalation.errors import EscalationError, PolicyError, UsageError
from escalation.portfolio.dryrun import DryRunResult, PolicySummary, dry_run

if TYPE_CHECKING:  # rich comes with the [portfolio] extra: imported when a command runs
    from rich.console import Console
    from rich.table import Table

    from escalation.experiment import ExperimentEngine

__all__ = ["dry_run_command", "portfolio_group"]


def _summary_table(title: str, summary: PolicySummary) -> Table:
    from rich.table import Table

    table = Table(title=f"{title}: {summary.policy.id} {summary.policy.version}")
    table.add_column("decision")
    table.add_column("accounts", justify="right")
    table.add_column("balance", justify="right")
    for name, tally in summary.by_action.items():
        table.add_row(name, f"{tally.accounts:,}", f"{tally.balance:,.2f}")
    return table


def _print(result: DryRunResult, console: Console) -> None:
    from rich.table import Table

    console.print(
        f"{result.accounts:,} accounts at {result.at.isoformat()}: "
        f"{result.decided:,} decided, {result.errors:,} error rows"
    )
    if result.backend == "columnar":
        console.print(
            f"columnar backend: {result.vectorised:,} rows vectorised, "
            f"{result.fallback:,} decided by the reference engine"
        )
    if result.baseline is not None:
        console.print(_summary_table("baseline", result.baseline))
    console.print(_summary_table("candidate", result.candidate))
    if result.candidate.guard_blocks:
        blocks = Table(title="guard blocks (candidate)")
        blocks.add_column("guard")
        blocks.add_column("accounts", justify="right")
        for guard, count in result.candidate.guard_blocks.items():
            blocks.add_row(guard, f"{count:,}")
        console.print(blocks)
    if result.baseline is not None:
        matrix = Table(title=f"transitions baseline → candidate ({result.changed:,} accounts change)")
        matrix.add_column("baseline")
        matrix.add_column("candidate")
        matrix.add_column("accounts", justify="right")
        matrix.add_column("balance", justify="right")
        for (old, new), tally in result.transitions.items():
            style = None if old == new else "bold"
            matrix.add_row(old, new, f"{tally.accounts:,}", f"{tally.balance:,.2f}", style=style)
        console.print(matrix)
        if result.sample:
            sample = Table(title="sample of changed accounts")
            for column in ("account", "baseline", "candidate", "baseline reason", "candidate reason"):
                sample.add_column(column, overflow="fold")
            for change in result.sample[:10]:
                sample.add_row(
                    change.account_id,
                    change.baseline,
                    change.candidate,
                    change.baseline_reason,
                    change.candidate_reason,
                )
            console.print(sample)
    if result.arms:
        console.print(_arms_table(result))
    for name, path in result.files.items():
        console.print(f"{name}: {path}")


def _arms_table(result: DryRunResult) -> Table:
    """Decisions by arm: each arm's accounts, its policy, and its mix (count and
    share of the arm, comparable across arms of different sizes)."""
    from rich.table import Table

    arms = list(result.arms.values())
    table = Table(title=f"experiment {result.experiment}: by arm (challenger share {result.share:.2%})")
    table.add_column("decision")
    for arm in arms:
        policy = arm.decisions.policy
        table.add_column(
            f"{arm.arm}\n{policy.id} {policy.version}\n{arm.accounts:,} accounts, {arm.changed:,} changed",
            justify="right",
        )
    labels = [k for k in result.order if any(k in a.decisions.by_action for a in arms)]
    labels += sorted({k for a in arms for k in a.decisions.by_action} - set(labels))
    for name in labels:
        cells = []
        for arm in arms:
            n = arm.decisions.by_action[name].accounts if name in arm.decisions.by_action else 0
            cells.append(f"{n:,} ({n / arm.accounts:.1%})" if arm.accounts else "0")
        table.add_row(name, *cells)
    return table


@click.command("dry-run")
@click.option("--policy", "-p", "policy", metavar="POLICY", help="the candidate policy")
@click.option(
    "--experiment", "-e", metavar="FILE",
    help="a champion/challenger experiment: each account under its arm's policy, the champion as baseline",
)  # fmt: skip
@click.option("--baseline", "-b", metavar="POLICY", help="the current policy, to compare with")
@click.option("--portfolio", required=True, metavar="FILE", help="accounts: .jsonl, .csv or .parquet")
@click.option("--history", metavar="FILE", help="history CSV keyed by account_id (for a CSV portfolio)")
@click.option("--at", "at", metavar="ISO8601", help="evaluation instant (default: now)")
@click.option("--out", "-o", metavar="DIR", help="write decisions, errors, summary.json and report.html here")
@click.option("--workers", "-w", default=1, show_default=True, type=click.IntRange(1, 64), help="processes")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True)
@click.option(
    "--journal", "-j", metavar="JOURNAL", help="journal every candidate decision (slow; --workers 1)"
)
@click.option("--fail-on-change", is_flag=True, help="exit 2 when any decision differs from the baseline")
@click.option(
    "--backend",
    type=click.Choice(["auto", "columnar", "native"]),
    default="auto",
    show_default=True,
    help="columnar: vectorised batches (others by the reference engine); auto: columnar when it covers",
)
@click.option(
    "--reasons",
    type=click.Choice(["all", "changed", "none"]),
    default="changed",
    show_default=True,
    help="columnar: which accounts get a reason (rendered by the reference engine)",
)
@click.option(
    "--lang", type=click.Choice(["en", "zh-CN"]), default=None, help="language of reasons and the report"
)
def dry_run_command(
    policy: str | None,
    experiment: str | None,
    baseline: str | None,
    portfolio: str,
    history: str | None,
    at: str | None,
    out: str | None,
    workers: int,
    fmt: str,
    journal: str | None,
    fail_on_change: bool,
    backend: str,
    reasons: str,
    lang: str | None,
) -> None:
    """Decide a portfolio under POLICY (and --baseline) and show what changes.

    With --experiment (instead of --policy), each account is decided by its
    arm's policy against the champion, and the results are counted by arm.

    Exit 0 ok; 1 when some rows could not be decided (see errors.jsonl) or on
    usage errors; 2 with --fail-on-change when decisions differ; 3 when a
    policy is invalid."""
    needs_extra("portfolio", "escalation dry-run")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    moment = parse_at(at)
    console = Console(stderr=False)
    err = Console(stderr=True)
    if at is None:
        err.print(f"evaluating at {moment.isoformat()} (now)")
    journal_obj = None
    if journal is not None:
        from escalation.cli.audit import open_cli_journal

        journal_obj = open_cli_journal(journal)
    show = sys.stderr.isatty()
    try:
        target = _target(policy, experiment, baseline)
        with Progress(
            TextColumn("deciding"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not show,
        ) as bar:
            task = bar.add_task("accounts", total=None)
            result = dry_run(
                target,
                portfolio,
                at=moment,
                baseline=baseline,
                out=out,
                workers=workers,
                fmt=fmt,  # type: ignore[arg-type]
                history=history,
                journal=journal_obj,
                progress=lambda n: bar.advance(task, n),
                backend=backend,  # type: ignore[arg-type]
                reasons=reasons,  # type: ignore[arg-type]
                locale=lang,
            )
    except PolicyError as exc:
        policy_errors(exc)
    except (OSError, ValueError, UsageError, EscalationError) as exc:
        fail(str(exc))
    _print(result, console)
    if result.errors:
        sys.exit(EXIT_ERROR)
    if fail_on_change and result.changed:
        sys.exit(EXIT_DIFFER)


def _target(policy: str | None, experiment: str | None, baseline: str | None) -> str | ExperimentEngine:
    """``--policy``, or the engine serving ``--experiment``."""
    if experiment is None:
        if policy is None:
            raise UsageError("give --policy (or --experiment)")
        return policy
    if policy is not None or baseline is not None:
        raise UsageError("--experiment names the policies: drop --policy and --baseline")
    from escalation.experiment import ExperimentEngine

    return ExperimentEngine.from_file(experiment)


@click.group("portfolio")
def portfolio_group() -> None:
    """Synthetic portfolios."""


@portfolio_group.command("generate")
@click.option("--accounts", "-n", required=True, type=click.IntRange(1, 100_000_000), help="how many")
@click.option("--seed", "-s", default=1, show_default=True, type=int)
@click.option(
    "--profile",
    type=click.Choice(["cn-card", "us-card", "uk-loan", "ie-loan"]),
    default="cn-card",
    show_default=True,
)
@click.option("--at", "at", metavar="ISO8601", default="2026-11-23T10:00:00+08:00", show_default=True)
@click.option("--output", "-o", required=True, metavar="FILE", help=".jsonl, .parquet or .typed (a folder)")
@click.option(
    "--violations",
    metavar="RATE",
    help="histories that obey the policy, with one planted violation in about RATE of the "
    "accounts (e.g. 0.5%); the truth goes to OUTPUT.planted.jsonl",
)
def generate_command(
    accounts: int, seed: int, profile: str, at: str, output: str, violations: str | None
) -> None:
    """Write a deterministic synthetic portfolio (same seed, same bytes)."""
    needs_extra("portfolio", "escalation portfolio generate")
    from escalation.portfolio.generate import generate, write_portfolio

    moment = parse_at(at)
    path = Path(output)
    if path.suffix.lower() not in (".jsonl", ".parquet", ".typed"):
        fail(f"{output}: write .jsonl, .parquet or a .typed folder (the typed layout)")
    if violations is not None:
        from escalation.portfolio.planted import parse_rate, write_planted

        try:
            rate = parse_rate(violations)
        except ValueError as exc:
            fail(f"--violations {exc}")
        count, planted = write_planted(accounts, seed, profile, moment, rate, path)
        click.echo(f"{path}: {count:,} accounts ({profile}, seed {seed}, at {moment.isoformat()}), "
                   f"{planted:,} planted violations in {path}.planted.jsonl", err=True)  # fmt: skip
        return
    count = write_portfolio(generate(accounts, seed, profile, moment), path)
    click.echo(f"{path}: {count:,} accounts ({profile}, seed {seed}, at {moment.isoformat()})", err=True)
