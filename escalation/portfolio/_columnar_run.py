"""The dry-run's columnar path: portfolio rows typed into Arrow batches and
decided by :func:`~escalation.backends.columnar.decide_table` (the one code
path), as per-account outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from escalation.decision import ErrorRow
from escalation.policy import Policy
from escalation.portfolio.io import SourceRow, read_portfolio

__all__ = ["COLUMNAR_BATCH", "Outcome", "Reasons", "columnar_outcomes"]

Reasons = Literal["all", "changed", "none"]

COLUMNAR_BATCH = 32_768


@dataclass(frozen=True, slots=True)
class Outcome:
    """One account's result in a dry-run: both decisions, or its error row."""

    row: int
    source: str
    account_id: str | None
    balance: Decimal
    days_overdue: int
    candidate: dict[str, Any] | None
    baseline: dict[str, Any] | None
    error: ErrorRow | None


def _typed_batches(rows: Iterable[SourceRow], source: str) -> Iterator[Any]:
    """Rows of a JSONL/CSV/Parquet portfolio typed on the fly, in batches."""
    from escalation.portfolio.arrow import to_batch

    pending: list[tuple[int, Any]] = []
    for item in rows:
        error = item.error
        pending.append((item.row, {"__error__": error.model_dump(mode="json")} if error else item.record))
        if len(pending) >= COLUMNAR_BATCH:
            yield to_batch(pending, source)
            pending = []
    if pending:
        yield to_batch(pending, source)


def columnar_outcomes(
    portfolio: Path, history: str | Path | None, at: dt.datetime, candidate: Policy,
    baseline: Policy | None, reasons: Reasons, stats: dict[str, int],
) -> Iterator[Outcome]:  # fmt: skip
    """Outcomes from the columnar evaluator, batch by batch (the one code path:
    :func:`~escalation.backends.columnar.decide_table`)."""
    from escalation.backends.columnar import ColumnarPolicy, decide_table
    from escalation.portfolio.arrow import is_typed, read_typed

    policies = [ColumnarPolicy(candidate)] + ([ColumnarPolicy(baseline)] if baseline is not None else [])
    if is_typed(portfolio):
        batches = read_typed(portfolio, COLUMNAR_BATCH)
    else:
        batches = _typed_batches(read_portfolio(portfolio, history=history), str(portfolio))
    for batch in batches:
        res = decide_table(batch, policies, now=at, reasons=reasons)
        stats["vectorised"], stats["fallback"] = (
            stats["vectorised"] + res.vectorised,
            stats["fallback"] + res.fallback,
        )
        for i in range(len(batch)):
            err = res.errors[i]
            if err is not None:
                yield Outcome(res.rows[i], batch.source, err.account_id, Decimal(0), 0, None, None, err)
                continue
            old = res.decisions[1][i] if baseline is not None else None
            new = res.decisions[0][i]
            yield Outcome(res.rows[i], batch.source, res.ids[i], res.balances[i], res.days[i], new, old, None)
