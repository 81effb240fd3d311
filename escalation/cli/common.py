"""Pieces every CLI module shares: exit codes, error printing, ``--at``.

Kept apart from :mod:`escalation.cli` so command modules can use them without
importing the command group (which imports them back)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import NoReturn

import click

from escalation.errors import PolicyError
from escalation.record import in_range

__all__ = ["EXIT_DIFFER", "EXIT_ERROR", "EXIT_OK", "EXIT_POLICY", "fail", "parse_at", "policy_errors"]

EXIT_OK, EXIT_ERROR, EXIT_DIFFER, EXIT_POLICY = 0, 1, 2, 3


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    click.echo(f"escalation: {message}", err=True)
    sys.exit(code)


def needs_extra(extra: str, feature: str) -> None:
    """Exit 1 with one line naming the extra to install when it is missing."""
    from escalation._extras import require
    from escalation.errors import MissingExtraError

    try:
        require(extra, feature)
    except MissingExtraError as exc:
        fail(str(exc))


def policy_errors(exc: PolicyError) -> NoReturn:
    """Print every policy issue and exit 3."""
    for issue in exc.issues:
        click.echo(str(issue), err=True)
    sys.exit(EXIT_POLICY)


def parse_at(value: str | None) -> dt.datetime:
    """``--at``: an ISO 8601 instant with offset; the current time if absent."""
    if value is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    shown = value if len(value) <= 40 and value.isprintable() else "value"
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"--at `{shown}` is not an ISO 8601 date-time")
    if moment.tzinfo is None:
        fail(f"--at `{shown}` needs a UTC offset (e.g. `+08:00` or `Z`)")
    try:
        moment.astimezone(dt.UTC)
    except OverflowError:
        fail(f"--at `{shown}` is outside the supported range 1900-01-01..2199-12-31")
    if not in_range(moment):
        fail(f"--at `{shown}` is outside the supported range 1900-01-01..2199-12-31")
    return moment
