"""The dry-run's columnar fold: one decided batch
(:class:`~escalation.backends.columnar.TableResult`) folded into the dry-run's
tallies — decisions written as Arrow tables (Parquet row groups, or JSON lines
built by Arrow), summaries by group-bys; only error rows and changed accounts
are handled one by one.

A batch is folded on its own into a :class:`Part` (:func:`fold_part`, in
whichever process decided it: its decisions already encoded, its tallies small
dicts), and the parts are added to the run's :class:`Tallies` in batch order
(:func:`merge`): dicts gain keys in the order one pass over the batches would
add them and sums are exact (``Decimal``), so every output is byte-identical
whatever the number of workers."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from escalation.portfolio.results import BUCKETS, AccountChange, change_row

__all__ = ["Part", "Plan", "Tallies", "fold", "fold_part", "merge"]

_LIMITS = [limit for limit, _ in BUCKETS]
_BUCKET_NAMES = [name for _, name in BUCKETS] + ["181+"]


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


def _coded(key: Any) -> tuple[Any, list[Any]]:
    """A key column as (a number per row, the value of each number); ``key`` may
    already be that pair."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(key, tuple):
        return key
    column = key.combine_chunks() if isinstance(key, pa.ChunkedArray) else key
    encoded = pc.dictionary_encode(column)
    values = encoded.dictionary.to_pylist()
    return np.asarray(encoded.indices.fill_null(len(values)), dtype=np.int64), [*values, None]


def _group(keys: dict[str, Any], units: Any) -> list[dict[str, Any]]:
    """Rows grouped by ``keys``: each group's keys, ``u_sum`` (of ``units``) and
    ``u_count``, groups in order of first appearance (numpy over dictionary
    codes: a fraction of an Arrow group-by's cost on a batch)."""
    import numpy as np

    coded = [_coded(key) for key in keys.values()]
    combined = np.zeros(len(units), np.int64)
    for codes, values in coded:
        combined = combined * len(values) + codes
    distinct, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse, minlength=len(distinct))
    sums = np.zeros(len(distinct), np.int64)
    np.add.at(sums, inverse, np.asarray(units, np.int64))
    groups = []
    for g in np.argsort(first, kind="stable").tolist():
        picked, rest = [], int(distinct[g])
        for _, values in reversed(coded):
            rest, index = divmod(rest, len(values))
            picked.append(values[index])
        row = dict(zip(keys, reversed(picked), strict=True))
        groups.append({**row, "u_sum": int(sums[g]), "u_count": int(counts[g])})
    return groups


def _summarise(summary: Any, table: Any, labels: Any, units: Any, days: Any, unit: Decimal) -> None:
    """Fold one batch's decided rows into a ``SummaryBuilder``."""
    import numpy as np
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
    buckets = np.searchsorted(_LIMITS, days, side="left").astype(np.int64)
    for row in _group({"b": (buckets, _BUCKET_NAMES), "k": labels}, units):
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


# ------------------------------------------------------------- batch by batch


@dataclass(frozen=True)
class Plan:
    """What folding one batch on its own needs to know of the run (sent once to
    each worker): the decisions' format (``None``: no files written), whether
    there is a baseline, how many changed accounts the result samples, and the
    experiment whose arms are tallied (or ``None``)."""

    fmt: str | None
    baseline: bool
    sample: int
    experiment: Any = None


class _Counts:
    """A :class:`~escalation.portfolio.results.SummaryBuilder`'s tables without its policy."""

    def __init__(self) -> None:
        self.status: dict[str, list[Any]] = {}
        self.action: dict[str, list[Any]] = {}
        self.blocks: dict[str, int] = {}
        self.buckets: dict[str, dict[str, int]] = {}


class _ArmCounts:
    """An :class:`~escalation.portfolio._arms.ArmTallies`' tables without its policies."""

    def __init__(self, experiment: Any) -> None:
        from escalation.experiment import arm_of
        from escalation.portfolio._arms import ARMS

        self._arm_of, self._split = arm_of, (experiment.salt, experiment.challenger.share)
        self.builders = {arm: _Counts() for arm in ARMS}
        self.accounts: dict[str, list[Any]] = {arm: [0, Decimal(0)] for arm in ARMS}
        self.transitions: dict[str, dict[tuple[str, str], list[Any]]] = {arm: {} for arm in ARMS}
        self.changed: dict[str, list[Any]] = {arm: [0, Decimal(0)] for arm in ARMS}

    def is_challenger(self, account_id: str) -> bool:
        return bool(self._arm_of(account_id, *self._split))

    def __getstate__(self) -> dict[str, Any]:  # the assignment rule stays in the worker
        return {k: v for k, v in self.__dict__.items() if k not in ("_arm_of", "_split")}


