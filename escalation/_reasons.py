"""Readable figures for reasons and explanations: money with its currency,
durations in days and hours, instants in the account's zone."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from escalation._currencies import MINOR_UNITS
from escalation._facts import Situation, is_money
from escalation.policy._expr import MISSING, Compiled, comparisons

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


def money(amount: Decimal, currency: str) -> str:
    """``CNY 1,200.00``."""
    places = MINOR_UNITS.get(currency, 2)
    return f"{currency} {amount:,.{places}f}"


def value(name: str, raw: Any, currency: str) -> str:
    """One fact value as a person reads it."""
    if raw is MISSING or raw is None:
        return "unknown"
    if is_money(name) and isinstance(raw, Decimal | int):
        return money(Decimal(raw), currency)
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    if isinstance(raw, frozenset | set):
        return "[" + ", ".join(sorted(str(v) for v in raw)) + "]" if raw else "none"
    if isinstance(raw, dt.datetime | dt.date):
        return raw.isoformat()
    return str(raw)


def ago(delta: dt.timedelta) -> str:
    """``2 days ago``, ``5 hours ago``."""
    hours = int(delta.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days ago"
    if hours >= 24:
        return "1 day ago"
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return f"{max(int(delta.total_seconds() // 60), 0)} minutes ago"


def condition_figures(compiled: Compiled, sit: Situation) -> str:
    """``days_overdue 12 (>= 8); amount_overdue CNY 600.00 (>= 500)``."""
    parts = []
    currency = sit.account.currency
    for fact, op, constant in comparisons(compiled):
        got = sit.values.get(fact, MISSING)
        shown = value(fact, got, currency)
        if op == "is":
            parts.append(f"{fact} {shown}")
        elif op in ("contains", "lacks"):
            parts.append(f"{fact} {shown} ({op} `{constant}`)")
        else:
            limit = money(Decimal(constant), currency) if is_money(fact) else constant
            parts.append(f"{fact} {shown} ({op} {limit})")
    return "; ".join(parts) if parts else f"`{compiled.canonical}` holds"


def instant(moment: dt.datetime, sit: Situation) -> str:
    """An instant in the account's zone, ISO 8601."""
    return moment.astimezone(sit.tz).isoformat()


def fill(template: str, sit: Situation) -> str:
    """Replace ``{fact}`` / ``{record.date}`` placeholders with figures."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in sit.values:
            return value(name, sit.values[name], sit.account.currency)
        recorded = sit.record_date(name)
        if recorded is not None:
            return recorded.isoformat()
        return match.group(0)

    return _PLACEHOLDER.sub(one, template)
