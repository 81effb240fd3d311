"""``decide_table``: one typed batch, one or more policies → one output row per
input row (decisions, or the error row), vectorised where covered and by the
reference engine elsewhere."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation._currencies import MINOR_UNITS
from escalation._facts import account_zone
from escalation._ladder import LadderPlan
from escalation.backends.columnar._conditions import Unsupported
from escalation.backends.columnar._explain import Explainer
from escalation.backends.columnar._facts import Facts, derive_batch
from escalation.backends.columnar._ladder import Outcome, check_policy, decide
from escalation.backends.columnar._offers import OfferChoice, offers_first
from escalation.backends.columnar._output import decision_table
from escalation.backends.columnar._why import Why, count
from escalation.decision import ErrorRow, error_row
from escalation.engine import Engine
from escalation.errors import EvaluationError, RecordError, UsageError
from escalation.policy import Policy
from escalation.portfolio.arrow import TypedBatch, records_of
from escalation.portfolio.writer import decision_row
from escalation.record import Account, days_overdue_on

__all__ = ["ColumnarPolicy", "TableResult", "choose_backend", "covers", "decide_reference", "decide_table"]

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
    reference engine (for fallback rows and reasons).

    ``accounts=False`` (a dry-run: it reads neither ``TableResult.accounts``
    nor the offers) skips validating the records of rows at status ``offer``
    through the reference engine, ~1 ms a row; the facts pass already sends
    every row that validation could refuse (currency, flags, channels, dates
    after now, attributes) to the reference engine."""

    def __init__(self, policy: Policy, *, accounts: bool = True) -> None:
        self.policy = policy
        self.accounts = accounts
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
            repr(header.promise),
            policy.flags,
        )


@dataclass
class TableResult:
    """Per input row: its row number, account id, balance and days overdue,
    one decision row per policy (``None`` for an error row) and the error row.

    With ``decide_table(..., dicts=False)`` the per-row lists (``rows``, ``ids``,
    ``balances``, ``days``, ``decisions``) are left empty and the same data is
    in columns: ``tables`` (one Arrow table of decision rows per policy, null
    rows for error rows), ``row_numbers``, ``balance_units`` (the balance in
    the currency's minor units), ``days_overdue`` and ``decided``."""

    rows: list[int]
    ids: list[str | None]
    balances: list[Decimal]
    days: list[int]
    decisions: list[list[dict[str, Any] | None]]  # [policy][row]
    errors: list[ErrorRow | None]
    vectorised: int = 0
    fallback: int = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)  # rows per reason (see `_why.REASONS`)
    reasons_rendered: int = 0
    # validated accounts of the rows the reference engine decided, and of rows with
    # status `offer` (their offers are not in a decision row: the simulator reads them)
    accounts: dict[int, Account] = field(default_factory=dict)
    tables: list[Any] = field(default_factory=list)
    # per table: the codes of some of its columns (`_coded.Codes` by column name), so the
    # dry-run's fold need not hash those string columns again
    codes: list[dict[str, Any]] = field(default_factory=list)
    # per policy: the offer and tier of each vectorised row at status `offer` (`_offers.OfferChoice`;
    # `None` for a policy not vectorised, and in the choice for a row it cannot name)
    offers: list[Any] = field(default_factory=list)
    row_numbers: Any = None
    balance_units: Any = None
    days_overdue: Any = None
    decided: Any = None
    minor_units: int = 2


def _quantized_units(batch: TypedBatch, minor: int) -> np.ndarray:
    """Balances in minor units (round half even, as ``Decimal.quantize``)."""
    from escalation.backends.columnar._column import _money

    units, _ok = _money(batch.accounts.column("balance"))
    step = 10 ** (4 - minor) if minor <= 4 else 1
    q, r = np.divmod(units, step)
    up = (2 * r > step) | ((2 * r == step) & (q % 2 == 1))
    result: np.ndarray = q + up
    return result


def decide_table(
    batch: TypedBatch,
    policies: list[ColumnarPolicy],
    *,
    now: dt.datetime,
    reasons: Reasons = "none",
    dicts: bool = True,
) -> TableResult:
    """Decide every row of ``batch`` under each policy at ``now``.

    Rows the vectorised path covers get their decision from it (``reason``
    is ``None`` unless ``reasons="all"``); every other row is decided by the
    reference engine, whose record error becomes the row's error. With
    ``reasons="changed"`` (two policies), rows whose status, action or channel
    differ get both reasons from the reference engine. ``dicts=False`` returns
    columns (``TableResult.tables``) instead of per-row dicts."""
    return _decide_rows(batch, policies, now, reasons, dicts, reference=False)


