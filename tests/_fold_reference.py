"""The dry-run's columnar fold as it was before its one-pass rewrite (issue 12),
kept as the reference the fast fold (``escalation.portfolio._fold_batch``) is
held equal to (``tests/test_colfold_equal.py``): every tally, file and line
alike, dict key order and ``Decimal`` exponents included. It writes through
``write_table`` (each writer encodes its own table)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from escalation.portfolio.results import BUCKETS, AccountChange, change_row

_LIMITS = [limit for limit, _ in BUCKETS]
_BUCKET_NAMES = [name for _, name in BUCKETS] + ["181+"]


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


def fold(batch: Any, res: Any, tallies: Any, progress: Callable[[int], None] | None) -> None:
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


def _changes(tallies: Any, where: Any, new: Any, old: Any, labels: list[Any], units: Any, days: Any,
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
