"""The dry-run's columnar path: typed batches decided by
:func:`escalation.arrow.decide_result` (the one code path, shared with
:func:`escalation.arrow.decide_batches` and so the Spark and Ray adapters:
:func:`~escalation.backends.columnar.decide_table`'s Arrow decision tables) and
folded into the dry-run's tallies batch by batch — decisions written as Arrow
tables (Parquet row groups, or JSON lines built by Arrow), summaries by
group-bys; only error rows and changed accounts are handled one by one."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

from escalation.policy import Policy
from escalation.portfolio.io import SourceRow, read_portfolio
from escalation.portfolio.results import BUCKETS, AccountChange, change_row

__all__ = ["COLUMNAR_BATCH", "Reasons", "Tallies", "columnar_results", "fold"]

Reasons = Literal["all", "changed", "none"]

COLUMNAR_BATCH = 32_768
_LIMITS = [limit for limit, _ in BUCKETS]
_BUCKET_NAMES = [name for _, name in BUCKETS] + ["181+"]


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
) -> Iterator[tuple[Any, Any]]:  # fmt: skip
    """(batch, :class:`~escalation.backends.columnar.TableResult`) for each typed
    batch, in order, decided by :func:`escalation.arrow.decide_result` — the
    step under :func:`escalation.arrow.decide_batches` too (one code path).

    With ``workers > 1`` the batches are decided in that many processes (this
    process reads, folds and writes): at most ``2 × workers`` batches in flight,
    so memory stays flat. A worker's result comes back without the validated
    accounts and offers it kept for the simulator (the fold reads neither), and
    the batch is then given as its row count only (all the fold reads of it)."""
    from escalation.arrow import decide_result
    from escalation.portfolio.arrow import is_typed, read_typed

    if is_typed(portfolio):
        batches = read_typed(portfolio, COLUMNAR_BATCH)
    else:
        batches = _typed_batches(read_portfolio(portfolio, history=history), str(portfolio))
    if workers <= 1:
        policies = _columnar(candidate, baseline)
        for batch in batches:
            yield batch, decide_result(batch, policies, at=at, reasons=reasons, stats=stats)
        return
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    from escalation._processes import pool_context

    # not `fork`: this process runs Arrow's thread pool by now
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=pool_context(),
        initializer=_start_worker,
        initargs=(candidate, baseline, at, reasons),
    ) as pool:
        pending: deque[Future[tuple[int, Any, dict[str, int]]]] = deque()
        for batch in batches:
            pending.append(pool.submit(_decide_in_worker, batch))
            if len(pending) >= 2 * workers:
                yield _collected(pending.popleft(), stats)
        while pending:
            yield _collected(pending.popleft(), stats)


def _columnar(candidate: Policy, baseline: Policy | None) -> list[Any]:
    from escalation.backends.columnar import ColumnarPolicy

    # the fold reads neither the validated accounts nor the offers: not kept
    chosen = [candidate] + ([baseline] if baseline is not None else [])
    return [ColumnarPolicy(p, accounts=False) for p in chosen]


# What a worker process of the pool decides with (set once by `_start_worker`).
_WORKER: dict[str, Any] = {}


def _start_worker(candidate: Policy, baseline: Policy | None, at: dt.datetime, reasons: Reasons) -> None:
    _WORKER.update(policies=_columnar(candidate, baseline), at=at, reasons=reasons)


def _decide_in_worker(batch: Any) -> tuple[int, Any, dict[str, int]]:
    from escalation.arrow import decide_result

    stats: dict[str, int] = {}
    policies, at, reasons = _WORKER["policies"], _WORKER["at"], _WORKER["reasons"]
    res = decide_result(batch, policies, at=at, reasons=reasons, stats=stats)
    res.accounts, res.offers = {}, []
    return len(batch), res, stats


def _collected(future: Any, stats: dict[str, int]) -> tuple[Any, Any]:
    rows, res, counted = future.result()
    for key, value in counted.items():
        stats[key] = stats.get(key, 0) + value
    return range(rows), res


@dataclass
class Tallies:
    """What a dry-run accumulates (shared with the reference path's loop)."""

    summaries: list[Any]  # the candidate's and the baseline's ``SummaryBuilder``
    writers: dict[str, Any]
    error_file: IO[str] | None
    changes_file: IO[str] | None
    sample: int
    transitions: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    changes: list[AccountChange] = field(default_factory=list)
    changed_days: dict[int, dict[str, int]] = field(default_factory=dict)
    accounts: int = 0
    decided: int = 0
    errors: int = 0
    changed: int = 0
    changed_balance: Decimal = Decimal(0)
    arms: Any = None  # an experiment's ``ArmTallies``: candidate = challenger, baseline = champion


def _labels(table: Any) -> Any:
    """Each decision's label: the action, or the status in brackets."""
    import pyarrow.compute as pc

    status = table.column("status")
    bracketed = pc.binary_join_element_wise("(", status, ")", "")
    return pc.if_else(pc.equal(status, "act"), table.column("action"), bracketed)


def _group(keys: dict[str, Any], units: Any) -> list[dict[str, Any]]:
    import pyarrow as pa

    table = pa.table({**keys, "u": units})
    return list(table.group_by(list(keys)).aggregate([("u", "sum"), ("u", "count")]).to_pylist())


def _summarise(summary: Any, table: Any, labels: Any, units: Any, days: Any, unit: Decimal) -> None:
    """Fold one batch's decided rows into a ``SummaryBuilder``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    for key, target in (("status", summary.status), ("label", summary.action)):
        column = table.column("status") if key == "status" else labels
        for row in _group({"k": column}, units):
            entry = target.setdefault(row["k"], [0, Decimal(0)])
            entry[0] += row["u_count"]
            entry[1] += Decimal(row["u_sum"]) * unit
    flat = pc.list_flatten(table.column("blocked_guards"))
    if len(flat):
        for item in pc.value_counts(flat).to_pylist():
            summary.blocks[item["values"]] = summary.blocks.get(item["values"], 0) + item["counts"]
    names = np.asarray(_BUCKET_NAMES, dtype=object)[np.searchsorted(_LIMITS, days, side="left")]
    for row in _group({"b": pa.array(names, pa.string()), "k": labels}, units):
        mix = summary.buckets.setdefault(row["b"], {})
        mix[row["k"]] = mix.get(row["k"], 0) + row["u_count"]


def fold(batch: Any, res: Any, tallies: Tallies, progress: Callable[[int], None] | None) -> None:
    """Fold one decided batch into ``tallies``: errors, decisions written, summaries,
    transitions and changed accounts."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(batch)
    tallies.accounts += n
    for error in res.errors:
        if error is not None:
            tallies.errors += 1
            if tallies.error_file is not None:
                tallies.error_file.write(error.model_dump_json() + "\n")
    decided = res.decided
    count = int(decided.sum())
    tallies.decided += count
    unit = Decimal(1).scaleb(-res.minor_units)
    rows = pa.array(decided)
    tables = [t.filter(rows) if count < n else t for t in res.tables]
    units = res.balance_units[decided]
    days = res.days_overdue[decided]
    mask = None
    if tallies.arms is not None:  # each account's candidate decision is its arm's
        ids = tables[0].column("account_id").to_pylist()
        mask = np.fromiter(map(tallies.arms.is_challenger, ids), bool, count)
        picks = np.where(mask, np.arange(count), np.arange(count) + count)
        tables[0] = pa.concat_tables(tables).take(pa.array(picks)).combine_chunks()
    for name, table in zip(("decisions", "baseline"), tables, strict=False):
        if name in tallies.writers:
            tallies.writers[name].write_table(table)
    labels = [_labels(t) for t in tables]
    for summary, table, label in zip(tallies.summaries, tables, labels, strict=False):
        _summarise(summary, table, label, units, days, unit)
    if len(tables) == 2:
        new, old = tables
        for row in _group({"o": labels[1], "c": labels[0]}, units):
            entry = tallies.transitions.setdefault((row["o"], row["c"]), [0, Decimal(0)])
            entry[0] += row["u_count"]
            entry[1] += Decimal(row["u_sum"]) * unit
        moved = np.zeros(count, bool)
        for name in ("status", "action", "channel"):
            a, b = new.column(name), old.column(name)
            same = pc.fill_null(pc.equal(a, b), False)
            both_null = pc.and_(pc.is_null(a), pc.is_null(b))
            moved |= ~np.asarray(pc.or_(same, both_null), dtype=bool)
        _changes(tallies, np.flatnonzero(moved), new, old, labels, units, days, unit)
        if mask is not None:
            _by_arm(tallies.arms, mask, moved, tables, labels, units, days, unit)
    if progress is not None:
        progress(n)


def _by_arm(arms: Any, mask: Any, moved: Any, tables: list[Any], labels: list[Any], units: Any, days: Any,
            unit: Decimal) -> None:  # fmt: skip
    """Fold one batch into each arm's tallies (``mask``: the challenger rows)."""
    import pyarrow as pa

    for arm, rows in (("champion", ~mask), ("challenger", mask)):
        if not rows.any():
            continue
        pick = pa.array(rows)
        new = tables[0].filter(pick)
        to_label, from_label = (x.filter(pick) for x in labels)
        arm_units = units[rows]
        arms.accounts[arm][0] += len(arm_units)
        arms.accounts[arm][1] += Decimal(int(arm_units.sum())) * unit
        _summarise(arms.builders[arm], new, to_label, arm_units, days[rows], unit)
        for row in _group({"o": from_label, "c": to_label}, arm_units):
            entry = arms.transitions[arm].setdefault((row["o"], row["c"]), [0, Decimal(0)])
            entry[0] += row["u_count"]
            entry[1] += Decimal(row["u_sum"]) * unit
        arm_moved = moved[rows]
        if arm_moved.any():  # (no `0.00` where the reference path has `0`)
            arms.changed[arm][0] += int(arm_moved.sum())
            arms.changed[arm][1] += Decimal(int(arm_units[arm_moved].sum())) * unit


def _changes(tallies: Tallies, where: Any, new: Any, old: Any, labels: list[Any], units: Any, days: Any,
             unit: Decimal) -> None:  # fmt: skip
    """The changed accounts, one by one (they are few)."""
    import pyarrow as pa

    if not len(where):
        return
    pick = pa.array(where)
    ids = new.column("account_id").take(pick).to_pylist()
    reasons_new = new.column("reason").take(pick).to_pylist()
    reasons_old = old.column("reason").take(pick).to_pylist()
    to_label = labels[0].take(pick).to_pylist()
    from_label = labels[1].take(pick).to_pylist()
    for k, i in enumerate(where.tolist()):
        balance = Decimal(int(units[i])) * unit
        day = int(days[i])
        tallies.changed += 1
        tallies.changed_balance += balance
        mix = tallies.changed_days.setdefault(day, {})
        key = f"{from_label[k]} → {to_label[k]}"
        mix[key] = mix.get(key, 0) + 1
        change = AccountChange(
            account_id=str(ids[k]),
            balance=balance,
            days_overdue=day,
            baseline=from_label[k],
            candidate=to_label[k],
            baseline_reason=reasons_old[k] or "",  # "" with --reasons none
            candidate_reason=reasons_new[k] or "",
        )
        if len(tallies.changes) < tallies.sample:
            tallies.changes.append(change)
        if tallies.changes_file is not None:
            tallies.changes_file.write(json.dumps(change_row(change), ensure_ascii=False) + "\n")
