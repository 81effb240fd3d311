"""A policy run reduced to plain figures (money in integer minor units), the
conservation checks, and the candidate − baseline difference over runs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from escalation.errors import EscalationError
from escalation.simulate._loop import SCALARS, PolicyRun, roll_bucket
from escalation.simulate._state import ACTIVE, CURED, ERROR, WRITTEN_OFF

__all__ = ["FLOWS", "MONEY", "ConservationError", "RunSummary", "difference", "summarise"]

#: Metrics summed over days (the others are end-of-horizon stocks).
FLOWS = tuple(k for k in SCALARS if k not in ("active", "balance_end", "arrears_end"))
#: Metrics that are money (minor units).
MONEY = frozenset({"cost", "collected", "charges", "balance_end", "arrears_end", "net"})
_STATES = {CURED: "cured", WRITTEN_OFF: "written off", ERROR: "error"}
# two-sided 95 % Student t quantiles for 1..30 degrees of freedom
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


class ConservationError(EscalationError, AssertionError):
    """A simulation broke a conservation law (a bug, never an input problem)."""


@dataclass(frozen=True)
class RunSummary:
    """One policy in one run."""

    daily: list[dict[str, int]]
    totals: dict[str, int]
    actions: dict[str, list[int]]  # "tier/channel" → count per day
    action_cost: dict[str, int]
    holds: dict[str, int]
    blocks: dict[str, int]
    end: dict[str, int]  # accounts, cured, active, written off, errors
    balance: dict[str, int]  # start, payments, charges, end
    rolls: dict[str, dict[str, int]]  # start bucket → end state → accounts
    segments: dict[str, dict[str, int]]
    arms: dict[str, dict[str, int]]
    vectorised: int
    fallback: int


def _group(codes: np.ndarray, names: list[str], run: PolicyRun) -> dict[str, dict[str, int]]:
    status = run.book.status
    out: dict[str, dict[str, int]] = {}
    for code, name in enumerate(names):
        mine = codes == code
        if not mine.any():
            continue
        out[name] = {
            "accounts": int(mine.sum()),
            "actions": int(run.actions[mine].sum()),
            "cost": int(run.cost[mine].sum()),
            "collected": int(run.paid[mine].sum()),
            "cured": int((mine & (status == CURED)).sum()),
            "written_off": int((mine & (status == WRITTEN_OFF)).sum()),
        }
    return out


def summarise(run: PolicyRun, arms: np.ndarray | None) -> RunSummary:
    """Reduce ``run``; raises :class:`ConservationError` when a law is broken."""
    book = run.book
    daily = [dict(d.scalars) for d in run.days]
    totals = {k: sum(d[k] for d in daily) for k in FLOWS}
    for k in ("balance_end", "arrears_end"):
        totals[k] = daily[-1][k] if daily else 0
    totals["net"] = totals["collected"] - totals["cost"]
    days = len(daily)
    actions: dict[str, list[int]] = {}
    action_cost: dict[str, int] = {}
    holds: dict[str, int] = {}
    blocks: dict[str, int] = {}
    for d, metrics in enumerate(run.days):
        for (tier, channel), (count, cost) in metrics.actions.items():
            key = f"{tier}/{channel}"
            actions.setdefault(key, [0] * days)[d] += count
            action_cost[key] = action_cost.get(key, 0) + cost
        for table, source in ((holds, metrics.holds), (blocks, metrics.blocks)):
            for name, count in source.items():
                table[name] = table.get(name, 0) + count
    status = book.status
    end = {
        "accounts": len(status),
        "cured": int((status == CURED).sum()),
        "active": int((status == ACTIVE).sum()),
        "written_off": int((status == WRITTEN_OFF).sum()),
        "errors": int((status == ERROR).sum()),
    }
    totals["active"] = end["active"]
    if end["accounts"] != end["cured"] + end["active"] + end["written_off"] + end["errors"]:
        raise ConservationError(f"accounts in ({end['accounts']}) ≠ accounts out")
    # balance(start) − payments + charges = balance(end), per account and in total
    expected = run.balance_start - run.paid + run.charged
    broken = np.flatnonzero(expected != book.balance)
    if len(broken):
        raise ConservationError(f"balance not conserved for account `{book.ids[int(broken[0])]}`")
    balance = {
        "start": int(run.balance_start.sum()),
        "payments": int(run.paid.sum()),
        "charges": int(run.charged.sum()),
        "end": int(book.balance.sum()),
    }
    if balance["start"] - balance["payments"] + balance["charges"] != balance["end"]:
        raise ConservationError("total balance not conserved")  # pragma: no cover - implied per account
    if balance["payments"] != totals["collected"] or balance["charges"] != totals["charges"]:
        raise ConservationError("daily totals disagree with account totals")
    rolls: dict[str, dict[str, int]] = {}
    for i in np.flatnonzero(status != ERROR).tolist():
        start = roll_bucket(int(run.start_days[i]))
        state = _STATES.get(int(status[i])) or roll_bucket(int(run.end_days[i]))
        row = rolls.setdefault(start, {})
        row[state] = row.get(state, 0) + 1
    ok = status != ERROR
    segments = _group(np.where(ok, book.segment, -1), book.segments, run)
    arm_groups = (
        _group(np.where(ok, arms.astype(np.int64), -1), ["champion", "challenger"], run)
        if (arms is not None)
        else {}
    )
    return RunSummary(
        daily,
        totals,
        actions,
        action_cost,
        holds,
        blocks,
        end,
        balance,
        rolls,
        segments,
        arm_groups,
        run.vectorised,
        run.fallback,
    )


def difference(candidate: list[int], baseline: list[int]) -> dict[str, Any]:
    """Candidate − baseline over runs: the mean, and a 95 % Student t interval
    (``None`` with a single run)."""
    diffs = [c - b for c, b in zip(candidate, baseline, strict=True)]
    k = len(diffs)
    mean = sum(diffs) / k
    if k < 2:
        return {"mean": mean, "low": None, "high": None, "runs": diffs}
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (k - 1))
    half = (_T95[k - 2] if k - 1 <= len(_T95) else 1.96) * sd / math.sqrt(k)
    return {"mean": mean, "low": mean - half, "high": mean + half, "runs": diffs}
