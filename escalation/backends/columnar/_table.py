"""``decide_table``: one typed batch, one or more policies → one output row per
input row (decisions, or the error row), vectorised where covered and by the
reference engine elsewhere."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import numpy as np

from escalation._currencies import MINOR_UNITS
from escalation._facts import account_zone
from escalation._ladder import LadderPlan
from escalation.backends.columnar._conditions import Unsupported
from escalation.backends.columnar._facts import Facts, derive_batch
from escalation.backends.columnar._ladder import Outcome, check_policy, decide
from escalation.decision import ErrorRow, error_row
from escalation.engine import Engine
from escalation.errors import EvaluationError, RecordError, UsageError
from escalation.policy import Policy
from escalation.portfolio.arrow import TypedBatch, records_of
from escalation.portfolio.writer import decision_row
from escalation.record import Account, days_overdue_on

__all__ = ["ColumnarPolicy", "TableResult", "choose_backend", "covers", "decide_table"]

Reasons = Literal["all", "changed", "none"]


def covers(policy: Policy) -> str | None:
    """``None`` when the columnar evaluator covers ``policy``; else why not."""
    try:
        check_policy(policy)
    except Unsupported as exc:
        return str(exc)
    return None


def choose_backend(backend: str, candidate: Policy, baseline: Policy | None, journal: bool) -> str:
    """The evaluator a dry-run uses: ``native`` when asked, or when ``auto``
    and the columnar evaluator does not cover a policy (or a journal is kept)."""
    if backend == "native":
        return "native"
    why = next((w for p in (candidate, baseline) if p is not None and (w := covers(p))), None)
    if backend == "columnar":
        if journal:
            raise UsageError("journaling a dry-run needs --backend native")
        if why is not None:
            raise UsageError(f"the columnar backend does not cover this policy: {why}")
        return "columnar"
    return "native" if why is not None or journal else "columnar"


class ColumnarPolicy:
    """A policy prepared for :func:`decide_table`: its ladder plan and its
    reference engine (for fallback rows and reasons)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.plan = LadderPlan.build(policy)
        self.engine = Engine(policy)
        self.unsupported = covers(policy)
        header = policy.header
        self.facts_key = (
            tuple(
                (t.model.id, tuple(t.model.counting_outcomes), t.model.ongoing, "third_party" in t.model.tags)
                for t in policy.tiers
            ),
            header.timezone,
            header.currency,
            repr(header.limitation),
            policy.flags,
        )


@dataclass
class TableResult:
    """Per input row: its row number, account id, balance and days overdue,
    one decision row per policy (``None`` for an error row) and the error row."""

    rows: list[int]
    ids: list[str | None]
    balances: list[Decimal]
    days: list[int]
    decisions: list[list[dict[str, Any] | None]]  # [policy][row]
    errors: list[ErrorRow | None]
    vectorised: int = 0
    fallback: int = 0
    reasons_rendered: int = 0
    accounts: dict[int, Account] = field(default_factory=dict)


def out_blocked(out: Any, i: int) -> list[str]:
    return sorted(gid for gid, rows in out.blocked.items() if rows[i])


def _row(policy: Policy, i: int, ids: list[Any], out: Any) -> dict[str, Any]:
    return {
        "account_id": ids[i],
        "status": out.status[i],
        "action": out.action[i],
        "channel": out.channel[i],
        "severity": int(out.severity[i]) or None,
        "reason": None,
        "next_eligible_at": out.next_eligible_at[i],
        "hold": out.hold[i],
        "blocked_guards": out_blocked(out, i),
        "policy_fingerprint": policy.fingerprint,
    }


