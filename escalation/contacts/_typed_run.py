"""The typed contact audit's reading: typed batches (a typed portfolio folder,
or any other portfolio typed on the fly), each screened over its columns
(:class:`~escalation.contacts._typed.TypedScreen`); the accounts it clears are
tallied by batch, every other row goes to the per-account path as a
:class:`~escalation.portfolio.io.SourceRow`, in input order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from escalation.contacts._check import ContactAuditor
from escalation.decision import ErrorRow
from escalation.portfolio.io import SourceRow, read_portfolio

__all__ = ["BATCH", "Cleared", "typed_results"]

#: accounts per typed batch
BATCH = 8192


@dataclass(frozen=True)
class Cleared:
    """Accounts of one batch the screen cleared: audited, no violation."""

    accounts: int
    contacts: dict[str, int]
    undated: int


def _batches(portfolio: str | Path, history: str | Path | None) -> Iterator[Any]:
    """Typed batches of ``portfolio``: read from a typed folder, else typed on the fly."""
    from escalation.portfolio.arrow import is_typed, read_typed, to_batch

    if is_typed(portfolio):
        yield from read_typed(portfolio, BATCH)
        return
    pending: list[tuple[int, Any]] = []
    for item in read_portfolio(portfolio, history=history):
        item = item.parsed()
        error = item.error
        pending.append((item.row, {"__error__": error.model_dump(mode="json")} if error else item.record))
        if len(pending) >= BATCH:
            yield to_batch(pending, str(portfolio))
            pending = []
    if pending:
        yield to_batch(pending, str(portfolio))


def _referred(batch: Any, indices: list[int]) -> Iterator[SourceRow]:
    """The rows the screen did not clear, rebuilt as records for the per-account path."""
    from escalation.portfolio.arrow import records_of

    rows = batch.accounts["row"].to_pylist()
    source = batch.source
    for i, record in zip(indices, records_of(batch, indices), strict=True):
        if isinstance(record, dict) and set(record) == {"__error__"}:
            yield SourceRow(source, rows[i], None, ErrorRow(**{**record["__error__"], "source": source}))
        else:
            # a reader yields objects only, so a typed row's record is one
            yield SourceRow(source, rows[i], cast("dict[str, Any]", record))


def typed_results(
    portfolio: str | Path,
    history: str | Path | None,
    auditor: ContactAuditor,
    span: tuple[dt.datetime, dt.datetime, dt.datetime],
    judge: Callable[[Iterable[SourceRow]], Iterator[Any]],
    stats: dict[str, int],
) -> Iterator[Any]:
    """For each batch: a :class:`Cleared` tally, then ``judge``'s results for
    the rows the screen did not clear (in input order)."""
    import numpy as np

    from escalation.contacts._typed import TypedScreen

    screen = TypedScreen(auditor)
    start, end, at = span
    for batch in _batches(portfolio, history):
        found = screen.screen(batch, start, end, at)
        cleared = int(found.cleared.sum())
        stats["accounts_cleared"] = stats.get("accounts_cleared", 0) + cleared
        stats["accounts_referred"] = stats.get("accounts_referred", 0) + len(batch) - cleared
        yield Cleared(cleared, found.contacts, found.undated)
        yield from judge(_referred(batch, np.flatnonzero(~found.cleared).tolist()))
