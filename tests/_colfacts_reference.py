"""The columnar facts stage as it was at 5c53727 (before issue 12's facts
work), kept verbatim as the reference that :mod:`test_colfacts_equal` holds
the current ``derive_batch`` equal to: ``_facts.derive_batch`` and the helpers
it called whose code has changed since (copied from ``_column``, ``_local``,
``_placement``, ``_promise``, ``_dates``). The only edit: a zone table's
``local_day`` is the old per-instant lookup (``_local_day``), not the
method (which has a fast path now)."""

# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation._calendar import add_years, business_days_after
from escalation._facts import WEEKDAY_NAMES
from escalation.backends.columnar._column import Column
from escalation.backends.columnar._facts import CHANNELS, OUTCOMES, Facts
from escalation.backends.columnar._multizone import other_zones
from escalation.backends.columnar._why import Why
from escalation.backends.columnar._zones import DAY_US, US, day_start_us, table_for
from escalation.record import KNOWN_FLAGS, Channel, Outcome, zone

if TYPE_CHECKING:
    from escalation.policy import Policy
    from escalation.portfolio.arrow import TypedBatch

_SEP = "\x1f"
_BIG = 2**52
_EPOCH = dt.date(1970, 1, 1)
_UNREACHED = [OUTCOMES.index(o) for o in ("no_answer", "busy", "failed", "not_in_service", "voicemail")]
_UNREACHED.append(OUTCOMES.index("wrong_party"))


def _local_day(table: Any, instants_us: np.ndarray) -> np.ndarray:
    return (instants_us + table.offsets(instants_us)) // DAY_US


