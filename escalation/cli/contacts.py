"""``escalation audit contacts``: the contact audit of a portfolio's histories."""

from __future__ import annotations

import datetime as dt
import sys

import click

from escalation._bundled import DEFAULT_POLICY, bundled
from escalation.cli.common import EXIT_DIFFER, EXIT_ERROR, fail, needs_extra, parse_at, policy_errors
from escalation.contacts.run import BREACHES, EVALUATORS, Evaluator
from escalation.errors import EscalationError, PolicyError, UsageError

__all__ = ["contacts"]


def _bound(value: str, tz_name: str, option: str) -> dt.datetime:
    """A date (the start of that day in ``--tz``) or an ISO 8601 instant."""
    from escalation.record import zone

    try:
        tz = zone(tz_name)
    except ValueError as exc:
        fail(str(exc))
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tz)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} `{value}` is not a date (YYYY-MM-DD) or an ISO 8601 date-time")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


@click.command("contacts")
@click.option("--policy", "-p", metavar="POLICY", help="policy YAML; default: bundled consumer-credit-cn")
@click.option(
    "--portfolio",
    required=True,
    metavar="FILE",
    help="accounts with their histories: .jsonl, .csv, .parquet, or a typed folder",
)
@click.option("--history", metavar="FILE", help="history CSV keyed by account_id (for a CSV portfolio)")
@click.option("--from", "since", required=True, metavar="DATE|ISO8601", help="start of the period (included)")
@click.option("--to", "until", required=True, metavar="DATE|ISO8601", help="end of the period (excluded)")
@click.option("--tz", "zone", default="UTC", show_default=True, help="zone of dates given without one")
@click.option("--at", "at", metavar="ISO8601", help="when the records were exported (default: now)")
@click.option(
    "--out", "-o", metavar="DIR", help="write violations.jsonl, errors.jsonl, summary.json, report.html"
)
@click.option(
    "--evaluator",
    type=click.Choice(EVALUATORS),
    default="auto",
    show_default=True,
    help="auto: typed for a typed folder (with the [portfolio] extra), fast otherwise; "
    "fast: screen each contact, re-derive only those it cannot clear; "
    "reference: re-derive every contact (same violations, slower); "
    "typed: screen whole accounts over the typed layout's columns (a typed folder, "
    "or any portfolio typed on the fly), the fast path only for those it cannot clear",
)
def contacts(
    policy: str | None,
    portfolio: str,
    history: str | None,
    since: str,
    until: str,
    zone: str,
    at: str | None,
    out: str | None,
    evaluator: Evaluator,
) -> None:
    """Check the contacts actually made against POLICY: every outbound history
    event in [--from, --to) is re-evaluated as of its own instant, on the
    history before it; each one a hold or guard would have blocked is a
    violation, classed legal, self-regulatory or policy.

    Exit 0 when no legal violation is found; 2 when one is; 1 on usage errors
    or when some accounts could not be audited (see errors.jsonl); 3 when the
    policy is invalid."""
    # portfolio-scale: the terminal tables and the HTML report come with [portfolio]
    needs_extra("portfolio", "escalation audit contacts")
    from rich.console import Console
    from rich.table import Table

    from escalation.contacts import audit_contacts

    start, end = _bound(since, zone, "--from"), _bound(until, zone, "--to")
    moment = parse_at(at)

    try:
        result = audit_contacts(
            policy or bundled(DEFAULT_POLICY),
            portfolio,
            start=start,
            end=end,
            at=moment,
            out=out,
            history=history,
            evaluator=evaluator,
        )
    except PolicyError as exc:
        policy_errors(exc)
    except (OSError, ValueError, UsageError, EscalationError) as exc:
        fail(str(exc))
    console = Console(width=max(Console().width, 120))
    mix = ", ".join(f"{n:,} {b}" for b, n in result.by_breach.items())
    rate = result.per_thousand(result.violations)
    if result.legal:
        head = f"FAIL {portfolio}: {result.legal:,} legal violations"
    else:
        head = f"ok {portfolio}: no legal violation"
    console.print(
        f"{head} in {result.contacts:,} contacts of {result.audited:,} accounts "
        f"({result.violations:,} violations, {rate:.2f} per 1,000 contacts: {mix})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"period    {start.isoformat()} .. {end.isoformat()} (end excluded); "
        f"policy {result.policy.id} {result.policy.version}; {result.errors:,} error rows",
        highlight=False,
        soft_wrap=True,
    )
    if result.undated_accounts:
        console.print(
            f"note      {result.undated_accounts:,} accounts carry undated state (flags, opt-outs, plans), "
            "applied to the whole period",
            highlight=False,
            soft_wrap=True,
        )
    if result.by_rule:
        table = Table(title="violations by hold or guard")
        for column in ("rule", "kind", "breach", "source"):
            table.add_column(column)
        for column in ("violations", "accounts", "per 1,000"):
            table.add_column(column, justify="right")
        for key, t in result.by_rule.items():
            style = "bold red" if t.breach == "legal" else None
            table.add_row(
                key, t.kind, t.breach, t.source, f"{t.violations:,}", f"{t.accounts:,}",
                f"{result.per_thousand(t.violations):.2f}", style=style,
            )  # fmt: skip
        console.print(table)
    actors = Table(title="contacts and violations by actor")
    actors.add_column("actor")
    for column in ("contacts", *BREACHES, "per 1,000"):
        actors.add_column(column, justify="right")
    for name, who in result.by_actor.items():
        actors.add_row(
            name, f"{who.contacts:,}", *(f"{who.violations.get(b, 0):,}" for b in BREACHES),
            f"{result.per_thousand(who.total, who.contacts):.2f}",
        )  # fmt: skip
    console.print(actors)
    for name, path in result.files.items():
        console.print(f"{name}: {path}", highlight=False)
    if result.legal:
        sys.exit(EXIT_DIFFER)
    if result.errors:
        sys.exit(EXIT_ERROR)