def decide_reference(
    batch: TypedBatch, policies: list[ColumnarPolicy], *, now: dt.datetime, reasons: Reasons = "none"
) -> TableResult:
    """:func:`decide_table` (``dicts=False``) with every row decided by the
    reference engine: the fail-closed path for a batch the vectorised path
    cannot take (same result layout, same reasons rule)."""
    return _decide_rows(batch, policies, now, reasons, False, reference=True)


def _decide_rows(
    batch: TypedBatch,
    policies: list[ColumnarPolicy],
    now: dt.datetime,
    reasons: Reasons,
    dicts: bool,
    reference: bool,
) -> TableResult:
    n = len(batch)
    facts_by: dict[Any, Facts] = {}
    result_accounts: dict[int, Account] = {}
    outs: list[Outcome | None] = []
    chosen: list[OfferChoice | None] = []
    why = Why(n)
    for cp in policies:
        if reference or cp.unsupported is not None:
            why.mark("batch not vectorised" if reference else "policy not covered", np.ones(n, bool))
            outs.append(None)
            chosen.append(None)
            continue
        facts = facts_by.get(cp.facts_key)
        if facts is None:
            facts = facts_by[cp.facts_key] = derive_batch(batch, cp.policy, now)
        out = decide(cp.policy, cp.plan, facts)
        uncovered = ~out.covered & ~why.mask
        why.code[uncovered] = out.why[uncovered]
        why.mask |= uncovered
        unsure, choice = offers_first(cp.policy, facts, out)
        why.mark("offer action", unsure)  # status `offer`
        outs.append(out)
        chosen.append(choice)
    if reasons == "all":
        why.mark("reasons asked", np.ones(n, bool))
    offered = np.logical_or.reduce(
        [o.status.equals("offer") for o in outs if o is not None] or [np.zeros(n, bool)]
    )
    offered &= ~why.mask
    # their offers (not in a decision row) are read from the validated account
    if policies[0].accounts and offered.any():
        rows = np.flatnonzero(offered).tolist()
        for i, record in zip(rows, records_of(batch, rows), strict=True):
            try:
                result_accounts[i] = policies[0].engine.validate(record, now=now)  # type: ignore[arg-type]
            except RecordError:
                why.mark("offer action", np.asarray([i]))
    fallback = why.mask
    result_offers = [c.without(fallback) if c is not None else None for c in chosen]
    currency = policies[0].policy.header.currency
    minor = MINOR_UNITS.get(currency, 2)
    first = next(iter(facts_by.values()), None)
    id_column = batch.accounts.column("id").combine_chunks()
    result = TableResult(
        [], [], [], [], [], [None] * n, minor_units=minor, accounts=result_accounts, offers=result_offers
    )
    result.row_numbers = np.asarray(pc.fill_null(batch.accounts.column("row"), 0), dtype=np.int64)
    result.balance_units = np.zeros(n, np.int64) if reference else _quantized_units(batch, minor)
    result.days_overdue = (
        first.columns["days_overdue"].values.copy() if first is not None else np.zeros(n, np.int64)
    )
    result.vectorised = int((~fallback).sum())
    todo_rows = np.flatnonzero(fallback)
    result.fallback_reasons = count(why.code, todo_rows)
    todo = todo_rows.tolist()
    # the ids as Python strings only where rows are patched or dicts asked (32k strings cost ~3 ms)
    ids = np.asarray(id_column.to_numpy(zero_copy_only=False), dtype=object) if todo or dicts else None
    patches: list[dict[int, dict[str, Any]]] = [{} for _ in policies]
    for i, record in zip(todo, records_of(batch, todo), strict=True):
        result.fallback += 1
        _reference(batch, policies, result, i, record, now, patches, ids)  # type: ignore[arg-type]
    if reasons != "all":
        # a row the reference engine decided carries its reason; drop it unless it
        # is a changed row's (reasons="changed"), so the output does not depend on
        # which path decided a row
        for i in todo:
            decided = [p[i] for p in patches if i in p]
            if len(decided) != len(policies):
                continue
            if not (reasons == "changed" and len(decided) == 2 and _differ(decided[0], decided[1])):
                for row in decided:
                    row["reason"] = None
    valid = np.asarray([e is None for e in result.errors], dtype=bool) if todo else np.ones(n, bool)
    result.decided = valid
    vectorised = ~fallback
    if reasons == "changed" and len(policies) == 2 and outs[0] is not None and outs[1] is not None:
        a, b = outs[0], outs[1]
        moved = vectorised & (
            a.status.differs(b.status) | a.action.differs(b.action) | a.channel.differs(b.channel)
        )
        rows = np.flatnonzero(moved).tolist()
        if rows:
            _explain_rows(batch, policies, result, rows, now, patches)
            vectorised &= ~moved  # their rows now come from the reference engine, with reasons
    id_array = pa.array(ids, pa.string(), mask=~valid) if ids is not None else id_column
    for p, cp in enumerate(policies):
        # (the table and its label columns' codes; the name benchmarks/dry_run.py clocks)
        table, codes = decision_table(
            n, id_array, cp.policy.fingerprint, outs[p], vectorised, patches[p], valid
        )
        result.tables.append(table)
        result.codes.append(codes)
    if dicts:
        result.rows = result.row_numbers.tolist()
        flags = valid.tolist()
        assert ids is not None
        pairs = zip(ids.tolist(), flags, result.errors, strict=True)
        result.ids = [ident if ok else e.account_id if e else None for ident, ok, e in pairs]
        unit = Decimal(1).scaleb(-minor)
        units = zip(result.balance_units.tolist(), flags, strict=True)
        result.balances = [Decimal(int(u)) * unit if ok else Decimal(0) for u, ok in units]
        days = zip(result.days_overdue.tolist(), flags, strict=True)
        result.days = [d if ok else 0 for d, ok in days]
        result.decisions = [
            [row if ok else None for row, ok in zip(table.to_pylist(), flags, strict=True)]
            for table in result.tables
        ]
    return result