def _money(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """decimal128(38, 4) → int64 units of 1/10,000 and a mask of values that fit."""
    arr = column.combine_chunks()
    n = len(arr)
    valid = ~np.asarray(arr.is_null(), dtype=bool) if n else np.zeros(0, bool)
    buffer = arr.buffers()[1]
    if buffer is None or n == 0:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    words = np.frombuffer(buffer, dtype=np.int64, count=2 * (n + arr.offset))[2 * arr.offset :]
    low, high = words[0::2], words[1::2]
    fits = high == (low >> 63)
    return np.where(valid, low, 0), valid & fits


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """The values as an object array of ``str`` (``None`` where null)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    out: np.ndarray = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    return out


def _days(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    known = ~np.asarray(arr.is_null(), dtype=bool)
    values = np.asarray(arr.cast(pa.int32()).fill_null(0), dtype=np.int64)
    return values, known


def _instants(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    known = ~np.asarray(arr.is_null(), dtype=bool)
    values = np.asarray(arr.cast(pa.int64()).fill_null(0), dtype=np.int64)
    return values, known


def _codes(column: pa.ChunkedArray, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index of each value in ``vocabulary`` (-1 when null), and where a value is unknown.
    Dictionary-encoded chunks are looked up once per dictionary entry."""
    value_set = pa.array(vocabulary, pa.string())
    codes: list[np.ndarray] = []
    bad: list[np.ndarray] = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            words = chunk.dictionary
            lut = np.append(np.asarray(pc.index_in(words, value_set=value_set).fill_null(-1), np.int64), -1)
            odd = np.append((lut[:-1] < 0) & ~np.asarray(words.is_null(), dtype=bool), False)
            index = np.asarray(chunk.indices.fill_null(len(words)), dtype=np.int64)
            codes.append(lut[index])
            bad.append(odd[index])
        else:
            found = np.asarray(pc.index_in(chunk, value_set=value_set).fill_null(-1), dtype=np.int64)
            codes.append(found)
            bad.append((found < 0) & ~np.asarray(chunk.is_null(), dtype=bool))
    if not codes:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    return np.concatenate(codes), np.concatenate(bad)


def _labels(column: pa.ChunkedArray) -> np.ndarray:
    """A number per value (-1 when null): equal numbers for equal values."""
    if not column.num_chunks:
        return np.zeros(0, np.int64)
    if pa.types.is_dictionary(column.type):
        arr = column.unify_dictionaries().combine_chunks()
        return np.asarray(arr.indices.fill_null(-1), dtype=np.int64)
    return np.asarray(pc.dictionary_encode(column.combine_chunks()).indices.fill_null(-1), dtype=np.int64)


def _in(codes: np.ndarray, members: list[int], size: int) -> np.ndarray:
    """``np.isin(codes, members)`` for codes in ``-1..size-1`` (-1 never a member), by table look-up."""
    table = np.zeros(size + 1, bool)
    table[[m for m in members if 0 <= m < size]] = True
    found: np.ndarray = table[codes]
    return found


def _sets(column: pa.ChunkedArray) -> np.ndarray:
    """Each row's list as a ``frozenset`` (empty where null): one set per distinct list."""
    arr = column.combine_chunks()
    n = len(arr)
    out = np.empty(n, dtype=object)
    flat = pc.list_flatten(arr)
    awkward = flat.null_count > 0 or (
        len(flat) > 0 and bool(pc.any(pc.or_(pc.match_substring(flat, _SEP), pc.equal(flat, ""))).as_py())
    )
    if awkward:  # a null, an empty string or the separator inside a list: one row at a time
        out[:] = [frozenset(v) if v else frozenset() for v in arr.to_pylist()]
        return out
    encoded = pc.dictionary_encode(pc.binary_join(arr, _SEP))
    keys = encoded.dictionary.to_pylist()
    sets = np.empty(len(keys) + 1, dtype=object)
    sets[:] = [frozenset(k.split(_SEP)) if k else frozenset() for k in keys] + [frozenset()]
    out[:] = sets[np.asarray(encoded.indices.fill_null(len(keys)), dtype=np.int64)]
    return out


def _members(column: pa.ChunkedArray, names: list[str]) -> dict[str, np.ndarray]:
    """For each of ``names``, the rows whose list holds it (no per-row Python)."""
    arr = column.combine_chunks()
    n = len(arr)
    flat = pc.list_flatten(arr)
    parents = np.asarray(pc.list_parent_indices(arr), dtype=np.int64)
    out = {}
    for name in names:
        mask = np.zeros(n, bool)
        mask[parents[np.asarray(pc.equal(flat, name).fill_null(False), dtype=bool)]] = True
        out[name] = mask
    return out


def event_days(ev_ts: np.ndarray, ev_zone: np.ndarray, tables: list[Any]) -> np.ndarray:
    """The local day of each event in its account's zone (``ev_zone``: an index
    into ``tables``, -1 for none: day 0). The commonest zone is looked up over
    every event at once and the other zones' events fixed up: most accounts
    share a zone, so one pass instead of a masked pass per zone."""
    days = np.zeros(len(ev_ts), np.int64)
    known = ev_zone[ev_zone >= 0]
    if not len(known):
        return days
    common = int(np.bincount(known).argmax())
    days = _local_day(tables[common], ev_ts)
    rest = np.flatnonzero(ev_zone != common)
    days[rest] = 0
    rest_zone = ev_zone[rest]
    for z, table in enumerate(tables):
        if z != common:
            mine = rest[rest_zone == z]
            days[mine] = _local_day(table, ev_ts[mine])
    result: np.ndarray = days
    return result


def placement_columns(
    policy: Policy,
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    today: np.ndarray,
    outcome_names: list[str],
) -> dict[str, Column]:
    """``placed``, ``placed_with`` and ``days_placed``; ``events`` = (account,
    local day, outbound, tier index, outcome code), sorted by account then instant."""
    n = len(today)
    acc, day, outbound, action, outcome = events
    steps = [(t, tier.model) for t, tier in enumerate(policy.tiers) if tier.model.kind != "contact"]
    counted = np.zeros(len(acc), bool)
    for t, model in steps:
        codes = [outcome_names.index(o.value) for o in model.counting_outcomes]
        made = np.where(outcome < 0, outcome_names.index("sent") in codes, np.isin(outcome, codes))
        counted |= outbound & (action == t) & made
    latest = np.full(n, -1, np.int64)
    hits = np.flatnonzero(counted)
    latest[acc[hits]] = hits  # events are sorted: the last write is the latest
    has = latest >= 0
    step = np.full(n, -1, np.int64)
    since = np.zeros(n, np.int64)
    step[has], since[has] = action[latest[has]], day[latest[has]]
    agencies = np.full(len(policy.tiers) + 1, None, dtype=object)  # index -1: no step
    for t, model in steps:
        if model.kind == "place":
            agencies[t] = model.agency
    agency = agencies[step]
    placed = agency != None  # noqa: E711 - elementwise
    everyone = np.ones(n, bool)
    return {
        "placed": Column("bool", placed, everyone),
        "placed_with": Column("str", agency, placed),
        "days_placed": Column("num", np.where(placed, today - since, 0), placed),
    }


class Promise:
    """Per account: whether it has a promise, when it was made, and whether it is broken now."""

    __slots__ = ("broken", "columns", "fallback", "has", "made")

    def __init__(
        self, has: np.ndarray, made: np.ndarray, broken: np.ndarray, fallback: np.ndarray,
        columns: dict[str, Column],
    ) -> None:  # fmt: skip
        self.has, self.made, self.broken, self.fallback, self.columns = has, made, broken, fallback, columns


def promise_facts(
    policy: Policy,
    now_us: int,
    amount: tuple[np.ndarray, np.ndarray, np.ndarray],
    due: np.ndarray,
    made: np.ndarray,
    start_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> Promise:
    """``amount`` = (units of 1/10,000, present, fits); ``start_of(days, rows)`` = µs
    of local day starts; ``events`` = (account, instant, is payment, amount, amount known)."""
    value, has, fits = amount
    n = len(has)
    ev_acc, ev_ts, pay, ev_amount, ev_ok = events
    rules = policy.header.promise
    fallback = has & ~fits
    fallback |= has & (made > now_us)
    deadline = start_of(due + (rules.grace or 0) + 1, has)
    window = pay & has[ev_acc] & (ev_ts >= made[ev_acc]) & (ev_ts < deadline[ev_acc]) & (ev_ts <= now_us)
    unknown = np.bincount(ev_acc[window & ~ev_ok], minlength=n) > 0
    paid_f = np.bincount(ev_acc[window & ev_ok], weights=ev_amount[window & ev_ok], minlength=n)
    fallback |= np.abs(paid_f) > _BIG
    paid = paid_f.astype(np.int64)
    share = 1 - Fraction(rules.tolerance)  # target = amount × (1 − tolerance), exactly
    kept = np.zeros(n, bool)
    rows = np.flatnonzero(has & ~fallback)
    if len(rows):
        lhs = paid[rows].astype(object) * share.denominator
        rhs = value[rows].astype(object) * share.numerator
        kept[rows] = np.asarray(lhs >= rhs, dtype=bool)
    unsure = has & ~kept & unknown
    broken = has & ~kept & ~unknown & (now_us >= deadline)
    short = np.where(kept, np.maximum(0, value - paid), value - paid)
    known = ~unsure
    columns = {
        "promise_active": Column("bool", has & ~kept & ~broken, np.ones(n, bool)),
        "promise_kept": Column("bool", kept, known),
        "promise_broken": Column("bool", broken, known),
        "promise_shortfall": Column("money", short, has & known),
        "promise_to_pay.amount": Column("money", value, has),
    }
    return Promise(has, made, broken, fallback, columns)


def time_barred(
    policy: Policy, jurisdiction: np.ndarray, today: np.ndarray, paid: np.ndarray, paid_known: np.ndarray
) -> Column:
    n = len(today)
    limitation = policy.header.limitation
    if limitation is None or "last_payment_at" not in limitation.start:
        # the other start dates live in `rest`: those accounts go to the reference engine
        return Column("bool", np.zeros(n, bool), np.zeros(n, bool))
    out = np.zeros(n, bool)
    rows = np.flatnonzero(paid_known)
    by, default = limitation.by_jurisdiction, limitation.years
    span = {j: by.get(j or "", default) for j in set(jurisdiction[rows].tolist())}
    years = np.asarray([span[j] for j in jurisdiction[rows].tolist()], dtype=np.int64)
    # one end per distinct (start day, years): one key per pair
    width = int(years.max()) + 1 if len(years) else 1
    keys, inverse = np.unique(paid[rows] * width + years, return_inverse=True)
    ends = [
        (add_years(_EPOCH + dt.timedelta(days=start), count) - _EPOCH).days
        for start, count in zip((keys // width).tolist(), (keys % width).tolist(), strict=True)
    ]
    out[rows] = today[rows] >= np.asarray(ends, dtype=np.int64)[inverse.reshape(-1)]
    return Column("bool", out, paid_known.copy())


def validation_period(
    names: np.ndarray, tables: dict[str, Any], today: np.ndarray, sent: np.ndarray, known: np.ndarray
) -> Column:
    n = len(today)
    out = np.zeros(n, bool)
    for name, table in tables.items():
        mine = (names == name) & known
        if not mine.any():
            continue
        days, inverse = np.unique(_local_day(table, sent[mine]), return_inverse=True)
        ends = [
            (business_days_after(_EPOCH + dt.timedelta(days=day), 5, "US") - _EPOCH).days + 30
            for day in days.tolist()
        ]
        out[mine] = today[mine] <= np.asarray(ends, dtype=np.int64)[inverse]
    return Column("bool", out, known.copy())


def interrupted(
    policy: Policy,
    barred: Column,
    jurisdiction: np.ndarray,
    paid: np.ndarray,
    today: np.ndarray,
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Re-judge, in ``barred``, the accounts barred without interruptions with
    the policy's ``limitation.interrupted_by`` (:func:`escalation._notices.time_barred`):
    a matching event dated after the period's start and before it ran out
    restarts it from the event's local day. ``events`` = (account, local day,
    outbound, channel, outcome, tier index), sorted by account then instant.
    Returns the accounts this cannot judge (a filter naming a non-tier action)."""
    limitation = policy.header.limitation
    n = len(today)
    rows: np.ndarray = barred.values.astype(bool) & barred.known
    if limitation is None or not limitation.interrupted_by or not rows.any():
        return np.zeros(n, bool)
    acc, day, outbound, channel, outcome, action = events
    channels, outcomes = [c.value for c in Channel], [o.value for o in Outcome]
    tier_ids = [t.model.id for t in policy.tiers]
    match = np.zeros(len(acc), bool)
    for flt in limitation.interrupted_by:
        if any(a not in tier_ids for a in flt.actions):
            return rows  # an action outside the ladder: not among the event codes
        m = rows[acc].copy()
        if flt.direction != "any":
            m &= outbound if flt.direction == "outbound" else ~outbound
        if flt.channels:
            m &= _in(channel, [channels.index(c.value) for c in flt.channels], len(channels))
        if flt.outcomes:
            m &= _in(outcome, [outcomes.index(o.value) for o in flt.outcomes], len(outcomes))
        if flt.actions:
            m &= _in(action, [tier_ids.index(a) for a in flt.actions], len(tier_ids))
        if flt.tags:
            tagged = [i for i, t in enumerate(policy.tiers) if set(flt.tags) & set(t.model.tags)]
            m &= _in(action, tagged, len(tier_ids))
        match |= m
    memo: dict[tuple[int, int], int] = {}

    def plus(start: int, years: int) -> int:
        end = memo.get((start, years))
        if end is None:
            end = memo[(start, years)] = (add_years(_EPOCH + dt.timedelta(days=start), years) - _EPOCH).days
        return end

    hits = np.flatnonzero(match)
    changes: dict[int, list[int]] = {}
    for i, d in zip(acc[hits].tolist(), day[hits].tolist(), strict=True):
        changes.setdefault(i, []).append(d)
    for i, found in changes.items():
        years = limitation.by_jurisdiction.get(jurisdiction[i] or "", limitation.years)
        start = int(paid[i])
        expiry = plus(start, years)
        for d in found:  # in time order
            if start < d < expiry:
                start, expiry = d, plus(d, years)
        barred.values[i] = today[i] >= expiry
    return np.zeros(n, bool)


def _group_max(acc: np.ndarray, values: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int64)
    np.maximum.at(out, acc[mask], values[mask])
    return out


def _in_order(acc: np.ndarray, ts: np.ndarray) -> bool:
    """Whether events are already sorted by account, then instant."""
    if len(acc) < 2:
        return True
    step = np.diff(acc)
    return bool((step >= 0).all() and ((step > 0) | (np.diff(ts) >= 0)).all())


def derive_batch(batch: TypedBatch, policy: Policy, now: dt.datetime) -> Facts:
    """The facts of every account of ``batch`` at ``now`` (see the module docstring)."""
    acc_t, ev_t = batch.accounts, batch.encoded_events
    n = acc_t.num_rows
    now_us = round(now.timestamp() * US)
    why = Why(n)
    why.mark("raw record", ~np.asarray(acc_t.column("raw").is_null(), dtype=bool))
    why.mark("fields in rest", ~np.asarray(acc_t.column("rest").is_null(), dtype=bool))

    # zones: the account's own, or the policy's; and the others it may be in (slots 1..)
    zone_col = acc_t.column("timezone").fill_null(policy.header.timezone)
    names = _strings(zone_col)
    slots = other_zones(names, acc_t.column("timezones"))
    today = np.zeros(n, np.int64)
    hours = np.zeros(n, np.int64)
    weekday = np.empty(n, dtype=object)
    zones: dict[str, Any] = {}
    ev_acc = np.asarray(ev_t.column("account"), dtype=np.int64)
    ev_ts, _ = _instants(ev_t.column("at"))
    first = int(ev_ts.min()) if len(ev_ts) else now_us
    zone_code = np.full(n, -1, np.int64)  # index into `zones` (-1: not a zone)
    for name in sorted(set(names.tolist())):
        mine = names == name
        try:
            zones[name] = zone(name)
        except ValueError:
            why.mark("time zone", mine)
            continue
        table = table_for(name, zones[name], min(first, now_us - 40 * 366 * DAY_US), now_us)
        zone_code[mine] = len(zones) - 1
        local = now_us + int(table.offsets(np.asarray([now_us]))[0])
        today[mine] = local // DAY_US
        hours[mine] = (local % DAY_US) // (3600 * US)
        weekday[mine] = WEEKDAY_NAMES[(local // DAY_US + 3) % 7]  # 1970-01-01 was a Thursday
        zones[name] = (zones[name], table)
    others: dict[str, Any] = {}
    for slot in slots:
        for name in set(slot.tolist()) - {None}:
            try:
                tz = zone(name)
            except (ValueError, TypeError):
                why.mark("time zone", slot == name)
                continue
            others[name] = table_for(name, tz, min(first, now_us - 40 * 366 * DAY_US), now_us)
    multi = np.logical_or.reduce([s != None for s in slots]) if slots else np.zeros(n, bool)  # noqa: E711

    # days overdue
    days_col, days_known = _days(acc_t.column("days_overdue"))
    since, since_known = _days(acc_t.column("overdue_since"))
    due, due_known = _days(acc_t.column("due_date"))
    start = np.where(since_known, since, due)
    days_overdue = np.where(days_known, days_col, today - start)
    odd_days = since_known & (since > today)
    odd_days |= since_known & days_known & (today - since != days_col)
    why.mark("days overdue", odd_days | ~(days_known | since_known | due_known))
    cycle_day = np.where(days_overdue >= 0, today - days_overdue, today - days_overdue - 30)
    cycle_us = np.zeros(n, np.int64)
    today_us = np.zeros(n, np.int64)
    for z, (name, (tz, _table)) in enumerate(zones.items()):
        mine = zone_code == z
        cycle_us[mine] = day_start_us(name, tz, cycle_day[mine])
        today_us[mine] = day_start_us(name, tz, today[mine])

    # record checks the reference engine makes with the policy and `now`
    currency = _strings(acc_t.column("currency"))
    why.mark("currency", currency != policy.header.currency)
    flags = _sets(acc_t.column("flags"))
    flag_lists = acc_t.column("flags").combine_chunks()
    vocabulary = pa.array(sorted(KNOWN_FLAGS | policy.flags), pa.string())
    unknown = ~np.asarray(pc.is_in(pc.list_flatten(flag_lists), value_set=vocabulary), dtype=bool)
    why.mark("unknown flag", np.asarray(pc.list_parent_indices(flag_lists), dtype=np.int64)[unknown])
    opt_out = _sets(acc_t.column("opt_out"))
    sent, sent_known = _instants(acc_t.column("validation_notice_sent_at"))
    why.mark("date after now", sent_known & (sent > now_us))
    paid_day, paid_known = _days(acc_t.column("last_payment_at"))
    why.mark("date after now", paid_known & (paid_day > today))

    # events, sorted by account then instant (the layout's order: sorted only when not)
    events = ev_t
    if not _in_order(ev_acc, ev_ts):
        ev_order = np.lexsort((ev_ts, ev_acc))  # stable: equal instants keep their record order
        ev_acc, ev_ts = ev_acc[ev_order], ev_ts[ev_order]
        events = ev_t.take(pa.array(ev_order))
    tier_ids = [t.model.id for t in policy.tiers]
    action, _ = _codes(events.column("action"), tier_ids)
    channel, bad_channel = _codes(events.column("channel"), CHANNELS)
    outcome, bad_outcome = _codes(events.column("outcome"), OUTCOMES)
    outbound = _codes(events.column("direction"), ["outbound"])[0] == 0
    misdirected = np.asarray(events.column("misdirected").fill_null(False), dtype=bool)
    consent = ~np.asarray(events.column("consent_until").is_null(), dtype=bool)
    address = _labels(events.column("address"))
    # an outbound event without a channel: the reference engine fills it or refuses the record
    why.mark(
        "event shape", ev_acc[bad_channel | bad_outcome | misdirected | consent | (outbound & (channel < 0))]
    )
    why.mark("event after now", ev_acc[ev_ts > now_us])
    ev_day = event_days(ev_ts, zone_code[ev_acc], [table for _tz, table in zones.values()])
    in_cycle = ev_ts >= cycle_us[ev_acc]

    # per tier, over the tier events only: one pass keyed by (tier, account)
    k = len(tier_ids)
    columns: dict[str, Column] = {}
    everyone = np.ones(n, bool)
    counts = np.zeros((k, len(OUTCOMES) + 1), bool)  # [tier, outcome code]; the last column: none
    for t, tier in enumerate(policy.tiers):
        counting = [OUTCOMES.index(o.value) for o in tier.model.counting_outcomes]
        counts[t, counting] = True
        counts[t, -1] = OUTCOMES.index("sent") in counting  # an event without an outcome was sent
    is_tier = outbound & (action >= 0)
    at = np.flatnonzero(is_tier)
    key = action[at] * n + ev_acc[at]
    stamp, cyc = ev_ts[at], in_cycle[at]
    counted = cyc & counts[action[at], outcome[at]]
    tried = np.bincount(key[cyc], minlength=k * n).reshape(k, n)
    done = np.bincount(key[counted], minlength=k * n).reshape(k, n)
    last_in_cycle = _group_max(key, stamp, cyc, k * n).reshape(k, n)
    counted_last = _group_max(key, stamp, counted, k * n).reshape(k, n)
    last_ever = _group_max(key, stamp, np.ones(len(at), bool), k * n).reshape(k, n)
    for t, tier in enumerate(policy.tiers):
        columns[f"done.{tier.model.id}"] = Column("num", done[t], everyone)
        columns[f"attempts.{tier.model.id}"] = Column("num", tried[t], everyone)
        ever = last_ever[t]
        columns[f"days_since.{tier.model.id}"] = Column("num", (now_us - ever) // DAY_US, ever >= 0)
    actions_today = np.bincount(ev_acc[is_tier & (ev_ts >= today_us[ev_acc])], minlength=n)
    month, week = now_us - 30 * DAY_US, now_us - 7 * DAY_US
    on = np.flatnonzero(outbound & (channel >= 0) & (ev_ts > month))
    by_channel = channel[on] * n + ev_acc[on]
    c30 = np.bincount(by_channel, minlength=len(CHANNELS) * n).reshape(len(CHANNELS), n)
    c7 = np.bincount(by_channel[ev_ts[on] > week], minlength=len(CHANNELS) * n).reshape(len(CHANNELS), n)
    for c, name in enumerate(CHANNELS):
        columns[f"contacts_30d.{name}"] = Column("num", c30[c], everyone)
        columns[f"contacts_7d.{name}"] = Column("num", c7[c], everyone)
    talk = outcome == OUTCOMES.index("conversation")
    columns["conversations_30d"] = Column(
        "num", np.bincount(ev_acc[talk & (ev_ts > month)], minlength=n), everyone
    )

    # payments and earlier promises (a promise on the record goes to the reference engine)
    pay = outcome == OUTCOMES.index("payment")
    amount, amount_ok = _money(events.column("amount"))
    last_pay = _group_max(ev_acc, ev_ts, pay, n)

    def start_of(days: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.zeros(n, np.int64)
        for z, (name, (tz, _table)) in enumerate(zones.items()):
            mine = rows & (zone_code == z)
            if mine.any():
                out[mine] = day_start_us(name, tz, days[mine])
        return out

    p_value, p_fits = _money(acc_t.column("promise_amount"))
    p_has = ~np.asarray(acc_t.column("promise_amount").is_null(), dtype=bool)
    p_due, _ = _days(acc_t.column("promise_due_date"))
    p_made, _ = _instants(acc_t.column("promise_made_at"))
    promise = promise_facts(
        policy,
        now_us,
        (p_value, p_has, p_fits),
        p_due,
        p_made,
        start_of,
        (ev_acc, ev_ts, pay, amount, amount_ok),
    )
    why.mark("promise", promise.fallback)
    columns.update(promise.columns)
    # earlier promises (history outcomes): broken when no payment came after; the
    # record's own promise is judged with its amount (broken now, in this cycle: one more)
    promise_ev = (outcome == OUTCOMES.index("promise_to_pay")) & in_cycle
    promise_ev &= ~(promise.has[ev_acc] & (ev_ts >= promise.made[ev_acc]))
    broken = promise_ev & (last_pay[ev_acc] <= ev_ts)
    broken_count = np.bincount(ev_acc[broken], minlength=n) + (promise.broken & (p_made >= cycle_us))
    columns["broken_promises"] = Column("num", broken_count.astype(np.int64), everyone)
    in_cycle_pay = pay & in_cycle
    unknown_amount = np.bincount(ev_acc[in_cycle_pay & ~amount_ok], minlength=n) > 0
    paid = np.bincount(
        ev_acc[in_cycle_pay & amount_ok], weights=amount[in_cycle_pay & amount_ok], minlength=n
    )
    columns["paid_in_cycle"] = Column("money", paid.astype(np.int64), ~unknown_amount)
    if np.any(np.abs(paid) > 2**52):
        why.mark("money overflow", np.abs(paid) > 2**52)
    latest_index = np.full(n, -1, np.int64)
    pay_idx = np.flatnonzero(pay)
    latest_index[ev_acc[pay_idx]] = pay_idx  # events are sorted: the last write is the latest
    has_pay = latest_index >= 0
    pick = np.where(has_pay, latest_index, len(ev_ts))  # one past the end: a padding slot
    last_amount_ok = has_pay & np.append(amount_ok, False)[pick]
    columns["last_payment_amount"] = Column("money", np.append(amount, 0)[pick], last_amount_ok)
    pay_day = np.where(has_pay, np.append(ev_day, 0)[pick], -(10**9))
    last_day = np.where(paid_known, np.maximum(paid_day, pay_day), pay_day)
    columns["days_since_payment"] = Column("num", today - last_day, paid_known | has_pay)

    # call attempts to the debtor (third-party tiers excluded) in this cycle
    third = [t for t, tier in enumerate(policy.tiers) if "third_party" in tier.model.tags]
    attempt = outbound & (channel == CHANNELS.index("phone")) & in_cycle & (outcome >= 0)
    attempt &= ~_in(action, third, k)
    good = attempt & ~_in(outcome, _UNREACHED, len(OUTCOMES))
    att_idx = np.flatnonzero(attempt)
    last_good = np.full(n, -1, np.int64)
    good_idx = np.flatnonzero(good)
    last_good[ev_acc[good_idx]] = good_idx
    after_good = attempt & (np.arange(len(ev_ts)) > last_good[ev_acc])
    columns["consecutive_failed_attempts"] = Column(
        "num", np.bincount(ev_acc[after_good], minlength=n), everyone
    )
    invalid = np.zeros(n, bool)
    if len(att_idx):
        pair = ev_acc[att_idx] * (int(address.max()) + 2) + (address[att_idx] + 1)
        _, last_rev = np.unique(pair[::-1], return_index=True)
        latest = att_idx[len(att_idx) - 1 - last_rev]
        nis = outcome[latest] == OUTCOMES.index("not_in_service")
        total = np.bincount(ev_acc[latest], minlength=n)
        invalid = (total > 0) & (np.bincount(ev_acc[latest[nis]], minlength=n) == total)
    columns["number_invalid"] = Column("bool", invalid, everyone)

    # the record's own facts
    amount_overdue, ok1 = _money(acc_t.column("amount_overdue"))
    balance, ok2 = _money(acc_t.column("balance"))
    why.mark("money overflow", ~(ok1 & ok2))
    columns["days_overdue"] = Column("num", days_overdue, everyone)
    columns["amount_overdue"] = Column("money", amount_overdue, everyone)
    columns["balance"] = Column("money", balance, everyone)
    columns["currency"] = Column("str", currency, everyone)
    columns["flags"] = Column("set", flags, everyone, flag_lists)
    columns["opt_out"] = Column("set", opt_out, everyone)
    for name in ("segment", "product", "jurisdiction", "actor_type"):
        values = _strings(acc_t.column(name))
        columns[name] = Column("str", values, values != None)  # noqa: E711 - elementwise
    plan = _strings(acc_t.column("plan_status"))
    columns["plan_active"] = Column("bool", plan == "active", everyone)
    columns["local_hour"] = Column("num", hours, everyone)
    columns["weekday"] = Column("str", weekday, everyone)
    columns["dispute_open"] = Column("bool", np.zeros(n, bool), everyone)
    cease = columns["flags"].member("cease_communication")
    columns["cease_received"] = Column("bool", cease, everyone)
    columns["breathing_space_active"] = Column("bool", np.zeros(n, bool), everyone)
    plan_due = _days(acc_t.column("plan_next_due_date"))
    due_days, due_known = plan_due
    columns["plan_days_to_due"] = Column("num", due_days - today, due_known)
    # rows carrying these record fields are decided by the reference engine (they are
    # not typed columns); every vectorised row has none: the native facts' defaults
    columns["forbearance_assessed"] = Column("bool", np.zeros(n, bool), everyone)
    columns["letter_of_claim_reply"] = Column("set", np.full(n, frozenset(), dtype=object), everyone)
    columns.update(placement_columns(policy, (ev_acc, ev_day, outbound, action, outcome), today, OUTCOMES))
    cache: dict[Any, Any] = {
        "tables": {**others, **{name: table for name, (_tz, table) in zones.items()}},
        "multi": multi,
        "multi_rows": np.flatnonzero(multi),
        "opt_out": _members(acc_t.column("opt_out"), CHANNELS),
        "sent": (sent, sent_known),
        "plan_due": plan_due,
        "promise_due": (p_due, p_has),
        "events": events,  # sorted as the ev_* arrays (for columns read rarely: offers made)
    }
    columns["time_barred"] = time_barred(policy, columns["jurisdiction"].values, today, paid_day, paid_known)
    # an interrupting event only moves the end later: only rows barred without them change
    evs = (ev_acc, ev_day, outbound, channel, outcome, action)
    jurisdiction = columns["jurisdiction"].values
    unsure = interrupted(policy, columns["time_barred"], jurisdiction, paid_day, today, evs)
    why.mark("limitation interrupted", unsure)
    columns["in_validation_period"] = validation_period(
        names, {name: table for name, (_tz, table) in zones.items()}, today, sent, sent_known
    )

    stage = np.zeros(n, np.int64)
    for t, tier in enumerate(policy.tiers):
        if not tier.model.ongoing:
            stage[done[t] > 0] = tier.severity
    return Facts(
        n=n,
        now_us=now_us,
        fallback=why.mask,
        why=why,
        columns=columns,
        zone_names=names,
        today=today,
        tier_done=done,
        tier_last=last_in_cycle,
        tier_counted=counted_last,
        stage=stage,
        actions_today=actions_today,
        ev_acc=ev_acc,
        ev_ts=ev_ts,
        ev_action=action,
        ev_channel=channel,
        ev_outcome=outcome,
        ev_outbound=outbound,
        ev_address=address,
        ev_in_cycle=in_cycle,
        ev_day=ev_day,
        cache=cache,
        zone_slots=[names, *slots],
    )
