"""Benchmark a simulation: generate N CN accounts, simulate the bundled CN
policy and the guide's challenger (lawyer's letter from day 45) for D days,
and print wall time, CPU time, account-days per CPU-second, the share of CPU
spent in the evaluator (``decide_table``, including its reference-engine
fallback) and how many account-days it vectorised. With ``--target`` it
extrapolates linearly to that many accounts × days × 2 policies from the
measured CPU rate (an estimate, printed as such). A script, not a test.

    python benchmarks/simulate.py --accounts 5000 --days 30 --target 100000 90
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from escalation.portfolio.generate import generate, write_portfolio

ROOT = Path(__file__).resolve().parent.parent
AT = dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--backend", default="auto", choices=["auto", "columnar", "native"])
    parser.add_argument("--workers", type=int, default=1, help="processes for the (run, policy) simulations")
    parser.add_argument(
        "--target", type=int, nargs=2, metavar=("ACCOUNTS", "DAYS"), help="extrapolate to this"
    )
    args = parser.parse_args()

    import escalation.simulate._loop as loop
    from escalation.simulate.run import simulate

    spent = {"evaluator": 0.0}
    why: dict[str, int] = {}  # reference-engine rows by reason (first found per row)
    original = loop.decide_table

    def timed(*a: Any, **k: Any) -> Any:
        start = time.process_time()
        try:
            result = original(*a, **k)
            for reason, rows in result.fallback_reasons.items():
                why[reason] = why.get(reason, 0) + rows
            return result
        finally:
            spent["evaluator"] += time.process_time() - start

    loop.decide_table = timed  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as scratch:
        book = Path(scratch) / "book.jsonl"
        write_portfolio(generate(args.accounts, seed=1, at=AT), book)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = simulate(ROOT / "examples" / "cn-lawyer-letter-45.yaml", book, at=AT, days=args.days,
                          baseline=ROOT / "policies" / "consumer-credit-cn.yaml", runs=args.runs,
                          out=Path(scratch) / "out", backend=args.backend, workers=args.workers)  # fmt: skip
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # with --workers > 1 the simulations run in worker processes (reaped when the pool closes)
    cpu += (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
    account_days = sum(sum(d["active"] for d in r.daily) for runs in result.runs.values() for r in runs)
    vectorised = sum(r.vectorised for runs in result.runs.values() for r in runs)
    fallback = sum(r.fallback for runs in result.runs.values() for r in runs)
    figures = {
        "accounts": args.accounts,
        "days": args.days,
        "runs": args.runs,
        "policies": len(result.runs),
        "backend": result.backend,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "decided_account_days": account_days,
        "account_days_per_cpu_s": round(account_days / cpu),
        # the evaluator is timed in this process only (0 with --workers > 1)
        "evaluator_cpu_share": round(spent["evaluator"] / cpu, 3),
        "vectorised": vectorised,
        "fallback": fallback,
        "fallback_reasons": dict(sorted(why.items(), key=lambda kv: -kv[1])),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "peak_rss_mib_largest_worker": kids1.ru_maxrss // 1024,
        "load_average": os.getloadavg()[0],
    }
    if args.target:
        accounts, days = args.target
        # an upper bound on the work: every account decided every day (cures and write-offs only lower it)
        work = accounts * days * 2 * args.runs
        figures["extrapolated"] = {
            "target": f"{accounts} accounts x {days} days x 2 policies",
            "estimated_cpu_min": round(work / figures["account_days_per_cpu_s"] / 60, 1),  # type: ignore[operator]
            "note": "linear in accounts x days from the measured CPU rate; history grows with days, "
            "so longer horizons cost more per day",
        }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