def decide_table(
    batch: TypedBatch,
    policies: list[ColumnarPolicy],
    *,
    now: dt.datetime,
    reasons: Reasons = "none",
) -> TableResult:
    """Decide every row of ``batch`` under each policy at ``now``.

    Rows the vectorised path covers get their decision from it (``reason``
    is ``None`` unless ``reasons="all"``); every other row is decided by the
    reference engine, whose record error becomes the row's error. With
    ``reasons="changed"`` (two policies), rows whose status, action or channel
    differ get both reasons from the reference engine."""
    n = len(batch)
    facts_by: dict[Any, Facts] = {}
    outs: list[Outcome | None] = []
    fallback = np.zeros(n, bool)
    for cp in policies:
        if cp.unsupported is not None:
            fallback[:] = True
            outs.append(None)
            continue
        facts = facts_by.get(cp.facts_key)
        if facts is None:
            facts = facts_by[cp.facts_key] = derive_batch(batch, cp.policy, now)
        out = decide(cp.policy, cp.plan, facts)
        fallback |= ~out.covered
        outs.append(out)
    if reasons == "all":
        fallback[:] = True
    ids = batch.accounts.column("id").to_pylist()
    rows = batch.accounts.column("row").to_pylist()
    first = next(iter(facts_by.values()), None)
    currency = policies[0].policy.header.currency
    unit = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    balances = [
        b.quantize(unit) if b is not None else Decimal(0)
        for b in batch.accounts.column("balance").to_pylist()
    ]
    days = first.columns["days_overdue"].values.tolist() if first is not None else [0] * n
    result = TableResult(rows, ids, balances, days, [[None] * n for _ in policies], [None] * n)
    for p, (cp, done) in enumerate(zip(policies, outs, strict=True)):
        if done is None:
            continue
        column = result.decisions[p]
        for i in np.flatnonzero(~fallback).tolist():
            column[i] = _row(cp.policy, i, ids, done)
    result.vectorised = int((~fallback).sum())
    todo = np.flatnonzero(fallback).tolist()
    for i, record in zip(todo, records_of(batch, todo), strict=True):
        result.fallback += 1
        _reference(batch, policies, result, i, record, now)
    if reasons != "all":
        # a row the reference engine decided carries its reason; drop it unless it
        # is a changed row's (reasons="changed"), so the output does not depend on
        # which path decided a row
        for i in todo:
            decided = [row for p in range(len(policies)) if (row := result.decisions[p][i]) is not None]
            if len(decided) != len(policies):
                continue
            changed = len(decided) == 2 and (
                (decided[0]["status"], decided[0]["action"], decided[0]["channel"])
                != (decided[1]["status"], decided[1]["action"], decided[1]["channel"])
            )
            if not (reasons == "changed" and changed):
                for row in decided:
                    row["reason"] = None
    if reasons == "changed" and len(policies) == 2:
        for i in range(n):
            new, old = result.decisions[0][i], result.decisions[1][i]
            if new is None or old is None or new["reason"] is not None:
                continue
            if (new["status"], new["action"], new["channel"]) != (
                old["status"],
                old["action"],
                old["channel"],
            ):
                explain(batch, policies, result, i, now)
    return result


def _reference(
    batch: TypedBatch,
    policies: list[ColumnarPolicy],
    result: TableResult,
    i: int,
    record: object,
    now: dt.datetime,
) -> None:
    row, source = result.rows[i], batch.source
    if isinstance(record, dict) and set(record) == {"__error__"}:
        result.errors[i] = ErrorRow(**{**record["__error__"], "source": source})
        for column in result.decisions:
            column[i] = None
        return
    ident = record.get("id") if isinstance(record, dict) else None
    ident = ident if isinstance(ident, str) and 0 < len(ident) <= 128 and ident.isprintable() else None
    try:
        account = policies[0].engine.validate(record, now=now)  # type: ignore[arg-type]
        decisions = [decision_row(cp.engine.decide(account, now=now, trace=False)) for cp in policies]
    except (RecordError, EvaluationError) as exc:
        result.errors[i] = error_row(exc, row=row, source=source, account_id=ident)
        for column in result.decisions:
            column[i] = None
        return
    for p, decision in enumerate(decisions):
        result.decisions[p][i] = decision
    result.ids[i] = account.id
    result.balances[i] = account.balance
    today = now.astimezone(account_zone(account, policies[0].policy)).date()
    result.days[i] = days_overdue_on(account, today)
    result.accounts[i] = account


def explain(
    batch: TypedBatch,
    policies: list[ColumnarPolicy],
    result: TableResult,
    i: int,
    now: dt.datetime,
) -> None:
    """Fill row ``i``'s reasons from the reference engine (its decisions must agree)."""
    account = result.accounts.get(i)
    if account is None:
        record = records_of(batch, [i])[0]
        account = policies[0].engine.validate(record, now=now)  # type: ignore[arg-type]
    for p, cp in enumerate(policies):
        row = result.decisions[p][i]
        if row is None:
            continue
        row["reason"] = cp.engine.decide(account, now=now, trace=False).reason
    result.reasons_rendered += 1
