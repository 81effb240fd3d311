"""One decided batch folded into the dry-run's tallies in one pass: each
decision column the fold reads is hashed once (:mod:`~escalation.portfolio._coded`;
the label columns not at all: their codes come with the decision tables,
``TableResult.codes``), its codes shared by the JSON-lines encoder and the tallies; every tally of the
batch (each policy's statuses, actions and days-overdue mix, the transitions,
the changed accounts, an experiment's arms) comes from one grouping of the
rows by their combined codes, and the few groups are added up in Python in
order of first appearance (the order the per-row reference adds keys in). Only
error rows and changed accounts are handled one by one."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from escalation.portfolio._coded import Codes, codes_of, combos, interleaved, list_codes
from escalation.portfolio.results import BUCKETS, AccountChange
from escalation.portfolio.writer import encode

if TYPE_CHECKING:
    from escalation.portfolio._fold import Tallies

__all__ = ["fold"]

_LIMITS = [limit for limit, _ in BUCKETS]
_BUCKET_NAMES = [name for _, name in BUCKETS] + ["181+"]
# the columns the tallies read; JSON lines read every one after ``account_id``
_TALLIED = ("status", "action", "channel")
_ENCODED = ("severity", "reason", "next_eligible_at", "hold", "policy_fingerprint")
_ARM_TABLES = ("status", "action", "buckets", "transitions", "accounts", "changed")


def fold(batch: Any, res: Any, tallies: Tallies, progress: Callable[[int], None] | None) -> None:
    """Fold one decided batch into ``tallies``: errors, decisions written, summaries,
    transitions and changed accounts."""
    import numpy as np
    import pyarrow as pa

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
    # the codes decide_table built the label columns from, on the same rows
    given = [
        {c: Codes(k.codes[decided], k.values) if count < n else k for c, k in handed.items()}
        for handed in (res.codes or [{} for _ in tables])
    ]
    units = res.balance_units[decided]
    days = res.days_overdue[decided]
    mask = None
    if tallies.arms is not None:  # each account's candidate decision is its arm's
        ids = tables[0].column("account_id").to_pylist()
        mask = np.fromiter(map(tallies.arms.is_challenger, ids), bool, count)
        picks = np.where(mask, np.arange(count), np.arange(count) + count)
        tables[0] = pa.concat_tables(tables).take(pa.array(picks)).combine_chunks()
        shared = given[0].keys() & given[1].keys()
        given[0] = {c: interleaved(given[0][c], given[1][c], picks) for c in shared}
    coded = []
    for name, table, known in zip(("decisions", "baseline"), tables, given, strict=False):
        writer = tallies.writers.get(name)
        jsonl = writer is not None and writer.fmt == "jsonl"
        columns = {
            c: known[c] if c in known else codes_of(table.column(c))
            for c in _TALLIED + (_ENCODED if jsonl else ())
        }
        columns["blocked_guards"], columns["items"] = list_codes(table.column("blocked_guards"))
        coded.append(columns)
        if writer is not None:
            writer.write_encoded(encode(table, writer.fmt, columns))
    buckets = np.searchsorted(_LIMITS, days, side="left").astype(np.int64)
    moved = _moved(coded, count) if len(tables) == 2 else None
    _tally(tallies, coded, buckets, moved, mask, units, unit)
    if moved is not None and moved.any():
        _changes(tallies, np.flatnonzero(moved), tables, coded, units, days, unit)
    if progress is not None:
        progress(n)


def _label(status: Any, action: Any) -> Any:
    """A decision's label: the action, or the status in brackets (null with a null status)."""
    if status == "act":
        return action
    return None if status is None else f"({status})"


def _moved(coded: list[dict[str, Codes]], count: int) -> Any:
    """The rows whose status, action or channel differ between the two tables
    (two nulls are alike)."""
    import numpy as np

    moved = np.zeros(count, bool)
    for name in _TALLIED:
        new, old = coded[0][name], coded[1][name]
        index = {value: code for code, value in enumerate(new.values)}
        # each old value as its code among the new ones (a value the new table lacks: a code none has)
        remap = np.array([index.get(v, -1 - k) for k, v in enumerate(old.values)], np.int64)
        moved |= new.codes != remap[old.codes] if len(old.values) else False
    return moved


