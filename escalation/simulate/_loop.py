"""The day loop: one policy, one run, N days.

Each day, at the batch instant: decide every active account; sample each
action's answer from the response model with common random numbers; append
the action's event (and any payment, promise or dispute that follows) to the
account's history; apply payments and charges in integer minor units; cure
the accounts whose arrears are paid, write off those past the model's limit,
and let the rest age into the next day."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation.backends.columnar import ColumnarPolicy, decide_table
from escalation.backends.columnar._table import TableResult
from escalation.contacts._check import ContactAuditor
from escalation.engine import Engine
from escalation.portfolio.arrow import TypedBatch
from escalation.record import zone
from escalation.simulate._offers import OfferCalls, Offered, Remembering, offer_of, present
from escalation.simulate._respond import (
    HOUR,
    NOT_KEPT,
    PAID,
    SCALARS,
    UNKNOWN,
    DayMetrics,
    PendingDay,
    Responses,
    answer,
)
from escalation.simulate._rng import account_keys, uniforms
from escalation.simulate._state import ACTIVE, CURED, ERROR, WRITTEN_OFF, Book, day_number
from escalation.simulate.model import ResponseModel

__all__ = ["ROLL_LIMITS", "SCALARS", "DayMetrics", "PolicyRun", "roll_bucket", "run_policy"]

BATCH = 32_768
#: Days-overdue buckets for rolls and the roll-rate matrix (upper limits).
ROLL_LIMITS = (30, 60, 90, 120, 150, 180)


def roll_bucket(days: int) -> str:
    """The 30-day bucket of ``days`` overdue (``0``, ``1-30``, …, ``181+``)."""
    if days <= 0:
        return "0"
    low = 1
    for limit in ROLL_LIMITS:
        if days <= limit:
            return f"{low}-{limit}"
        low = limit + 1
    return f"{ROLL_LIMITS[-1] + 1}+"


@dataclass(frozen=True)
class _Calls:
    """The policy as the day loop decides with it: its engine remembers the
    day's `offer` decisions, and the contact audit judges each offer call."""

    policy: ColumnarPolicy
    engine: Remembering
    check: OfferCalls

    @classmethod
    def of(cls, policy: ColumnarPolicy) -> _Calls:
        prepared = copy.copy(policy)  # the caller's object keeps its own engine
        engine = Remembering(policy.engine)
        prepared.engine = cast(Engine, engine)
        return cls(prepared, engine, OfferCalls(ContactAuditor(policy.policy)))


@dataclass
class PolicyRun:
    """One policy's simulation in one run: every day, and per account totals."""

    days: list[DayMetrics]
    balance_start: np.ndarray
    paid: np.ndarray
    charged: np.ndarray
    cost: np.ndarray
    actions: np.ndarray
    start_days: np.ndarray
    end_days: np.ndarray
    book: Book
    vectorised: int = 0
    fallback: int = 0


def run_policy(
    book: Book,
    policy: ColumnarPolicy,
    model: ResponseModel,
    instants: list[dt.datetime],
    *,
    seed: int,
    run: int,
    grace: int,
) -> PolicyRun:
    """Simulate ``policy`` on (a copy of) ``book`` over ``instants`` (one per day)."""
    book = book.copy()
    n = len(book.status)
    tags = {t.model.id: frozenset(t.model.tags) for t in policy.policy.tiers}
    responses = Responses(model, tags, book, grace)
    keys = account_keys(book.ids)
    out = PolicyRun(
        days=[],
        balance_start=book.balance.copy(),
        paid=np.zeros(n, np.int64),
        charged=np.zeros(n, np.int64),
        cost=np.zeros(n, np.int64),
        actions=np.zeros(n, np.int64),
        start_days=np.full(n, -1, np.int64),
        end_days=np.full(n, -1, np.int64),
        book=book,
    )
    origin = day_number(instants[0].astimezone(zone(policy.policy.header.timezone)).date()) if instants else 0
    has_promise = book.promise_due >= 0
    book.promise_deadline[has_promise] = book.promise_due[has_promise] - origin + grace + 1
    rate = model.model.charges.daily_rate
    num, den = rate.as_integer_ratio()
    calls = _Calls.of(policy)
    for day, now in enumerate(instants):
        metrics = DayMetrics()
        _one_day(book, calls, responses, keys, now, day, origin, seed, run, metrics, out)
        active = book.status == ACTIVE
        charge = book.balance * num // den * active
        book.balance += charge
        out.charged += charge
        metrics.scalars["charges"] = int(charge.sum())
        metrics.scalars["balance_end"] = int(book.balance[active].sum())
        metrics.scalars["arrears_end"] = int(book.overdue[active].sum())
        out.days.append(metrics)
    return out


