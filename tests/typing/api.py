"""Public-API usage that must type-check under ``mypy --strict`` (not run by pytest)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from escalation import (
    Account,
    Decision,
    Engine,
    ErrorRow,
    EscalationError,
    PolicyError,
    RecordError,
    load_policy,
    parse_account,
    render_text,
)

NOW = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)


def decide_one(engine: Engine, record: dict[str, object]) -> str | None:
    decision: Decision = engine.decide(record, now=NOW)
    return decision.action


def decide_typed(engine: Engine, account: Account) -> dt.datetime | None:
    return engine.decide(account, now=NOW).next_eligible_at


def batch(engine: Engine, accounts: list[Account]) -> Iterator[str]:
    for result in engine.decide_many(accounts, now=NOW):
        if isinstance(result, ErrorRow):
            yield result.message
        else:
            yield result.status


def load(path: str) -> int:
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        return exc.line
    engine = Engine(policy, backend="native")
    account = parse_account(
        {"id": "A", "currency": "CNY", "amount_overdue": "1", "balance": "1", "days_overdue": 1}
    )
    try:
        text: str = render_text(engine.decide(account, now=NOW))
    except RecordError as exc:
        return len(exc.issues)
    except EscalationError:
        return -1
    return len(text)
