"""Event selections and per-batch memos of :mod:`._guards`: event-filter masks
by table lookup (not ``np.isin``), and the memo of guard verdicts that the
policies of one batch share when their facts and guard definitions are equal
(a dry-run's candidate and baseline usually are)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from escalation._language import EventFilter
from escalation.backends.columnar._facts import CHANNELS, OUTCOMES
from escalation.record import Channel

if TYPE_CHECKING:
    from escalation.backends.columnar._facts import Facts
    from escalation.policy import GuardRule

__all__ = ["Verdict", "VerdictMemo", "before_now", "filter_mask", "member", "signature"]

Verdict = tuple[np.ndarray, np.ndarray, np.ndarray]  # blocked, until (µs or NEVER), unsure


def member(facts: Facts, name: str, values: np.ndarray, wanted: list[int]) -> np.ndarray:
    """``np.isin(values, wanted)`` for a small-integer event column ``name``,
    by one lookup in a table of the column's range (its min and max cached)."""
    key = ("range", name)
    span = facts.cache.get(key)
    if span is None:
        span = facts.cache[key] = (int(values.min()), int(values.max())) if len(values) else (0, -1)
    low, high = span
    if high - low > 1 << 16:  # pragma: no cover - codes are small
        return np.isin(values, wanted)
    table = np.zeros(high - low + 1, bool)
    for code in wanted:
        if low <= code <= high:
            table[code - low] = True
    result: np.ndarray = table[values - low] if low else table[values]
    return result


def before_now(facts: Facts) -> np.ndarray | None:
    """Which events are at or before ``now`` (``None``: every one, the usual case:
    rows with later events go to the reference engine), once per batch; a subset
    is told by :func:`._subset.subset` when its batch has none after ``now``, so it
    neither takes its instants nor compares them."""
    f = facts
    after: bool | None = f.cache.get("events after now")
    if after is None:
        after = f.cache["events after now"] = bool(len(f.ev_ts)) and int(f.ev_ts.max()) > f.now_us
    if not after:
        return None
    before: np.ndarray | None = f.cache.get("ev_before_now")
    if before is None:
        before = f.cache["ev_before_now"] = f.ev_ts <= f.now_us
    return before


def filter_mask(
    facts: Facts,
    flt: EventFilter,
    channels: tuple[Channel, ...],
    tier_ids: list[str],
    tags_of: dict[str, tuple[str, ...]],
) -> np.ndarray:
    """The events ``flt`` selects (``channels`` when it names none), memoised in
    ``facts.cache`` by the filter's value (so shared by equal filters of two policies)."""
    f = facts
    key = ("filter", flt.model_dump_json(), channels, tuple(tier_ids), tuple(sorted(tags_of.items())))
    cached = f.cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    m = np.ones(len(f.ev_ts), bool)
    if flt.direction == "outbound":
        m &= f.ev_outbound
    elif flt.direction == "inbound":
        m &= ~f.ev_outbound
    wanted = flt.channels or channels
    if wanted:
        m &= member(f, "channel", f.ev_channel, [CHANNELS.index(c.value) for c in wanted])
    if flt.outcomes:
        m &= member(f, "outcome", f.ev_outcome, [OUTCOMES.index(o.value) for o in flt.outcomes])
    if flt.actions:
        m &= member(f, "action", f.ev_action, [tier_ids.index(a) for a in flt.actions if a in tier_ids])
    if flt.tags:
        tags = set(flt.tags)
        m &= member(f, "action", f.ev_action, [i for i, t in enumerate(tier_ids) if tags & set(tags_of[t])])
    if flt.misdirected is True or flt.during_consent is True:
        m &= False  # no vectorised account has misdirected events or consent windows
    if flt.in_cycle is not None:
        m &= f.ev_in_cycle if flt.in_cycle else ~f.ev_in_cycle
    f.cache[key] = m
    return m


def signature(rule: GuardRule) -> str:
    """What a guard's verdicts depend on besides the facts: its definition and
    its compiled conditions (equal signatures → equal verdicts on equal facts)."""
    conditions = sorted((name, repr(c.tree)) for name, c in rule.conditions.items())
    unless = repr(rule.unless.tree) if rule.unless is not None else ""
    return f"{type(rule.model).__name__}|{rule.model.model_dump_json()}|{conditions}|{unless}"


class VerdictMemo:
    """Verdicts of one batch's facts, shared by every policy whose guards see
    the same tiers and tags: at ``now`` by (guard, channel), at other instants
    by (guard, channel) and an equal array of instants."""

    __slots__ = ("later", "now")

    def __init__(self) -> None:
        self.now: dict[tuple[str, Channel | None], Verdict] = {}
        self.later: dict[tuple[str, Channel | None], list[tuple[np.ndarray, Verdict]]] = {}

    @staticmethod
    def of(facts: Facts, context: Any) -> VerdictMemo:
        """The memo of ``facts`` for a policy ``context`` (tier ids and tags)."""
        key = ("shared", context)
        memo: VerdictMemo | None = facts.cache.get(key)
        if memo is None:
            memo = facts.cache[key] = VerdictMemo()
        return memo

    def find(self, key: tuple[str, Channel | None], at: np.ndarray) -> Verdict | None:
        for instants, found in self.later.get(key, ()):
            if instants is at or np.array_equal(instants, at):
                return found
        return None

    def keep(self, key: tuple[str, Channel | None], at: np.ndarray, found: Verdict) -> None:
        entries = self.later.setdefault(key, [])
        if len(entries) >= 8:  # bounded: a batch asks a few instants per guard
            entries.pop(0)
        entries.append((at, found))
