"""Per-account reductions over a batch's history (helpers of :mod:`._facts`).

Events are sorted by account, then instant. Each reduction first picks the
few events it reads (``np.flatnonzero`` of one mask) and works on those
positions with ``np.take``: a boolean mask over every event costs a pass per
use (and a mispredicted branch per event when indexing), positions cost
their own length. "The latest event of each account" is a scatter by
account (``out[acc] = value``: in sorted order the last write is the
latest), not ``np.maximum.at``."""

from __future__ import annotations

import numpy as np

__all__ = ["TierStats", "attempt_facts", "events_of", "latest", "tier_stats"]


def _at(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values[at]`` for positions ``at`` (increasing); ``values`` itself when
    ``at`` is every position (often: every event of a history is a tier action)."""
    return values if len(at) == len(values) else np.take(values, at)


def latest(
    acc: np.ndarray, values: np.ndarray, n: int, floor: int = -1, out: np.ndarray | None = None
) -> np.ndarray:
    """Per account, ``values`` of its latest event among ``acc`` (positions sorted
    by account then instant; ``values`` not decreasing within an account), at least
    ``floor``: ``np.maximum.at`` from ``floor`` without its per-element cost
    (written into ``out`` when given: ``n`` int64s)."""
    if out is None:
        out = np.full(n, floor, dtype=np.int64)
    else:
        out.fill(floor)
    out[acc] = values
    if len(values) and int(values.min()) < floor:  # only instants before 1970 could be
        np.maximum(out, floor, out=out)
    return out


def events_of(ev_acc: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The positions (increasing) of the events of accounts ``rows`` (increasing),
    ``ev_acc`` sorted: ranges found by binary search, so the cost is the
    selected events', not a pass over every event."""
    starts = np.searchsorted(ev_acc, rows, "left")
    counts = np.searchsorted(ev_acc, rows, "right") - starts
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    # each event's position: its account's first event plus its rank among them
    positions: np.ndarray = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
    return positions


class TierStats:
    """Per (tier, account): attempts and counted actions in the cycle, the
    latest action in the cycle, the latest counted one, the latest ever; the
    tier events' positions, their tiers and which of them count."""

    __slots__ = (
        "act",
        "at",
        "counting",
        "done",
        "last_counted",
        "last_ever",
        "last_in_cycle",
        "today",
        "tried",
    )

    def __init__(
        self, at: np.ndarray, counting: np.ndarray, grids: tuple[np.ndarray, ...], today: np.ndarray,
        act: np.ndarray,
    ) -> None:  # fmt: skip
        self.at, self.counting, self.today, self.act = at, counting, today, act
        self.tried, self.done, self.last_in_cycle, self.last_counted, self.last_ever = grids


def tier_stats(
    n: int,
    counts: np.ndarray,
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    today_us: np.ndarray,
    cycle_us: np.ndarray,
) -> TierStats:
    """``counts[t, o + 1]``: whether tier ``t``'s action with outcome code ``o``
    counts (``o = -1``: no outcome); ``events`` = (account, instant, tier index
    or -1, outcome code, outbound, in cycle: instant ≥ ``cycle_us`` of its
    account); ``today_us``: each account's local midnight (``today`` counts its
    tier actions since)."""
    ev_acc, ev_ts, action, outcome, outbound, in_cycle = events
    k = counts.shape[0]
    tier = outbound & (action >= 0)
    # (often every event is a tier action: positions without a search)
    at = np.arange(len(tier), dtype=np.int64) if tier.all() else np.flatnonzero(tier)
    acc, act, stamp, result, cyc = (_at(e, at) for e in (ev_acc, action, ev_ts, outcome, in_cycle))
    # in place: every fresh event-length array costs its pages as well as its pass
    key = act * n
    key += acc
    cell = act * counts.shape[1]
    cell += result
    cell += 1
    counting = np.take(counts.ravel(), cell, mode="clip")  # (every cell is in range)
    del cell
    # the five (tier, account) grids in one allocation: numpy advises huge pages for
    # one of ≥ 4 MiB, so a batch's grids cost a few page faults instead of ~1,000 each
    # (fresh pages are the larger part of these passes' cost on a VM)
    block = np.empty((5, k, n), np.int64)
    ever, last_in_cycle, tried, done, last_counted = block
    flat = [grid.reshape(-1) for grid in block]  # views
    latest(key, stamp, k * n, out=flat[0])
    # a cycle is a suffix of an account's history: its latest action in the cycle
    # is its latest action, when that is in the cycle; when every tier event is in
    # the cycle (often) the in-cycle reductions are the whole ones
    whole = bool(cyc.all())
    good = counting if whole else cyc & counting  # counted actions
    tried.fill(0)
    if whole:
        key_cyc = key
        np.copyto(last_in_cycle, ever)
    else:
        in_cyc = np.flatnonzero(cyc)
        key_cyc = np.take(key, in_cyc)
        latest(key_cyc, np.take(stamp, in_cyc), k * n, out=flat[1])
    np.add.at(flat[2], key_cyc, 1)  # (as fast as np.bincount, and in place)
    hits = int(np.count_nonzero(good))
    if hits == len(key_cyc):  # every action in the cycle counts
        np.copyto(done, tried)
        np.copyto(last_counted, last_in_cycle)
    elif 2 * hits > len(key_cyc):  # most count: start from the cycle's figures
        _uncounted(flat, key, stamp, good, np.flatnonzero(cyc & ~counting))
    else:
        hit = np.flatnonzero(good)
        key_hit = np.take(key, hit)
        done.fill(0)
        np.add.at(flat[3], key_hit, 1)
        latest(key_hit, np.take(stamp, hit), k * n, out=flat[4])
    grids = (tried, done, last_in_cycle, last_counted, ever)
    # actions today: only the latest of a history can be (few pass the batch's earliest midnight)
    recent = np.flatnonzero(stamp >= today_us.min()) if n else at[:0]
    recent_acc = np.take(acc, recent)
    today = np.bincount(recent_acc[np.take(stamp, recent) >= np.take(today_us, recent_acc)], minlength=n)
    return TierStats(at, counting, grids, today, act)


def _uncounted(
    flat: list[np.ndarray], key: np.ndarray, stamp: np.ndarray, good: np.ndarray, miss: np.ndarray
) -> None:
    """``done`` and ``last_counted`` (``flat[3]``, ``flat[4]``) from the cycle's
    ``tried`` and ``last_in_cycle`` (``flat[2]``, ``flat[1]``) when few actions in
    the cycle (``miss``: their positions) do not count: ``done`` less those; the
    latest counted instant is the latest one but for the keys whose latest action
    may be one of them (its instant ≥ the latest: ties included), whose counted
    actions are scattered again."""
    _ever, last_in_cycle, tried, done, last_counted = flat
    q = np.take(key, miss)
    np.copyto(done, tried)
    np.subtract.at(done, q, 1)
    np.copyto(last_counted, last_in_cycle)
    latest_q = np.take(last_in_cycle, q)
    ends = q[(np.take(stamp, miss) >= latest_q) | (latest_q == -1)]  # (-1: the floor hid an instant)
    if not len(ends):
        return
    redo = np.zeros(len(last_counted), bool)
    redo[ends] = True
    last_counted[ends] = -1
    sel = np.flatnonzero(np.take(redo, key) & good)
    if len(sel):
        values = np.take(stamp, sel)
        last_counted[np.take(key, sel)] = values  # in order: the last write is the latest
        if int(values.min()) < -1:
            np.maximum(last_counted, -1, out=last_counted)


def attempt_facts(
    n: int, attempt: np.ndarray, ev_acc: np.ndarray, outcome: np.ndarray, address: np.ndarray,
    unreached: np.ndarray, not_in_service: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``consecutive_failed_attempts`` (attempts after the latest reaching one)
    and ``number_invalid`` (every address's latest attempt not in service) from
    the ``attempt`` mask; ``unreached[o]``: outcome ``o`` does not reach the debtor."""
    at = np.flatnonzero(attempt)
    acc = np.take(ev_acc, at)
    result = np.take(outcome, at)
    # attempts are in history order: an account's run of them ends at `end` - 1
    count = np.bincount(acc, minlength=n)
    end = np.cumsum(count)
    good = np.flatnonzero(~np.take(unreached, result))
    last_good = np.full(n, -1, np.int64)  # position of the latest reaching attempt, in `at`
    last_good[np.take(acc, good)] = good
    consecutive = np.where(last_good >= 0, end - 1 - last_good, count)
    invalid = np.zeros(n, bool)
    if not len(at):
        return consecutive, invalid
    addr = np.take(address, at)
    # most accounts call one address: their latest attempt is the latest of its address
    same = acc[1:] == acc[:-1]
    several = np.zeros(n, bool)
    several[acc[1:][same & (addr[1:] != addr[:-1])]] = True
    tried = count > 0
    invalid[tried] = np.take(result, end[tried] - 1) == not_in_service  # each one's last attempt
    mixed = np.flatnonzero(np.take(several, acc))
    if len(mixed):  # several addresses: the latest attempt per (account, address)
        rows, sub = np.take(acc, mixed), np.take(at, mixed)
        pair = rows * (int(address.max()) + 2) + (np.take(address, sub) + 1)
        _, last_rev = np.unique(pair[::-1], return_index=True)
        last = sub[len(sub) - 1 - last_rev]
        nis = np.take(outcome, last) == not_in_service
        owners = np.take(ev_acc, last)
        total = np.bincount(owners, minlength=n)
        every = (total > 0) & (np.bincount(owners[nis], minlength=n) == total)
        invalid[several] = every[several]
    return consecutive, invalid
