"""Benchmark ``Engine.decide()`` on the shipped CN policy with 30-event histories.

Prints decisions/second and p50/p99 latency, for records given as dicts
(validated on every call, as a backend service would) and as pre-validated
``Account`` objects. Run: ``python benchmarks/decide.py [--n 20000] [--backend native]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from pathlib import Path

from escalation import Engine, parse_account

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
TIERS = ["sms_reminder", "phone_call", "demand_letter", "lawyer_letter"]
CHANNEL = {"sms_reminder": "sms", "phone_call": "phone", "demand_letter": "letter", "lawyer_letter": "letter"}
OUTCOMES = ["delivered", "no_answer", "voicemail", "conversation", "busy"]


def record(rng: random.Random, index: int, events: int = 30) -> dict[str, object]:
    """One account with ``events`` history events spread over its arrears."""
    days = rng.choice([3, 9, 15, 35, 45, 70, 95, 120])
    history = []
    for k in range(events):
        at = NOW - dt.timedelta(days=days) + dt.timedelta(hours=(days * 24 - 2) * (k + 1) / (events + 1))
        tier = TIERS[min(k * len(TIERS) // events, len(TIERS) - 1)]
        history.append(
            {
                "at": at.isoformat(),
                "action": tier,
                "channel": CHANNEL[tier],
                "outcome": rng.choice(OUTCOMES),
                "address": f"+86-100-0000-{k % 3:04d}",
            }
        )
    balance = round(rng.lognormvariate(8.5, 1.0), 2)
    return {
        "id": f"BENCH-{index:06d}",
        "currency": "CNY",
        "amount_overdue": f"{min(balance, round(balance * 0.3, 2)):.2f}",
        "balance": f"{balance:.2f}",
        "days_overdue": days,
        "timezone": "Asia/Shanghai",
        "history": history,
    }


def run(engine: Engine, records: list[object], label: str, trace: bool = True) -> None:
    """Time each decide() call and print throughput and percentiles."""
    for rec in records[:200]:  # warm-up
        engine.decide(rec, now=NOW, trace=trace)  # type: ignore[arg-type]
    latencies = []
    start = time.perf_counter()
    for rec in records:
        t0 = time.perf_counter_ns()
        engine.decide(rec, now=NOW, trace=trace)  # type: ignore[arg-type]
        latencies.append(time.perf_counter_ns() - t0)
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{label:<30} {len(records) / wall:>10,.0f} decisions/s   "
        f"p50 {q[49] / 1000:7.1f} µs   p99 {q[98] / 1000:7.1f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--backend", default="native", choices=["native", "rete"])
    args = parser.parse_args()
    engine = Engine.from_file(ROOT / "policies/consumer-credit-cn.yaml", backend=args.backend)
    rng = random.Random(7)
    dicts = [record(rng, i, args.events) for i in range(args.n)]
    accounts = [parse_account(d) for d in dicts]
    statuses: dict[str, int] = {}
    for acc in accounts:
        status = engine.decide(acc, now=NOW).status
        statuses[status] = statuses.get(status, 0) + 1
    print(
        f"policy consumer-credit-cn, backend {args.backend}, "
        f"{args.n} records x {args.events} events; {statuses}"
    )
    run(engine, accounts, "pre-validated Account")  # type: ignore[arg-type]
    run(engine, dicts, "dict (validated per call)")  # type: ignore[arg-type]
    run(engine, accounts, "pre-validated, trace=False", trace=False)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
