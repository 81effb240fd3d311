"""Guard verdicts at some rows of a batch only, each (guard, channel, row,
instant) worked out once per batch and shared by the batch's policies.

The ladder asks a tier's guards for the accounts that tier concerns — often a
few hundred of a batch — and a dry-run's baseline asks again for nearly the
same accounts at the same instants as its candidate. A verdict of one account
reads nothing of the others' (``_subset``), so verdicts are kept per row, with
the instant they were worked out at; only rows not yet known at the instant
asked are worked out: over the whole batch when they are many, else over
their facts alone (:func:`._subset.subset`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from escalation.backends.columnar._subset import subset
from escalation.guards import ContactHoursGuard, CooldownGuard, FrequencyGuard, PrerequisiteGuard

if TYPE_CHECKING:
    from escalation.backends.columnar._events import Verdict
    from escalation.backends.columnar._guards import Guards
    from escalation.policy import GuardRule
    from escalation.record import Channel

__all__ = ["RowVerdicts", "at_rows", "prepare_later", "prepare_now"]

NEVER = -1
# kinds whose check reads events or contact windows: worth narrowing to the rows asked
_SCANS = (ContactHoursGuard, CooldownGuard, FrequencyGuard, PrerequisiteGuard)


class RowVerdicts:
    """One guard's (and channel's) verdicts per row of a batch: ``has`` rows
    were worked out at instant ``at``."""

    __slots__ = ("at", "blocked", "has", "unsure", "until")

    def __init__(self, n: int) -> None:
        self.has = np.zeros(n, bool)
        self.at = np.zeros(n, np.int64)
        self.blocked = np.zeros(n, bool)
        self.until = np.full(n, NEVER, np.int64)
        self.unsure = np.zeros(n, bool)

    def fill(self, rows: np.ndarray | slice, at: np.ndarray | int, verdict: Verdict) -> None:
        self.has[rows] = True
        self.at[rows] = at
        self.blocked[rows], self.until[rows], self.unsure[rows] = verdict


def _entry(guards: Guards, key: tuple[str, Channel | None], tier: str | None) -> RowVerdicts:
    """The verdicts kept for ``key``: at ``now`` (``tier`` ``None``), else at the
    instants ``tier`` becomes due (a row asked at several instants would
    otherwise be worked out again and again)."""
    facts = guards.facts
    memo: dict[object, RowVerdicts] | None = facts.cache.get(("row verdicts", guards.context))
    if memo is None:
        memo = facts.cache[("row verdicts", guards.context)] = {}
    entry = memo.get((key, tier))
    if entry is None:
        entry = memo[(key, tier)] = RowVerdicts(facts.n)
    return entry


def prepare_now(guards: Guards, asks: list[tuple[list[tuple[GuardRule, Channel]], np.ndarray]]) -> None:
    """Work out at ``now`` the verdicts each tier's (rule, channel) pairs read at
    its accounts (``asks``: pairs and rows per tier): per guard, over the rows of
    every tier asking it not known yet — one subset for the guards asked by the
    same rows. A guard whose check reads no events or windows is worked out over
    the whole batch (memoised per batch: cheaper than a subset)."""
    facts = guards.facts
    n, now_us = facts.n, facts.now_us
    pools: dict[tuple[str, Channel | None], tuple[GuardRule, Channel, np.ndarray]] = {}
    for pairs, rows in asks:
        if not len(rows):
            continue
        for rule, channel in pairs:
            key = guards.key(rule, channel)
            if key not in pools:
                pools[key] = (rule, channel, np.zeros(n, bool))
            pools[key][2][rows] = True
    groups: dict[bytes, tuple[np.ndarray, list[tuple[GuardRule, Channel, RowVerdicts]]]] = {}
    for key, (rule, channel, asked) in pools.items():
        entry = _entry(guards, key, None)
        todo = np.flatnonzero(asked & ~entry.has)
        if len(todo):
            groups.setdefault(todo.tobytes(), (todo, []))[1].append((rule, channel, entry))
    for todo, needs in groups.values():
        _work_out(guards, needs, todo, np.full(len(todo), now_us, np.int64))


def prepare_later(
    guards: Guards, asks: list[tuple[str, list[tuple[GuardRule, Channel]], np.ndarray, np.ndarray]]
) -> None:
    """Work out the verdicts each tier that is not due yet reads (``asks``: its
    id, (rule, channel) pairs, rows and their instants), not known yet, over one
    subset of every row any of them needs (a row's verdict reads nothing of the
    others', so one subset serves every tier)."""
    facts = guards.facts
    n, now_us = facts.n, facts.now_us
    pool = np.zeros(n, bool)
    todo: list[tuple[np.ndarray, np.ndarray, list[tuple[GuardRule, Channel, RowVerdicts, np.ndarray]]]] = []
    for tier, pairs, rows, at in asks:
        needs: dict[tuple[str, Channel | None], tuple[GuardRule, Channel, RowVerdicts, np.ndarray]] = {}
        wanted = np.zeros(len(rows), bool)
        for rule, channel in pairs:
            key = guards.key(rule, channel)
            if key in needs:
                continue
            entry = _entry(guards, key, tier)
            need = ~entry.has[rows] | (entry.at[rows] != at)
            if need.any():
                needs[key] = (rule, channel, entry, need)
                wanted |= need
        if needs:
            pool[rows[wanted]] = True
            todo.append((rows[wanted], at[wanted], [(r, c, e, need[wanted]) for r, c, e, need in needs.values()]))
    picked = np.flatnonzero(pool)
    if not len(picked):
        return
    few = guards.few(picked) if len(picked) * 4 < n else None
    place = np.full(n, -1, np.int64)
    place[picked] = np.arange(len(picked))
    for rows, at, needs in todo:  # (every row of `rows` is in the pool)
        where = place[rows] if few is not None else rows
        instants = np.full(len(picked) if few is not None else n, now_us, np.int64)
        instants[where] = at
        for rule, channel, entry, need in needs:
            blocked, until, unsure = (few or guards).verdict(rule, channel, instants)
            at_need = where[need]
            entry.fill(rows[need], at[need], (blocked[at_need], until[at_need], unsure[at_need]))


def _work_out(
    guards: Guards, needs: list[tuple[GuardRule, Channel, RowVerdicts]], todo: np.ndarray, todo_at: np.ndarray
) -> None:
    facts = guards.facts
    now = bool((todo_at == facts.now_us).all())
    few = None
    if len(todo) * 4 < facts.n and (not now or any(isinstance(r.model, _SCANS) for r, _c, _e in needs)):
        few = guards.few(todo)
    instants: np.ndarray | None = None
    for rule, channel, entry in needs:
        if now and (few is None or not isinstance(rule.model, _SCANS)):
            # the whole batch at now: memoised, shared by the batch's policies, read by every row
            entry.fill(slice(None), facts.now_us, guards.verdict(rule, channel))
        elif few is not None:
            entry.fill(todo, todo_at, few.verdict(rule, channel, None if now else todo_at))
        else:
            if instants is None:
                instants = np.full(facts.n, facts.now_us, np.int64)
                instants[todo] = todo_at
            entry.fill(slice(None), instants, guards.verdict(rule, channel, instants))


def at_rows(
    guards: Guards, rule: GuardRule, channel: Channel, rows: np.ndarray, at: np.ndarray, tier: str | None = None
) -> Verdict:
    """(blocked, until, unsure) of ``rule`` on ``channel`` for the accounts
    ``rows`` (increasing batch indices), each at its instant ``at`` (one per
    row; ``now`` unless ``tier`` names the tier not due yet they are asked
    for), as :meth:`Guards.verdict` over the whole batch would read there."""
    entry = _entry(guards, guards.key(rule, channel), tier)
    need = ~entry.has[rows] | (entry.at[rows] != at)
    if need.any():
        _work_out(guards, [(rule, channel, entry)], rows[need], at[need])
    return entry.blocked[rows], entry.until[rows], entry.unsure[rows]


def few_guards(guards: Guards, rows: np.ndarray) -> Guards | None:
    """Guards over the facts of ``rows`` alone (kept per rows; ``None`` when
    ``_subset`` cannot take these facts)."""
    key = rows.tobytes()
    if key in guards.fews:
        return guards.fews[key]
    sub = subset(guards.facts, rows)
    few = None
    if sub is not None:
        few = type(guards)(guards.policy, guards.plan, sub)
        few.holidays = guards.holidays
    guards.fews[key] = few
    return few