def _one_day(
    book: Book,
    calls: _Calls,
    responses: Responses,
    keys: np.ndarray,
    now: dt.datetime,
    day: int,
    origin: int,
    seed: int,
    run: int,
    metrics: DayMetrics,
    out: PolicyRun,
) -> None:
    s = metrics.scalars
    active = np.flatnonzero(book.status == ACTIVE)
    s["active"] = len(active)
    today = day_number(now.astimezone(zone(calls.policy.policy.header.timezone)).date())
    pending = PendingDay()
    acted: list[tuple[int, str, str, int]] = []  # account, tier, channel, days overdue
    offered: list[Offered] = []
    dpd = np.zeros(len(book.status), np.int64)
    calls.engine.forget()
    for indices, batch in book.batches(active, BATCH):
        res = decide_table(batch, [calls.policy], now=now, reasons="none", dicts=False)
        out.vectorised += res.vectorised
        out.fallback += res.fallback
        valid = np.asarray(res.decided, bool)
        for k in np.flatnonzero(~valid).tolist():
            error = res.errors[k]
            assert error is not None
            i = int(indices[k])
            book.status[i] = ERROR
            book.errors[i] = error.model_copy(update={"source": f"simulation day {day}"})
            s["errors"] += 1
        _count(batch, res, indices, valid, now, dpd, metrics, out, acted, offered, calls, book)
    answer(
        book, responses, keys, acted, (now, day, today), seed, run, metrics, (out.cost, out.actions), pending
    )
    present(
        book,
        responses,
        keys,
        offered,
        (now, day, today),
        seed,
        run,
        metrics,
        (out.cost, out.actions),
        pending,
    )
    _scheduled(book, keys, now, day, seed, run, responses, metrics, out, pending, dpd)
    book.add_events(pending.events)
    _settle(book, pending, now, today, metrics, out, dpd, responses)


def _count(
    batch: TypedBatch,
    res: TableResult,
    indices: np.ndarray,
    valid: np.ndarray,
    now: dt.datetime,
    dpd: np.ndarray,
    metrics: DayMetrics,
    out: PolicyRun,
    acted: list[tuple[int, str, str, int]],
    offered: list[Offered],
    calls: _Calls,
    book: Book,
) -> None:
    """Count one batch's decisions (by column, not row by row) and collect the
    actions to answer and the offers to present, in batch order."""
    s = metrics.scalars
    table = res.tables[0]
    ok = np.flatnonzero(valid)
    rows = indices[ok]
    days = np.asarray(res.days_overdue, np.int64)[ok]
    dpd[rows] = days
    fresh = out.start_days[rows] < 0
    out.start_days[rows[fresh]] = days[fresh]
    status = table.column("status").to_numpy(zero_copy_only=False)[ok]
    names, counts = np.unique(status.astype(str), return_counts=True)
    for name, count in zip(names.tolist(), counts.tolist(), strict=True):
        s[name] += count
    held = table.column("hold").to_numpy(zero_copy_only=False)[ok][status == "hold"]
    for hold in held.tolist():
        if hold:
            metrics.holds[hold] += 1
    blocked = pc.list_value_length(table.column("blocked_guards")).to_numpy(zero_copy_only=False)
    if int(np.nansum(blocked)):
        for guards in table.column("blocked_guards").take(pa.array(ok, pa.int64())).to_pylist():
            for guard in guards:
                metrics.blocks[guard] += 1
                s["guard_blocks"] += 1
    act = np.flatnonzero(status == "act")
    if len(act):
        action = table.column("action").to_numpy(zero_copy_only=False)[ok][act]
        channel = table.column("channel").to_numpy(zero_copy_only=False)[ok][act]
        acted.extend(
            zip(rows[act].tolist(), action.tolist(), channel.tolist(), days[act].tolist(), strict=True)
        )
    named = []  # batch row, account, tier, offer
    for k in np.flatnonzero(status == "offer").tolist():
        found = offer_of(calls.policy, res, int(ok[k]), now, batch)
        if found is not None:
            named.append((k, *found))
    rows_called = [int(ok[k]) for k, *_ in named]
    to = [(offer, book.phones.get(int(rows[k]))) for k, _, _, offer in named]
    cleared = calls.check.cleared(batch, rows_called, to, now).tolist()
    for (k, account, tier, offer), clear, (_, address) in zip(named, cleared, to, strict=True):
        i = int(rows[k])
        why = None if clear else calls.check.blocked(account, now, address, offer)
        if why is None:
            offered.append((i, tier, offer, int(days[k])))
            continue
        s["offers_blocked"] += 1
        for guard in why:
            metrics.blocks[guard] += 1
            s["guard_blocks"] += 1


