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

__all__ = ["TierStats", "attempt_facts", "latest", "tier_stats"]


def _at(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values[at]`` for positions ``at`` (increasing); ``values`` itself when
    ``at`` is every position (often: every event of a history is a tier action)."""
    return values if len(at) == len(values) else np.take(values, at)


def latest(acc: np.ndarray, values: np.ndarray, n: int, floor: int = -1) -> np.ndarray:
    """Per account, ``values`` of its latest event among ``acc`` (positions sorted
    by account then instant; ``values`` not decreasing within an account), at least
    ``floor``: ``np.maximum.at`` from ``floor`` without its per-element cost."""
    out = np.full(n, floor, dtype=np.int64)
    out[acc] = values
    if len(values) and int(values.min()) < floor:  # only instants before 1970 could be
        np.maximum(out, floor, out=out)
    return out


class TierStats:
    """Per (tier, account): attempts and counted actions in the cycle, the
    latest action in the cycle, the latest counted one, the latest ever; the
    tier events' positions and which of them count."""

    __slots__ = ("at", "counting", "done", "last_counted", "last_ever", "last_in_cycle", "today", "tried")

    def __init__(
        self, at: np.ndarray, counting: np.ndarray, grids: tuple[np.ndarray, ...], today: np.ndarray
    ) -> None:
        self.at, self.counting, self.today = at, counting, today
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
    at = np.flatnonzero(outbound & (action >= 0))
    acc, act, stamp, result, cyc = (_at(e, at) for e in (ev_acc, action, ev_ts, outcome, in_cycle))
    # in place: every fresh event-length array costs its pages as well as its pass
    key = act * n
    key += acc
    cell = act * counts.shape[1]
    cell += result
    cell += 1
    counting = np.take(counts.ravel(), cell, mode="clip")  # (every cell is in range)
    del cell
    ever = latest(key, stamp, k * n)
    # a cycle is a suffix of an account's history: its latest action in the cycle
    # is its latest action, when that is in the cycle; when every tier event is in
    # the cycle (often) the in-cycle reductions are the whole ones
    if cyc.all():
        hit = np.flatnonzero(counting)
        key_cyc, last_in_cycle = key, ever.copy()
    else:
        in_cyc = np.flatnonzero(cyc)
        hit = np.flatnonzero(cyc & counting)
        key_cyc = np.take(key, in_cyc)
        last_in_cycle = latest(key_cyc, np.take(stamp, in_cyc), k * n)
    tried = np.bincount(key_cyc, minlength=k * n)
    if len(hit) == len(key_cyc):  # every action in the cycle counts
        done, last_counted = tried.copy(), last_in_cycle.copy()
    else:
        key_hit = np.take(key, hit)
        if 2 * len(hit) > len(key_cyc):  # most count: subtract the few that do not
            miss = key_cyc[~np.take(counting, in_cyc)] if len(key_cyc) < len(key) else key[~counting]
            done = tried - np.bincount(miss, minlength=k * n)
        else:
            done = np.bincount(key_hit, minlength=k * n)
        last_counted = latest(key_hit, np.take(stamp, hit), k * n)
    tried, done, ever = tried.reshape(k, n), done.reshape(k, n), ever.reshape(k, n)
    last_in_cycle, last_counted = last_in_cycle.reshape(k, n), last_counted.reshape(k, n)
    grids = (tried, done, last_in_cycle, last_counted, ever)
    # actions today: only the latest of a history can be (few pass the batch's earliest midnight)
    recent = np.flatnonzero(stamp >= today_us.min()) if n else at[:0]
    recent_acc = np.take(acc, recent)
    today = np.bincount(recent_acc[np.take(stamp, recent) >= np.take(today_us, recent_acc)], minlength=n)
    return TierStats(at, counting, grids, today)


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