def _tally(tallies: Tallies, coded: list[dict[str, Codes]], buckets: Any, moved: Any, mask: Any,
           units: Any, unit: Decimal) -> None:  # fmt: skip
    """Every summary, transition and arm tally of the batch from one grouping."""
    keys = [(buckets, len(_BUCKET_NAMES))]
    for columns in coded:
        keys += [(columns[c].codes, len(columns[c].values)) for c in ("status", "action")]
    if moved is not None:
        keys.append((moved, 2))
    if mask is not None:
        keys.append((mask, 2))
    first, counts, sums = combos(keys, units)
    at = [codes[first].tolist() for codes, _ in keys]
    groups = list(zip(*at, counts, sums, strict=True))
    summaries: list[dict[str, dict[Any, list[int]]]] = [
        {"status": {}, "action": {}, "buckets": {}} for _ in coded
    ]
    transitions: dict[tuple[Any, Any], list[int]] = {}
    by_arm: dict[bool, dict[str, Any]] = {}
    for group in groups:
        b, rows, total = group[0], group[-2], group[-1]
        labels = []
        for k, (columns, into) in enumerate(zip(coded, summaries, strict=False)):
            status = columns["status"].values[group[1 + 2 * k]]
            label = _label(status, columns["action"].values[group[2 + 2 * k]])
            labels.append(label)
            _add(into["status"], status, rows, total)
            _add(into["action"], label, rows, total)
            _add(into["buckets"], (_BUCKET_NAMES[b], label), rows, 0)
        if len(coded) == 2:
            _add(transitions, (labels[1], labels[0]), rows, total)
        if mask is not None:
            arm = by_arm.setdefault(bool(group[-3]), {key: {} for key in _ARM_TABLES})
            _add(arm["accounts"], None, rows, total)
            new_status = coded[0]["status"].values[group[1]]
            _add(arm["status"], new_status, rows, total)
            _add(arm["action"], labels[0], rows, total)
            _add(arm["buckets"], (_BUCKET_NAMES[b], labels[0]), rows, 0)
            _add(arm["transitions"], (labels[1], labels[0]), rows, total)
            if group[-4]:
                _add(arm["changed"], None, rows, total)
    for summary, into, columns in zip(tallies.summaries, summaries, coded, strict=False):
        _apply(summary, into, unit)
        _blocks(summary, columns["items"].codes, columns["items"].values)
    _pairs(tallies.transitions, transitions, unit)
    if mask is not None:
        _arms(tallies.arms, by_arm, coded[0], mask, unit)


def _add(into: dict[Any, list[int]], key: Any, rows: int, total: int) -> None:
    entry = into.setdefault(key, [0, 0])
    entry[0] += rows
    entry[1] += total


def _pairs(target: dict[Any, list[Any]], grouped: dict[Any, list[int]], unit: Decimal) -> None:
    """Each group's rows and balance added to ``target`` (as a group-by's row would add them)."""
    for key, (rows, total) in grouped.items():
        entry = target.setdefault(key, [0, Decimal(0)])
        entry[0] += rows
        entry[1] += Decimal(total) * unit


def _apply(summary: Any, grouped: dict[str, dict[Any, list[int]]], unit: Decimal) -> None:
    _pairs(summary.status, grouped["status"], unit)
    _pairs(summary.action, grouped["action"], unit)
    for (name, label), (rows, _) in grouped["buckets"].items():
        mix = summary.buckets.setdefault(name, {})
        mix[label] = mix.get(label, 0) + rows


def _blocks(summary: Any, items: Any, values: list[Any]) -> None:
    """Each blocked guard's count (``items``: the codes of the guards named, rows in order)."""
    import numpy as np

    if not len(items):
        return
    for code, times in enumerate(np.bincount(items, minlength=len(values)).tolist()):
        if times:  # (codes number the guards in order of first appearance)
            summary.blocks[values[code]] = summary.blocks.get(values[code], 0) + times


