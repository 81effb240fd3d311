"""A batch's facts for some of its accounts only: the tiers that are not due
yet need guard verdicts at their own instants for the few accounts that wait
on them (often well under 1 % of a batch), not for the whole batch.

Every per-account array is taken at the rows, every per-event array at those
accounts' events (still sorted by account, then instant), and the accounts are
numbered 0… in the rows' order. Of the cache, the entries :func:`derive_batch`
fills are taken at the rows; every other entry is computed again on demand
(event-filter masks, column ranges, verdict memos, zone views). A subset
is kept in the batch's cache by its rows: the policies of a batch share it,
and its memo of verdicts."""

from __future__ import annotations

from typing import Any

import numpy as np

from escalation.backends.columnar._column import Column
from escalation.backends.columnar._events import before_now
from escalation.backends.columnar._facts import Facts
from escalation.backends.columnar._why import Why

__all__ = ["DERIVED", "events_at", "subset"]

#: The cache entries :func:`~._facts.derive_batch` fills (the others are computed on demand).
DERIVED = frozenset({"tables", "multi", "multi_rows", "opt_out", "sent", "plan_due", "promise_due", "events"})


class _Columns(dict[str, Column]):
    """A subset's columns, each taken at the rows when first read (a guard reads few)."""

    def __init__(self, whole: dict[str, Column], rows: np.ndarray) -> None:
        super().__init__()
        self._whole, self._rows = whole, rows

    def __missing__(self, name: str) -> Column:
        c, rows = self._whole[name], self._rows
        # (a set column's Arrow lists are left out: membership is read from its frozensets)
        members = {item: found[rows] for item, found in c.members.items()}
        taken = self[name] = Column(c.kind, c.values[rows], c.known[rows], None, members)
        return taken

    def __contains__(self, name: object) -> bool:
        return name in self._whole

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._whole else default


def _events_of(facts: Facts, rows: np.ndarray) -> np.ndarray:
    """The positions of the events of the accounts ``rows`` (see :func:`_events_and_owners`)."""
    return _events_and_owners(facts, rows)[0]