class _Encoded:
    """A decisions writer that only encodes (:func:`~escalation.portfolio.writer.encode`):
    the parent writes the bytes (or table) as they are."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.payload: Any = None

    def write_table(self, table: Any) -> None:
        from escalation.portfolio.writer import encode

        self.payload = encode(table, self.fmt)


@dataclass
class Part:
    """One decided batch folded on its own: what :func:`merge` adds to the run."""

    accounts: int
    decided: int
    errors: int
    error_lines: str
    change_lines: str
    outputs: dict[str, Any]  # writer name → encoded decisions
    summaries: list[_Counts]
    transitions: dict[tuple[str, str], list[Any]]
    changes: list[AccountChange]  # the batch's first ``sample``
    changed_days: dict[int, dict[str, int]]
    changed: int
    changed_balance: Decimal
    arms: _ArmCounts | None
    stats: dict[str, int] = field(default_factory=dict)
    clocks: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage, in its process


def fold_part(rows: int, res: Any, plan: Plan) -> Part:
    """Fold one decided batch of ``rows`` accounts on its own, with :func:`fold`."""
    names = ("decisions", "baseline") if plan.baseline else ("decisions",)
    writers = {name: _Encoded(plan.fmt) for name in names} if plan.fmt is not None else {}
    errors, changes = io.StringIO(), io.StringIO()
    part = Tallies(
        [_Counts() for _ in names], writers, errors, changes if plan.baseline else None, plan.sample,
        arms=_ArmCounts(plan.experiment) if plan.experiment is not None else None,
    )  # fmt: skip
    fold(range(rows), res, part, None)
    return Part(
        part.accounts, part.decided, part.errors, errors.getvalue(), changes.getvalue(),
        {name: w.payload for name, w in writers.items() if w.payload is not None}, part.summaries,
        part.transitions, part.changes, part.changed_days, part.changed, part.changed_balance, part.arms,
    )  # fmt: skip


def _add_pairs(total: dict[Any, list[Any]], part: dict[Any, list[Any]]) -> None:
    for key, (count, balance) in part.items():
        entry = total.setdefault(key, [0, Decimal(0)])
        entry[0] += count
        entry[1] += balance


def _add_counts(total: Any, part: _Counts) -> None:
    _add_pairs(total.status, part.status)
    _add_pairs(total.action, part.action)
    for guard, count in part.blocks.items():
        total.blocks[guard] = total.blocks.get(guard, 0) + count
    for name, mix in part.buckets.items():
        into = total.buckets.setdefault(name, {})
        for key, count in mix.items():
            into[key] = into.get(key, 0) + count


def merge(part: Part, tallies: Tallies, progress: Callable[[int], None] | None = None) -> None:
    """Add one batch's :class:`Part` to ``tallies`` (parts in batch order: each
    dict then gains its keys in the order one pass over the batches adds them)."""
    tallies.accounts += part.accounts
    tallies.decided += part.decided
    tallies.errors += part.errors
    if tallies.error_file is not None and part.error_lines:
        tallies.error_file.write(part.error_lines)
    for name, payload in part.outputs.items():
        if name in tallies.writers:
            tallies.writers[name].write_encoded(payload)
    for summary, counts in zip(tallies.summaries, part.summaries, strict=False):
        _add_counts(summary, counts)
    _add_pairs(tallies.transitions, part.transitions)
    tallies.changed += part.changed
    tallies.changed_balance += part.changed_balance
    for day, moves in part.changed_days.items():
        mix = tallies.changed_days.setdefault(day, {})
        for key, count in moves.items():
            mix[key] = mix.get(key, 0) + count
    room = max(tallies.sample - len(tallies.changes), 0)
    tallies.changes.extend(part.changes[:room])
    if tallies.changes_file is not None and part.change_lines:
        tallies.changes_file.write(part.change_lines)
    if tallies.arms is not None and part.arms is not None:
        arms, by_arm = tallies.arms, part.arms
        for arm, builder in by_arm.builders.items():
            _add_counts(arms.builders[arm], builder)
            for into, add in (
                (arms.accounts[arm], by_arm.accounts[arm]),
                (arms.changed[arm], by_arm.changed[arm]),
            ):
                into[0] += add[0]
                into[1] += add[1]
            _add_pairs(arms.transitions[arm], by_arm.transitions[arm])
    if progress is not None:
        progress(part.accounts)