def _scheduled(
    book: Book,
    keys: np.ndarray,
    now: dt.datetime,
    day: int,
    seed: int,
    run: int,
    responses: Responses,
    metrics: DayMetrics,
    out: PolicyRun,
    pending: PendingDay,
    dpd: np.ndarray,
) -> None:
    """Kept promises fall due; broken ones are judged; disputes lift; and
    accounts pay of their own accord (self-cure)."""
    s = metrics.scalars
    active = book.status == ACTIVE
    for i in np.flatnonzero(active & (book.promise_pays == day)).tolist():
        pending.payments[i] = max(pending.payments.get(i, 0), int(book.promise_amount[i]))
        s["promises_kept"] += 1
        book.promise_pays[i] = PAID
    judged = active & (book.promise_deadline == day)
    s["promises_broken"] = int((judged & (book.promise_pays == NOT_KEPT)).sum())
    book.promise_due[judged] = -1
    book.promise_deadline[judged] = -1
    book.promise_pays[judged] = UNKNOWN
    lifted = np.flatnonzero(book.dispute_until == day).tolist()
    original = book.accounts.column("flags").to_pylist() if lifted else []
    for i in lifted:
        book.flags[i] = original[i]
        book.dispute_until[i] = -1
    if not responses.cure_p:
        return
    idx = np.flatnonzero(active)
    p = np.zeros(len(idx))
    for low, high, rate in responses.cure_p:
        p[(dpd[idx] >= low) & (dpd[idx] <= high)] = rate
    u = uniforms(keys[idx], np.zeros(len(idx), np.uint64), seed=seed, run=run, day=day, stream="self_cure")
    share_u = uniforms(keys[idx], np.ones(len(idx), np.uint64), seed=seed, run=run, day=day, stream="share")
    cum, bps = responses.amounts
    for k in np.flatnonzero(u < p).tolist():
        i = int(idx[k])
        if i not in pending.payments:
            share = int(bps[min(int(np.searchsorted(cum, share_u[k], side="right")), len(bps) - 1)])
            pending.payments[i] = max(1, int(book.overdue[i]) * share // 10_000)


def _settle(
    book: Book,
    pending: PendingDay,
    now: dt.datetime,
    today: int,
    metrics: DayMetrics,
    out: PolicyRun,
    dpd: np.ndarray,
    responses: Responses,
) -> None:
    """Apply the day's payments, then cure, write off and roll."""
    s = metrics.scalars
    payments = {i: a for i, a in sorted(pending.payments.items()) if book.overdue[i] > 0}
    rows: dict[str, list[Any]] = {k: [] for k in pending.events}
    for i, amount in payments.items():
        pay = min(amount, int(book.balance[i]))
        if pay <= 0:
            continue
        book.balance[i] -= pay
        book.overdue[i] -= min(pay, int(book.overdue[i]))
        book.last_payment[i] = today
        out.paid[i] += pay
        s["payments"] += 1
        s["collected"] += pay
        for name, value in (
            ("account", i),
            ("at", now + 2 * HOUR),
            ("action", None),
            ("channel", None),
            ("outcome", "payment"),
            ("direction", "inbound"),
            ("amount", Decimal(pay).scaleb(-book.exponent)),
            ("offer", None),
        ):
            rows[name].append(value)
    book.add_events(rows)
    active = book.status == ACTIVE
    cured = active & (book.overdue == 0)
    book.status[cured] = CURED
    out.end_days[cured] = dpd[cured]
    s["cured"] = int(cured.sum())
    still = book.status == ACTIVE
    limit = responses.model.model.write_off.value
    gone = still & (dpd >= limit)
    book.status[gone] = WRITTEN_OFF
    out.end_days[gone] = dpd[gone]
    s["written_off"] = int(gone.sum())
    still &= ~gone
    s["rolled"] = int((still & np.isin(dpd, ROLL_LIMITS)).sum())
    out.end_days[still] = dpd[still] + 1