def _differ(new: dict[str, Any], old: dict[str, Any]) -> bool:
    return (new["status"], new["action"], new["channel"]) != (old["status"], old["action"], old["channel"])


def _reference(
    batch: TypedBatch,
    policies: list[ColumnarPolicy],
    result: TableResult,
    i: int,
    record: object,
    now: dt.datetime,
    patches: list[dict[int, dict[str, Any]]],
    ids: np.ndarray,
) -> None:
    row, source = batch.accounts.column("row")[i].as_py(), batch.source  # None: rows not numbered
    if isinstance(record, dict) and set(record) == {"__error__"}:
        result.errors[i] = ErrorRow(**{**record["__error__"], "source": source})
        return
    ident = record.get("id") if isinstance(record, dict) else None
    ident = ident if isinstance(ident, str) and 0 < len(ident) <= 128 and ident.isprintable() else None
    try:
        account = policies[0].engine.validate(record, now=now)  # type: ignore[arg-type]
        decisions = [decision_row(cp.engine.decide(account, now=now, trace=False)) for cp in policies]
    except (RecordError, EvaluationError) as exc:
        result.errors[i] = error_row(exc, row=row, source=source, account_id=ident)
        return
    for p, decision in enumerate(decisions):
        patches[p][i] = decision
    ids[i] = account.id
    result.balance_units[i] = int(account.balance.scaleb(result.minor_units).to_integral_value())
    today = now.astimezone(account_zone(account, policies[0].policy)).date()
    result.days_overdue[i] = days_overdue_on(account, today)
    result.accounts[i] = account


def _explain_rows(
    batch: TypedBatch,
    policies: list[ColumnarPolicy],
    result: TableResult,
    rows: list[int],
    now: dt.datetime,
    patches: list[dict[int, dict[str, Any]]],
) -> None:
    """Decide ``rows`` (vectorised, changed) with the reference engine for their
    reasons (its decisions agree with the vectorised ones: the differential tests)."""
    explainer = Explainer([cp.engine for cp in policies], now)  # validated and facts derived once
    for i, record in zip(rows, records_of(batch, rows), strict=True):
        for p, row in enumerate(explainer.rows(record)):
            patches[p][i] = row
        result.reasons_rendered += 1
