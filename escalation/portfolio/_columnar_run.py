"""The dry-run's columnar path: typed batches decided by
:func:`escalation.arrow.decide_result` (the one code path, shared with
:func:`escalation.arrow.decide_batches` and so the Spark and Ray adapters:
:func:`~escalation.backends.columnar.decide_table`'s Arrow decision tables) and
each folded on its own (:func:`~escalation.portfolio._fold.fold_part`) where it
was decided; the run adds the parts in batch order (``_fold.merge``).

With ``workers > 1`` each worker process reads its own batches of a typed
folder (:class:`~escalation.portfolio._typed_slices.TypedSlices`), decides and
folds them, and sends back only where their encoded decisions are and small
tallies: JSON lines are written by the workers themselves at their place in
the decisions files (:mod:`~escalation.portfolio._placed`; a batch encoded
before the one ahead of it is spooled and copied in by a worker), Parquet-bound
tables are spooled (:mod:`~escalation.portfolio._spool`) and this process
copies them in, in batch order. Other inputs (JSONL/CSV/Parquet records, typed
on the fly) are read and typed here, row by row as they must be, and sent to
the workers batch by batch."""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from escalation.policy import Policy
from escalation.portfolio._fold import Part, Plan, Tallies, fold, fold_part, merge
from escalation.portfolio._spool import Spooled, SpoolFiles, release, spool_folder
from escalation.portfolio.io import SourceRow, read_portfolio

if TYPE_CHECKING:
    from concurrent.futures import Future

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
) -> Generator[Part, None, None]:  # fmt: skip
    """Each typed batch decided by :func:`escalation.arrow.decide_result` and
    folded on its own (:func:`~escalation.portfolio._fold.fold_part` under
    ``plan``), in batch order; ``stats`` counts the rows vectorised and decided
    by the reference engine.

    With ``workers > 1`` the batches are read (from a typed folder), decided
    and folded in that many processes, two consecutive typed batches (one of
    another input) per task: at most ``workers + 1`` tasks in flight, so memory
    stays flat. With an output folder (``plan.out``) the workers spool their
    encoded decisions in a temporary folder inside it, removed when this
    generator ends (close it: the caller's error then removes it too)."""
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
    # with an output folder, workers spool their encoded decisions in it and
    # send back only where (escalation.portfolio._spool): gone with the run
    with spool_folder(plan.out) if plan.out is not None and plan.fmt is not None else nullcontext() as spool:
        start = (candidate, baseline, at, reasons, plan, slices, str(spool) if spool else None)
        yield from _pooled(portfolio, history, start, stats, workers)


def _pooled(
    portfolio: Path, history: str | Path | None, start: tuple[Any, ...], stats: dict[str, int], workers: int
) -> Iterator[Part]:
    from concurrent.futures import ProcessPoolExecutor

    from escalation._processes import pool_context

    slices = start[5]
    # not `fork`: this process runs Arrow's thread pool by now
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=pool_context(), initializer=_start_worker, initargs=start
    ) as pool:
        pending: deque[Future[list[Part]]] = deque()
        tasks: Iterable[list[Any]] = (
            (list(range(k, min(k + _SPAN, len(slices)))) for k in range(0, len(slices), _SPAN))
            if slices is not None
            else ([batch] for batch in _batches(portfolio, history, None))
        )
        try:
            for number, task in enumerate(tasks):
                pending.append(pool.submit(_decided_run, task, number))
                if len(pending) > workers:
                    yield from _received(pending.popleft(), stats)
            while pending:
                yield from _received(pending.popleft(), stats)
        except BaseException:  # tasks not yet started are dropped, not run for nothing
            pool.shutdown(cancel_futures=True)
            raise
        # every task is done and its spool files closed: the workers exit (freeing
        # their memory, ~0.1 s) while this process writes the summary and report
        # (the block's own shutdown then has nothing left to wait for)
        pool.shutdown(wait=False)


def _received(future: Future[list[Part]], stats: dict[str, int]) -> Iterator[Part]:
    """A task's parts in order, then its spool files deleted: the caller has
    written each part before asking for the next (``_fold.merge``)."""
    parts = future.result()
    yield from (_counted(part, stats) for part in parts)
    release(ref for part in parts for ref in part.outputs.values() if isinstance(ref, Spooled))


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
    candidate: Policy, baseline: Policy | None, at: dt.datetime, reasons: Reasons, plan: Plan, slices: Any,
    spool: str | None,
) -> None:  # fmt: skip
    _WORKER.update(
        policies=_columnar(candidate, baseline), at=at, reasons=reasons, plan=plan, slices=slices, spool=spool
    )


def _decided(task: Any, spool: SpoolFiles | None = None) -> Part:
    """One batch (or the number of one in the typed folder) read, decided and folded."""
    from escalation.arrow import decide_result

    clock = time.process_time()
    batch = _WORKER["slices"].batch(task) if isinstance(task, int) else task
    read = time.process_time()
    stats: dict[str, int] = {}
    res = decide_result(batch, _WORKER["policies"], at=_WORKER["at"], reasons=_WORKER["reasons"], stats=stats)
    decided = time.process_time()
    part = fold_part(len(batch), res, _WORKER["plan"], spool)
    part.stats = stats
    part.clocks = {"read": read - clock, "decide": decided - read, "fold": time.process_time() - decided}
    return part


def _decided_run(tasks: list[Any], number: int) -> list[Part]:
    """Consecutive batches read, decided and folded by one worker (the row group
    holding the end of one and the start of the next is then decoded once),
    their decisions spooled to the files of task ``number``."""
    spool = SpoolFiles(_WORKER["spool"], number) if _WORKER["spool"] is not None else None
    try:
        return [_decided(task, spool) for task in tasks]
    finally:
        if spool is not None:
            spool.close()


def _counted(part: Part, stats: dict[str, int]) -> Part:
    for key, value in part.stats.items():
        stats[key] = stats.get(key, 0) + value
    return part
