"""The dry-run's columnar path: typed batches decided by
:func:`escalation.arrow.decide_result` (the one code path, shared with
:func:`escalation.arrow.decide_batches` and so the Spark and Ray adapters:
:func:`~escalation.backends.columnar.decide_table`'s Arrow decision tables) and
each folded on its own (:func:`~escalation.portfolio._fold.fold_part`) where it
was decided; the run adds the parts in batch order (``_fold.merge``).

With ``workers > 1`` each worker process reads its own batches of a typed
folder (:class:`~escalation.portfolio._typed_slices.TypedSlices`), decides and
folds them, and sends back only the encoded decisions and small tallies: this
process merges and writes. Other inputs (JSONL/CSV/Parquet records, typed on
the fly) are read and typed here, row by row as they must be, and sent to the
workers batch by batch."""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from escalation.policy import Policy
from escalation.portfolio._fold import Part, Plan, Tallies, fold, fold_part, merge
from escalation.portfolio.io import SourceRow, read_portfolio

__all__ = ["COLUMNAR_BATCH", "Part", "Plan", "Reasons", "Tallies", "columnar_results", "fold", "merge"]

Reasons = Literal["all", "changed", "none"]

COLUMNAR_BATCH = 32_768
_SPAN = 2  # typed batches a worker takes at once


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


def columnar_results(
    portfolio: Path, history: str | Path | None, at: dt.datetime, candidate: Policy,
    baseline: Policy | None, reasons: Reasons, stats: dict[str, int], workers: int = 1,
    plan: Plan | None = None,
) -> Iterator[Part]:  # fmt: skip
    """Each typed batch decided by :func:`escalation.arrow.decide_result` and
    folded on its own (:func:`~escalation.portfolio._fold.fold_part` under
    ``plan``), in batch order; ``stats`` counts the rows vectorised and decided
    by the reference engine.

    With ``workers > 1`` the batches are read (from a typed folder), decided
    and folded in that many processes, two consecutive typed batches (one of
    another input) per task: at most ``workers + 1`` tasks in flight, so memory
    stays flat."""
    from escalation.portfolio._typed_slices import TypedSlices
    from escalation.portfolio.arrow import is_typed

    plan = plan or Plan(None, baseline is not None, 0)
    slices = TypedSlices.open(portfolio, COLUMNAR_BATCH) if is_typed(portfolio) else None
    if workers <= 1:
        _WORKER.update(
            policies=_columnar(candidate, baseline), at=at, reasons=reasons, plan=plan, slices=slices
        )
        try:
            for batch in _batches(portfolio, history, slices):
                yield _counted(_decided(batch), stats)
        finally:
            _WORKER.clear()
        return
    from concurrent.futures import Future, ProcessPoolExecutor

    from escalation._processes import pool_context

    # not `fork`: this process runs Arrow's thread pool by now
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=pool_context(),
        initializer=_start_worker,
        initargs=(candidate, baseline, at, reasons, plan, slices),
    ) as pool:
        pending: deque[Future[list[Part]]] = deque()
        tasks: Iterable[list[Any]] = (
            (list(range(k, min(k + _SPAN, len(slices)))) for k in range(0, len(slices), _SPAN))
            if slices is not None
            else ([batch] for batch in _batches(portfolio, history, None))
        )
        for task in tasks:
            pending.append(pool.submit(_decided_run, task))
            if len(pending) > workers:
                yield from (_counted(part, stats) for part in pending.popleft().result())
        while pending:
            yield from (_counted(part, stats) for part in pending.popleft().result())


def _batches(portfolio: Path, history: str | Path | None, slices: Any) -> Iterator[Any]:
    if slices is not None:
        yield from range(len(slices))
        return
    from escalation.portfolio.arrow import is_typed, read_typed

    if is_typed(portfolio):  # events without row-group statistics: read in order
        yield from read_typed(portfolio, COLUMNAR_BATCH)
    else:
        yield from _typed_batches(read_portfolio(portfolio, history=history), str(portfolio))


def _columnar(candidate: Policy, baseline: Policy | None) -> list[Any]:
    from escalation.backends.columnar import ColumnarPolicy

    # the fold reads neither the validated accounts nor the offers: not kept
    chosen = [candidate] + ([baseline] if baseline is not None else [])
    return [ColumnarPolicy(p, accounts=False) for p in chosen]


# What this process decides with: set once per worker process by `_start_worker`
# (and for the run itself with one worker).
_WORKER: dict[str, Any] = {}


def _start_worker(
    candidate: Policy, baseline: Policy | None, at: dt.datetime, reasons: Reasons, plan: Plan, slices: Any
) -> None:
    _WORKER.update(policies=_columnar(candidate, baseline), at=at, reasons=reasons, plan=plan, slices=slices)


def _decided(task: Any) -> Part:
    """One batch (or the number of one in the typed folder) read, decided and folded."""
    from escalation.arrow import decide_result

    clock = time.process_time()
    batch = _WORKER["slices"].batch(task) if isinstance(task, int) else task
    read = time.process_time()
    stats: dict[str, int] = {}
    res = decide_result(batch, _WORKER["policies"], at=_WORKER["at"], reasons=_WORKER["reasons"], stats=stats)
    decided = time.process_time()
    part = fold_part(len(batch), res, _WORKER["plan"])
    part.stats = stats
    part.clocks = {"read": read - clock, "decide": decided - read, "fold": time.process_time() - decided}
    return part


def _decided_run(tasks: list[Any]) -> list[Part]:
    """Consecutive batches read, decided and folded by one worker (the row group
    holding the end of one and the start of the next is then decoded once)."""
    return [_decided(task) for task in tasks]


def _counted(part: Part, stats: dict[str, int]) -> Part:
    for key, value in part.stats.items():
        stats[key] = stats.get(key, 0) + value
    return part