def _events_and_owners(facts: Facts, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the events of the accounts ``rows`` (increasing), in order:
    ranges of the events sorted by account (as ``derive_batch`` leaves them),
    from each account's first event and count (worked out once per batch) — a
    pass over every event of the batch for each subset would cost a subset of
    a few rows as much as one of thousands. With them, each event's account
    numbered as in the subset (0… in the rows' order)."""
    ev_acc = facts.ev_acc
    ordered = facts.cache.get("events by account")
    if ordered is None:
        # (a boolean compare of two views: `np.diff` wrote a fresh event-length int64 array, whose
        # new pages cost ~1 ms a batch on a VM)
        ordered = facts.cache["events by account"] = bool(
            len(ev_acc) < 2 or (ev_acc[1:] >= ev_acc[:-1]).all()
        )
    if not ordered:  # (not from `derive_batch`): select by a pass over the events
        number = np.full(facts.n, -1, np.int64)
        number[rows] = np.arange(len(rows))
        events = np.flatnonzero(number[ev_acc] >= 0)
        return events, number[ev_acc[events]]
    # each account's first event and count, for the whole batch once (a batch takes
    # several subsets: two binary searches per subset cost more than one count)
    bounds: tuple[np.ndarray, np.ndarray] | None = facts.cache.get("events per account")
    if bounds is None:
        per = np.bincount(ev_acc, minlength=facts.n)
        first = np.zeros(facts.n, np.int64)
        np.cumsum(per[:-1], out=first[1:])
        bounds = facts.cache["events per account"] = (first, per)
    starts, counts = bounds[0][rows], bounds[1][rows]
    total = int(counts.sum())
    # each event's position: its account's first event plus its rank among them
    ends = np.cumsum(counts)
    positions: np.ndarray = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
    # (the events come account by account, in the rows' order: no lookup per event)
    return positions, np.repeat(np.arange(len(rows), dtype=np.int64), counts)


def subset(facts: Facts, rows: np.ndarray) -> Facts | None:
    """``facts`` of the accounts ``rows`` (increasing indices), or ``None`` when
    a part of ``facts`` is not of a shape this knows (the caller then works
    over the whole batch)."""
    n = facts.n
    key = ("subset", rows.tobytes())
    kept: Facts | None = facts.cache.get(key)
    if kept is not None:
        return kept
    shaped = facts.cache.get("subset shape")  # (checked once per batch: a batch takes several subsets)
    if shaped is None:
        shaped = facts.cache["subset shape"] = all(k in facts.cache for k in DERIVED) and all(
            isinstance(c, Column) and len(c.values) == n and len(c.known) == n for c in facts.columns.values()
        )
    if not shaped:
        return None
    cache = facts.cache
    multi = cache["multi"][rows]
    quiet = before_now(facts) is None  # (no event of the batch after now: none of the subset's)
    why = Why(len(rows))
    why.mask, why.code = facts.why.mask[rows], facts.why.code[rows]
    kept = facts.cache[key] = _Part.of(
        facts,
        rows,
        why,
        {
            "tables": cache["tables"],
            "multi": multi,
            "multi_rows": np.flatnonzero(multi),
            "opt_out": {name: mask[rows] for name, mask in cache["opt_out"].items()},
            **{key: tuple(part[rows] for part in cache[key]) for key in ("sent", "plan_due", "promise_due")},
            # not "events" (the events' Arrow table): only the offers read it, never a guard
            **({"events after now": False} if quiet else {}),
        },
    )
    zones = cache.get("zone_rows")
    if zones is not None:  # each zone's accounts taken at the rows (not found again by name)
        kept.cache["zone_rows"] = [(name, table, mine[rows]) for name, table, mine in zones]
    return kept


#: Per-account arrays, per-(tier, account) tables and per-event arrays of the facts,
#: taken at a subset's rows (or its accounts' events) when first read.
_BY_ACCOUNT = ("fallback", "zone_names", "today", "stage", "actions_today")
_BY_TIER = ("tier_done", "tier_last", "tier_counted")
_BY_EVENT = (
    "ev_ts",
    "ev_action",
    "ev_channel",
    "ev_outcome",
    "ev_outbound",
    "ev_address",
    "ev_in_cycle",
    "ev_day",
)


class _Part(Facts):
    """The facts of some rows of a batch, each array taken at the rows when
    first read: a subset's guards read a few of them (the gathers are random
    reads over the batch's arrays, ~0.5 ms a subset of a few hundred rows
    when all were taken at once).

    It holds the batch's arrays, not the batch's facts: those keep their
    subsets in their cache, and a cycle between the two would leave every
    batch's facts to the cyclic garbage collector (memory grew by ~700 MiB
    over a 1M-account run)."""

    @classmethod
    def of(cls, whole: Facts, rows: np.ndarray, why: Why, cache: dict[Any, Any]) -> _Part:
        events, owners = _events_and_owners(whole, rows)
        part = cls.__new__(cls)
        mine = part.__dict__
        mine.update(
            n=len(rows), now_us=whole.now_us, why=why, columns=_Columns(whole.columns, rows), cache=cache
        )
        mine.update(ev_acc=owners, _rows=rows, _events=events, _slots=whole.zone_slots)
        mine["_whole"] = {name: getattr(whole, name) for name in (*_BY_ACCOUNT, *_BY_TIER, *_BY_EVENT)}
        return part

    def __getattr__(self, name: str) -> Any:
        # (called only for an attribute not set yet: each is set here when first taken)
        mine = self.__dict__
        whole: dict[str, np.ndarray] | None = mine.get("_whole")
        if whole is None or (name not in whole and name != "zone_slots"):
            raise AttributeError(name)
        rows: np.ndarray = mine["_rows"]
        value: Any
        if name == "zone_slots":
            value = [slot[rows] for slot in mine["_slots"]]
        elif name in _BY_TIER:
            value = whole[name][:, rows]
        elif name in _BY_EVENT:
            value = whole[name][mine["_events"]]
        else:
            value = whole[name][rows]
        mine[name] = value
        return value


def events_at(facts: Facts, name: str, positions: np.ndarray) -> np.ndarray:
    """``getattr(facts, name)[positions]`` for a per-event array ``name``; of a
    subset that has not taken that array yet, read from the batch's at those
    events alone (a frequency cap reads its few selected events' days and numbers)."""
    mine = facts.__dict__
    if isinstance(facts, _Part) and name not in mine:
        values: np.ndarray = mine["_whole"][name][mine["_events"][positions]]
        return values
    taken: np.ndarray = getattr(facts, name)[positions]
    return taken
