"""``escalation audit``: verify, replay, show, query and report on a decision journal.

JOURNAL is a ``.jsonl`` file, a ``.sqlite``/``.db`` file, or a
``postgresql://`` DSN. Exit codes: 0 ok; 1 usage or runtime error; 2 the
journal fails verification, a replayed decision differs, or the report
finds a contact a guard should have blocked."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, NoReturn

import click

from escalation.errors import EscalationError
from escalation.journal import Journal, JournalRecord, open_journal
from escalation.journal.masking import Masking

__all__ = ["audit", "open_cli_journal"]

EXIT_ERROR, EXIT_DIFFER = 1, 2


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"escalation: {message}", err=True)
    sys.exit(code)


def open_cli_journal(target: str | None, *, create: bool = True) -> Journal | None:
    """The journal for a ``--journal`` option (``None`` when not given),
    masking keyed by ``$ESCALATION_AUDIT_KEY`` when it is set; exits 1 with a
    message when it cannot be opened. For commands that decide (``decide``,
    ``dry-run``): pass the result as ``Engine(..., journal=...)``."""
    if target is None:
        return None
    try:
        return open_journal(target, masking=Masking.from_env(), create=create)
    except EscalationError as exc:
        _fail(str(exc))


def _reader(target: str) -> Journal:
    journal = open_cli_journal(target, create=False)
    assert journal is not None
    return journal


def _instant(value: str | None, zone: str, *, end: bool = False) -> dt.datetime | None:
    """``--from``/``--to``: a date (start of that day in ``--tz``; for ``--to``
    the day is included) or an ISO 8601 instant with an offset."""
    if value is None:
        return None
    from escalation.record import zone as tz_of

    try:
        tz = tz_of(zone)
    except ValueError as exc:
        _fail(str(exc))
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end else 0)
            return dt.datetime.combine(day, dt.time(), tz)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        _fail(f"`{value}` is not a date (YYYY-MM-DD) or an ISO 8601 date-time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment


def _period_options(func: Any) -> Any:
    func = click.option(
        "--tz", "zone", default="UTC", show_default=True, help="zone of dates given without one"
    )(func)
    func = click.option(
        "--to", "until", metavar="DATE|ISO8601", help="end (a date is included; an instant is not)"
    )(func)
    return click.option("--from", "since", metavar="DATE|ISO8601", help="start (included)")(func)


@click.group()
def audit() -> None:
    """The decision journal: verify, replay, show, query, report."""


@audit.command()
@click.argument("journal")
@click.option("--expect-head", metavar="SEQ:HASH", help="a head printed by an earlier verify, kept elsewhere")
@click.option("--no-policies", is_flag=True, help="skip rebuilding the stored policies")
@click.option(
    "--allow-unanchored-tail",
    is_flag=True,
    help="records beyond the head anchor are a note, not a failure (after a writer crashed)",
)
def verify(journal: str, expect_head: str | None, no_policies: bool, allow_unanchored_tail: bool) -> None:
    """Check the hash chain, order, anchor and stored policies (exit 2 on failure)."""
    from escalation.journal.audit import verify as run

    try:
        result = run(
            _reader(journal),
            check_policies=not no_policies,
            expect_head=expect_head,
            allow_unanchored_tail=allow_unanchored_tail,
        )
    except EscalationError as exc:
        _fail(str(exc))
    for note in result.notes:
        click.echo(f"note: {note}")
    if not result.ok:
        first = result.first
        assert first is not None
        click.echo(f"FAIL {result.journal}: first bad record: {first}")
        for problem in result.problems[1:]:
            click.echo(f"     also: {problem}")
        sys.exit(EXIT_DIFFER)
    click.echo(
        f"ok {result.journal}: {result.records} records, {result.policies} policies; "
        f"head {result.head or '(empty)'}"
    )


@audit.command()
@click.argument("journal")
@click.option("--id", "ids", multiple=True, metavar="ID", help="replay only these records (repeatable)")
@click.option("--strict-version", is_flag=True, help="a different engine version is a difference too")
@click.option("--verbose", "-v", is_flag=True, help="list every record, not only those that differ")
def replay(journal: str, ids: tuple[str, ...], strict_version: bool, verbose: bool) -> None:
    """Re-decide from the stored input, policy and `now`; report differences (exit 2 if any)."""
    from escalation.journal.audit import replay as run

    total = same = 0
    notes: set[str] = set()
    try:
        for result in run(_reader(journal), ids=ids or None, strict_version=strict_version):
            total += 1
            notes.update(result.notes)
            if result.same:
                same += 1
                if verbose:
                    click.echo(f"same    seq {result.seq} {result.id} account {result.account_id}")
                continue
            click.echo(f"DIFFERS seq {result.seq} {result.id} account {result.account_id}")
            for diff in result.differences:
                click.echo(f"        {diff}")
    except EscalationError as exc:
        _fail(str(exc))
    for note in sorted(notes):
        click.echo(f"note: {note}")
    if ids and total < len(set(ids)):
        _fail(f"{len(set(ids)) - total} of the given ids are not in the journal")
    click.echo(f"{total} replayed, {same} identical, {total - same} differ")
    if same != total:
        sys.exit(EXIT_DIFFER)


def _find(journal: Journal, record_id: str) -> JournalRecord:
    from escalation.journal.audit import iter_records

    for record in iter_records(journal):
        if record.id == record_id or str(record.seq) == record_id:
            return record
    _fail(f"no record `{record_id}` in `{journal.name}`")


@audit.command()
@click.argument("record_id", metavar="ID")
@click.option("--journal", "-j", required=True, help="the journal")
@click.option("--lang", type=click.Choice(["en", "zh-CN"]), default=None, help="language of the headings")
def show(record_id: str, journal: str, lang: str | None = None) -> None:
    """Explain one journaled decision (ID: its id or its seq)."""
    from escalation.explain import render_text

    try:
        record = _find(_reader(journal), record_id)
        decision = record.decision_model()
    except EscalationError as exc:
        _fail(str(exc))
    click.echo(f"record      {record.id} (seq {record.seq}, recorded {record.recorded_at})")
    click.echo(f"now         {record.now}")
    click.echo(f"masked      {', '.join(record.masked.paths) or '(nothing)'} (key {record.masked.key_id})")
    click.echo(f"hash        {record.hash}")
    click.echo(render_text(decision, lang or "en"), nl=False)  # type: ignore[arg-type]
    if not record.trace:
        click.echo("(journaled without a trace: `escalation audit replay` re-decides it)")


@audit.command()
@click.option("--journal", "-j", required=True, help="the journal")
@click.option("--account", help="account id")
@click.option("--action", help="decided action (tier id)")
@click.option("--status", type=click.Choice(["act", "wait", "hold", "none"]))
@click.option("--guard", help="decisions in which this guard blocked something")
@click.option("--address", help="contact address used in the history (needs $ESCALATION_AUDIT_KEY)")
@_period_options
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def query(
    journal: str,
    account: str | None,
    action: str | None,
    status: str | None,
    guard: str | None,
    address: str | None,
    since: str | None,
    until: str | None,
    zone: str,
    fmt: str,
) -> None:
    """List journaled decisions matching every filter."""
    from escalation.journal.audit import query as run

    count = 0
    try:
        for record in run(
            _reader(journal),
            account=account,
            action=action,
            status=status,
            guard=guard,
            address=address,
            since=_instant(since, zone),
            until=_instant(until, zone, end=True),
        ):
            count += 1
            if fmt == "jsonl":
                click.echo(record.model_dump_json())
                continue
            d = json.loads(record.decision)
            blocked = ",".join(sorted({b["guard"] for b in d["blocked"]})) or "-"
            click.echo(
                f"{record.seq:>6} {record.id} {record.now} {record.account_id} {d['status']:<4} "
                f"{d['action'] or '-'}/{d['channel'] or '-'} blocked:{blocked}"
            )
    except EscalationError as exc:
        _fail(str(exc))
    if fmt == "table":
        click.echo(f"{count} decisions")


@audit.command()
@click.option("--journal", "-j", required=True, help="the journal")
@_period_options
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def report(journal: str, since: str | None, until: str | None, zone: str, as_json: bool) -> None:
    """Compliance report for a period: per guard, contacts decided and any a guard
    should have blocked (exit 2 if any)."""
    from escalation.journal.audit import report as run

    try:
        result = run(_reader(journal), since=_instant(since, zone), until=_instant(until, zone, end=True))
    except EscalationError as exc:
        _fail(str(exc))
    lines = sorted(result.guards.values(), key=lambda g: (g.source, g.guard))
    if as_json:
        data = {
            "journal": result.journal,
            "from": result.since.isoformat() if result.since else None,
            "to": result.until.isoformat() if result.until else None,
            "decisions": result.decisions,
            "statuses": result.statuses,
            "acts": result.acts,
            "unverified": result.unverified,
            "ok": result.ok,
            "guards": [vars(line) for line in lines],
            "violations": [vars(v) for v in result.violations],
        }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        period = f"{result.since.isoformat() if result.since else '(start)'} .. "
        period += result.until.isoformat() if result.until else "(end)"
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(result.statuses.items())) or "none"
        click.echo(f"journal   {result.journal}\nperiod    {period} (end excluded)")
        click.echo(f"decisions {result.decisions} ({statuses})\n")
        click.echo(
            f"{'source':<22} {'guard':<38} {'contacts':>8} {'passed':>7} {'blocked':>7} {'violations':>10}"
        )
        for g in lines:
            click.echo(
                f"{g.source:<22} {g.guard:<38} {g.contacts:>8} {g.checked:>7} {g.blocked:>7} "
                f"{len(g.violations):>10}"
            )
        click.echo("")
        if result.unverified:
            click.echo(f"note: {result.unverified} guard checks are not shown in any trace")
        for v in result.violations:
            click.echo(f"VIOLATION seq {v.seq} {v.id} account {v.account_id}: guard `{v.guard}` {v.why}")
        if result.ok:
            click.echo("ok: no decided contact was blocked by a guard")
        else:
            click.echo(f"FAIL: {len(result.violations)} decided contacts a guard should have blocked")
    if not result.ok:
        sys.exit(EXIT_DIFFER)


from escalation.cli.contacts import contacts  # noqa: E402 - the contact audit lives in its own module

audit.add_command(contacts)
