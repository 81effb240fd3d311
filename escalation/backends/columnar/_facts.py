"""Facts over columns: the same facts as :func:`escalation._facts.derive`,
for a whole batch of accounts at one instant, with numpy.

Only accounts in the common shape are derived here; an account with anything
this module does not compute (several time zones, consent windows, misdirected
calls, fields kept in ``rest``, a value that fails a check) is marked in
``fallback`` and decided by the reference engine. Money is held in integer
units of 1/10,000 (exact for every currency)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation._facts import WEEKDAY_NAMES
from escalation.backends.columnar import _decode as decode
from escalation.backends.columnar._column import (
    Column,
    _days,
    _in,
    _instants,
    _members,
    _money,
    _objects,
    _words,
)
from escalation.backends.columnar._counts import contact_columns
from escalation.backends.columnar._dates import interrupted, time_barred, validation_period
from escalation.backends.columnar._history import attempt_facts, latest, tier_stats
from escalation.backends.columnar._local import event_days
from escalation.backends.columnar._multizone import other_zones_at_once
from escalation.backends.columnar._placement import placement_columns, step_tiers
from escalation.backends.columnar._promise import promise_facts
from escalation.backends.columnar._starts import zone_day_starts
from escalation.backends.columnar._why import Why
from escalation.backends.columnar._zones import DAY_US, US, day_start_us, table_for
from escalation.record import KNOWN_FLAGS, Channel, Outcome, zone

if TYPE_CHECKING:
    from escalation.policy import Policy
    from escalation.portfolio.arrow import TypedBatch

__all__ = ["Column", "Facts", "derive_batch"]

CHANNELS = [c.value for c in Channel]
OUTCOMES = [o.value for o in Outcome]
_UNREACHED = [OUTCOMES.index(o) for o in ("no_answer", "busy", "failed", "not_in_service", "voicemail")]
_UNREACHED.append(OUTCOMES.index("wrong_party"))
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class Facts:
    """Everything the columnar ladder reads, for one batch under one policy's tiers."""

    n: int
    now_us: int
    fallback: np.ndarray
    why: Why
    columns: dict[str, Column]
    zone_names: np.ndarray  # per account
    today: np.ndarray  # local day numbers
    tier_done: np.ndarray  # (tiers, n)
    tier_last: np.ndarray  # (tiers, n) last action in cycle, µs (-1: none)
    tier_counted: np.ndarray  # (tiers, n) last counting action in cycle
    stage: np.ndarray  # severity of the stage (0: none)
    actions_today: np.ndarray
    ev_acc: np.ndarray
    ev_ts: np.ndarray
    ev_action: np.ndarray  # tier index or -1
    ev_channel: np.ndarray
    ev_outcome: np.ndarray
    ev_outbound: np.ndarray
    ev_address: np.ndarray
    ev_in_cycle: np.ndarray
    ev_day: np.ndarray  # local day of each event
    cache: dict[Any, Any] = field(default_factory=dict)
    zone_slots: list[np.ndarray] = field(default_factory=list)  # own zone, then others (see _multizone)


