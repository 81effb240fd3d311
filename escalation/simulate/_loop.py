"""The day loop: one policy, one run, N days.

Each day, at the batch instant: decide every active account; sample each
action's answer from the response model with common random numbers; append
the action's event (and any payment, promise or dispute that follows) to the
account's history; apply payments and charges in integer minor units; cure
the accounts whose arrears are paid, write off those past the model's limit,
and let the rest age into the next day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from escalation.backends.columnar import ColumnarPolicy, decide_table
from escalation.record import zone
from escalation.simulate._offers import Offered, offer_of, present
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
    for day, now in enumerate(instants):
        metrics = DayMetrics()
        _one_day(book, policy, responses, keys, now, day, origin, seed, run, metrics, out)
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
    policy: ColumnarPolicy,
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
    today = day_number(now.astimezone(zone(policy.policy.header.timezone)).date())
    pending = PendingDay()
    acted: list[tuple[int, str, str, int]] = []  # account, tier, channel, days overdue
    offered: list[Offered] = []
    dpd = np.zeros(len(book.status), np.int64)
    for indices, batch in book.batches(active, BATCH):
        res = decide_table(batch, [policy], now=now, reasons="none")
        out.vectorised += res.vectorised
        out.fallback += res.fallback
        for k, i in enumerate(indices.tolist()):
            error = res.errors[k]
            if error is not None:
                book.status[i] = ERROR
                book.errors[i] = error.model_copy(update={"source": f"simulation day {day}"})
                s["errors"] += 1
                continue
            row = res.decisions[0][k]
            assert row is not None
            dpd[i] = res.days[k]
            if out.start_days[i] < 0:
                out.start_days[i] = res.days[k]
            status = row["status"]
            s[status] += 1
            if status == "hold" and row["hold"]:
                metrics.holds[row["hold"]] += 1
            for guard in row["blocked_guards"]:
                metrics.blocks[guard] += 1
                s["guard_blocks"] += 1
            if status == "act":
                acted.append((i, row["action"], row["channel"], res.days[k]))
            elif status == "offer" and (found := offer_of(policy, res, k, now)) is not None:
                offered.append((i, found[0], found[1], res.days[k]))
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