def _arms(
    arms: Any, by_arm: dict[bool, dict[str, Any]], new: dict[str, Codes], mask: Any, unit: Decimal
) -> None:
    """Each arm's tallies (``mask``: the challenger rows; an arm without rows adds nothing)."""
    import numpy as np

    lists = new["blocked_guards"]
    lengths = np.fromiter((len(v) if v else 0 for v in lists.values), np.int64, len(lists.values))
    item_rows = np.repeat(np.arange(len(mask)), lengths[lists.codes])
    for arm, challenger in (("champion", False), ("challenger", True)):
        grouped = by_arm.get(challenger)
        if grouped is None:
            continue
        for into, key in ((arms.accounts[arm], "accounts"), (arms.changed[arm], "changed")):
            if None in grouped[key]:
                rows, total = grouped[key][None]
                into[0] += rows
                into[1] += Decimal(total) * unit
        _apply(arms.builders[arm], grouped, unit)
        items = new["items"].codes[mask[item_rows] == challenger]
        order = dict.fromkeys(items.tolist())  # guards in order of first appearance in the arm
        times = np.bincount(items, minlength=len(new["items"].values)).tolist() if len(items) else []
        for code in order:
            guard = new["items"].values[code]
            arms.builders[arm].blocks[guard] = arms.builders[arm].blocks.get(guard, 0) + times[code]
        _pairs(arms.transitions[arm], grouped["transitions"], unit)


def _changes(tallies: Tallies, where: Any, tables: list[Any], coded: list[dict[str, Codes]], units: Any,
             days: Any, unit: Decimal) -> None:  # fmt: skip
    """The changed accounts, one by one (they are few)."""
    import pyarrow as pa

    pick = pa.array(where)
    new, old = tables
    ids = new.column("account_id").take(pick).to_pylist()
    reasons_new = new.column("reason").take(pick).to_pylist()
    reasons_old = old.column("reason").take(pick).to_pylist()
    labels = []
    for columns in coded:
        status, action = columns["status"], columns["action"]
        pairs = zip(status.codes[where].tolist(), action.codes[where].tolist(), strict=True)
        labels.append([_label(status.values[s], action.values[a]) for s, a in pairs])
    to_label, from_label = labels
    lines = []
    for k, (u, day) in enumerate(zip(units[where].tolist(), days[where].tolist(), strict=True)):
        balance = Decimal(u) * unit
        tallies.changed += 1
        tallies.changed_balance += balance
        mix = tallies.changed_days.setdefault(day, {})
        key = f"{from_label[k]} → {to_label[k]}"
        mix[key] = mix.get(key, 0) + 1
        change = (
            str(ids[k]),
            balance,
            day,
            from_label[k],
            to_label[k],
            reasons_old[k] or "",
            reasons_new[k] or "",
        )
        if len(tallies.changes) < tallies.sample:
            tallies.changes.append(AccountChange(*change))
        if tallies.changes_file is not None:
            lines.append(_change_line(*change))
    if tallies.changes_file is not None:
        tallies.changes_file.write("".join(lines))


def _change_line(account_id: str, balance: Decimal, day: int, baseline: Any, candidate: Any,
                 baseline_reason: str, candidate_reason: str) -> str:  # fmt: skip
    """``json.dumps(change_row(change), ensure_ascii=False)`` and a newline, without
    building the dict (its keys in ``change_row``'s order)."""
    return (
        f'{{"account_id": {encode_basestring(account_id)}, "balance": {encode_basestring(str(balance))}, '
        f'"days_overdue": {day}, "baseline": {_text(baseline)}, "candidate": {_text(candidate)}, '
        f'"baseline_reason": {encode_basestring(baseline_reason)}, '
        f'"candidate_reason": {encode_basestring(candidate_reason)}}}\n'
    )


def _text(value: Any) -> str:
    return "null" if value is None else encode_basestring(value)