def _in_order(acc: np.ndarray, ts: np.ndarray) -> bool:
    """Whether events are already sorted by account, then instant (boolean
    passes over views: no differences allocated)."""
    if len(acc) < 2:
        return True
    later = acc[1:] > acc[:-1]
    later |= (acc[1:] == acc[:-1]) & (ts[1:] >= ts[:-1])
    return bool(later.all())


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
    zone_ids, zone_words = _words(zone_col)
    names = _objects(zone_ids, zone_words)
    slots, multi = other_zones_at_once(names, acc_t.column("timezones"))
    ev_acc = np.asarray(ev_t.column("account"), dtype=np.int64)
    ev_ts, _ = _instants(ev_t.column("at"))
    first = int(ev_ts.min()) if len(ev_ts) else now_us
    zones: dict[str, Any] = {}
    # per distinct name (sorted: `zones` keeps that order), then per account by look-up
    code_of = np.full(len(zone_words) + 1, -1, np.int64)  # index into `zones` (-1: not a zone)
    today_of = np.zeros(len(zone_words) + 1, np.int64)
    hours_of = np.zeros(len(zone_words) + 1, np.int64)
    midnight_of = np.zeros(len(zone_words) + 1, np.int64)  # µs of today's start
    weekday_of = np.empty(len(zone_words) + 1, dtype=object)
    bad_zone = np.zeros(len(zone_words) + 1, bool)
    for name, word in sorted((name, w) for w, name in enumerate(zone_words)):
        try:
            zones[name] = zone(name)
        except ValueError:
            bad_zone[word] = True
            continue
        table = table_for(name, zones[name], min(first, now_us - 40 * 366 * DAY_US), now_us)
        code_of[word] = len(zones) - 1
        local = now_us + int(table.offsets(np.asarray([now_us]))[0])
        today_of[word] = local // DAY_US
        hours_of[word] = (local % DAY_US) // (3600 * US)
        midnight_of[word] = int(day_start_us(name, zones[name], today_of[word : word + 1])[0])
        weekday_of[word] = WEEKDAY_NAMES[(local // DAY_US + 3) % 7]  # 1970-01-01 was a Thursday
        zones[name] = (zones[name], table)
    if bad_zone.any():
        why.mark("time zone", bad_zone[zone_ids])
    zone_code, today, hours = code_of[zone_ids], today_of[zone_ids], hours_of[zone_ids]
    weekday = weekday_of[zone_ids]
    tables = [table for _tz, table in zones.values()]
    others: dict[str, Any] = {}
    for slot in slots:
        for name in set(slot.tolist()) - {None}:
            try:
                tz = zone(name)
            except (ValueError, TypeError):
                why.mark("time zone", slot == name)
                continue
            others[name] = table_for(name, tz, min(first, now_us - 40 * 366 * DAY_US), now_us)

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
    today_us = midnight_of[zone_ids]
    for z, name in enumerate(zones):
        mine = zone_code == z
        cycle_us[mine] = zone_day_starts(name, cycle_day[mine])

    # record checks the reference engine makes with the policy and `now`
    currency_codes, currency_words = _words(acc_t.column("currency"))
    currency = _objects(currency_codes, currency_words)
    other_currency = np.asarray([w != policy.header.currency for w in currency_words] + [True], dtype=bool)
    why.mark("currency", other_currency[currency_codes])
    flags = decode.sets(acc_t.column("flags"))
    flag_lists = acc_t.column("flags").combine_chunks()
    vocabulary = pa.array(sorted(KNOWN_FLAGS | policy.flags), pa.string())
    unknown = ~np.asarray(pc.is_in(pc.list_flatten(flag_lists), value_set=vocabulary), dtype=bool)
    why.mark("unknown flag", np.asarray(pc.list_parent_indices(flag_lists), dtype=np.int64)[unknown])
    opt_out = decode.sets(acc_t.column("opt_out"))
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
    action, _ = decode.codes(events.column("action"), tier_ids)
    channel, bad_channel = decode.codes(events.column("channel"), CHANNELS)
    outcome, bad_outcome = decode.codes(events.column("outcome"), OUTCOMES)
    outbound = decode.is_word(events.column("direction"), "outbound")
    misdirected = decode.true_values(events.column("misdirected"))
    consent = ~decode.nulls(events.column("consent_until"))
    address = decode.labels(events.column("address"))
    # an outbound event without a channel: the reference engine fills it or refuses the record
    odd = bad_channel | bad_outcome | misdirected | consent | (outbound & (channel < 0))
    if odd.any():
        why.mark("event shape", ev_acc[odd])
    late = ev_ts > now_us
    if late.any():
        why.mark("event after now", ev_acc[late])
    ev_day = event_days(ev_ts, ev_acc, zone_code, tables)
    in_cycle = ev_ts >= np.take(cycle_us, ev_acc)

    # per tier, over the tier events only: one pass keyed by (tier, account)
    k = len(tier_ids)
    columns: dict[str, Column] = {}
    everyone = np.ones(n, bool)
    counts = np.zeros((k, len(OUTCOMES) + 1), bool)  # [tier, outcome code + 1]; column 0: none
    for t, tier in enumerate(policy.tiers):
        counting = [OUTCOMES.index(o.value) + 1 for o in tier.model.counting_outcomes]
        counts[t, counting] = True
        counts[t, 0] = OUTCOMES.index("sent") + 1 in counting  # an event without an outcome was sent
    stats = tier_stats(n, counts, (ev_acc, ev_ts, action, outcome, outbound, in_cycle), today_us, cycle_us)
    done, last_in_cycle, counted_last = stats.done, stats.last_in_cycle, stats.last_counted
    acted = stats.last_ever >= 0
    # every tier at once, in place of the latest instants (read nowhere else)
    days_since = np.subtract(now_us, stats.last_ever, out=stats.last_ever)
    days_since //= DAY_US
    for t, tier in enumerate(policy.tiers):
        columns[f"done.{tier.model.id}"] = Column("num", done[t], everyone)
        columns[f"attempts.{tier.model.id}"] = Column("num", stats.tried[t], everyone)
        columns[f"days_since.{tier.model.id}"] = Column("num", days_since[t], acted[t])
    actions_today = stats.today
    contacts = (ev_acc, ev_ts, channel, outcome, outbound)
    columns.update(contact_columns(n, now_us, contacts, CHANNELS, OUTCOMES.index("conversation")))

    # payments and earlier promises (a promise on the record goes to the reference engine)
    pay_at = np.flatnonzero(outcome == OUTCOMES.index("payment"))
    pay_acc, pay_ts = np.take(ev_acc, pay_at), np.take(ev_ts, pay_at)
    amount, amount_ok = decode.money_at(events.column("amount"), pay_at)
    last_pay = latest(pay_acc, pay_ts, n)

    def start_of(days: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.zeros(n, np.int64)
        for z, name in enumerate(zones):
            mine = rows & (zone_code == z)
            if mine.any():
                out[mine] = zone_day_starts(name, days[mine])
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
        (pay_acc, pay_ts, amount, amount_ok),
    )
    why.mark("promise", promise.fallback)
    columns.update(promise.columns)
    # earlier promises (history outcomes): broken when no payment came after; the
    # record's own promise is judged with its amount (broken now, in this cycle: one more)
    vow = np.flatnonzero((outcome == OUTCOMES.index("promise_to_pay")) & in_cycle)
    vow_acc, vow_ts = np.take(ev_acc, vow), np.take(ev_ts, vow)
    broken = ~(promise.has[vow_acc] & (vow_ts >= promise.made[vow_acc])) & (last_pay[vow_acc] <= vow_ts)
    broken_count = np.bincount(vow_acc[broken], minlength=n) + (promise.broken & (p_made >= cycle_us))
    columns["broken_promises"] = Column("num", broken_count.astype(np.int64), everyone)
    pay_cycle = np.take(in_cycle, pay_at)
    unknown_amount = np.bincount(pay_acc[pay_cycle & ~amount_ok], minlength=n) > 0
    summed = pay_cycle & amount_ok
    paid = np.bincount(pay_acc[summed], weights=amount[summed], minlength=n)
    columns["paid_in_cycle"] = Column("money", paid.astype(np.int64), ~unknown_amount)
    if np.any(np.abs(paid) > 2**52):
        why.mark("money overflow", np.abs(paid) > 2**52)
    last = latest(pay_acc, np.arange(len(pay_at)), n)  # each account's latest payment (-1: none)
    has_pay = last >= 0
    pick = np.where(has_pay, last, len(pay_at))  # one past the end: a padding slot
    last_amount_ok = has_pay & np.append(amount_ok, False)[pick]
    columns["last_payment_amount"] = Column("money", np.append(amount, 0)[pick], last_amount_ok)
    pay_day = np.where(has_pay, np.append(np.take(ev_day, pay_at), 0)[pick], -(10**9))
    last_day = np.where(paid_known, np.maximum(paid_day, pay_day), pay_day)
    columns["days_since_payment"] = Column("num", today - last_day, paid_known | has_pay)

    # call attempts to the debtor (third-party tiers excluded) in this cycle
    third = [t for t, tier in enumerate(policy.tiers) if "third_party" in tier.model.tags]
    attempt = outbound & (channel == CHANNELS.index("phone")) & in_cycle & (outcome >= 0)
    if third:
        attempt &= ~_in(action, third, k)
    unreached = _in(np.arange(len(OUTCOMES)), _UNREACHED, len(OUTCOMES))
    consecutive, invalid = attempt_facts(
        n, attempt, ev_acc, outcome, address, unreached, OUTCOMES.index("not_in_service")
    )
    columns["consecutive_failed_attempts"] = Column("num", consecutive, everyone)
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
    coded: dict[str, tuple[np.ndarray, list[str]]] = {}
    for name in ("segment", "product", "jurisdiction", "actor_type"):
        codes, words = coded[name] = _words(acc_t.column(name))
        columns[name] = Column("str", _objects(codes, words), codes >= 0)
    plan, plan_words = _words(acc_t.column("plan_status"))
    active = np.asarray([w == "active" for w in plan_words] + [False], dtype=bool)
    columns["plan_active"] = Column("bool", active[plan], everyone)
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
    # placement: the latest counted outbound agency step (tier events that count, of step tiers)
    steps = np.flatnonzero(stats.counting & np.take(step_tiers(policy), stats.act))
    placed_at = np.take(stats.at, steps)
    step_latest = latest(np.take(ev_acc, placed_at), placed_at, n)
    columns.update(placement_columns(policy, step_latest, (action, ev_day), today))
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
    columns["time_barred"] = time_barred(policy, coded["jurisdiction"], today, paid_day, paid_known)
    # an interrupting event only moves the end later: only rows barred without them change
    evs = (ev_acc, ev_day, outbound, channel, outcome, action)
    jurisdiction = columns["jurisdiction"].values
    unsure = interrupted(policy, columns["time_barred"], jurisdiction, paid_day, today, evs)
    why.mark("limitation interrupted", unsure)
    columns["in_validation_period"] = validation_period(zone_code, tables, today, sent, sent_known)

    stage = np.zeros(n, np.int64)
    for t, tier in enumerate(policy.tiers):
        if not tier.model.ongoing:  # (later tiers overwrite earlier ones)
            np.copyto(stage, tier.severity, where=done[t] > 0)
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
