"""Benchmark a portfolio dry-run with a baseline: generate N accounts, then
decide them under the CN policy and a one-threshold variant, with 1 and 2
worker processes. Prints accounts/second, wall time and peak RSS (the run and
its worker processes). A script, not a test.

    python benchmarks/dry_run.py --accounts 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from escalation.portfolio.generate import generate, write_portfolio

ROOT = Path(__file__).resolve().parent.parent
AT = "2026-11-23T10:00:00+08:00"

CHILD = """
import datetime as dt, json, resource, sys, time
from escalation import compare
start = time.perf_counter()
result = compare(sys.argv[1], sys.argv[2], sys.argv[3], at=dt.datetime.fromisoformat(sys.argv[4]),
                 out=sys.argv[5], workers=int(sys.argv[6]))
wall = time.perf_counter() - start
usage = resource.getrusage
peak = max(usage(resource.RUSAGE_SELF).ru_maxrss, usage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"accounts": result.accounts, "errors": result.errors, "changed": result.changed,
                  "wall": wall, "peak_kib": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", metavar="DIR", help="work in DIR instead of a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        portfolio = work / "portfolio.jsonl"
        baseline = ROOT / "policies" / "consumer-credit-cn.yaml"
        candidate = work / "candidate.yaml"
        text = baseline.read_text().replace("days_overdue >= 8", "days_overdue >= 9")
        candidate.write_text(text.replace("../rules/", str(ROOT / "rules") + "/"))
        started = time.perf_counter()
        write_portfolio(generate(args.accounts, 1, "cn-card", dt.datetime.fromisoformat(AT)), portfolio)
        size = portfolio.stat().st_size / 2**20
        print(
            f"generated {args.accounts:,} accounts ({size:,.0f} MiB) in {time.perf_counter() - started:.1f} s"
        )
        for workers in args.workers:
            out = work / f"out-{workers}"
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(baseline), str(candidate), str(portfolio), AT, str(out),
                 str(workers)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            rate = figures["accounts"] / figures["wall"]
            print(
                f"--workers {workers}: {figures['accounts']:,} accounts x 2 policies "
                f"in {figures['wall']:.1f} s "
                f"= {rate:,.0f} accounts/s; peak RSS {figures['peak_kib'] / 1024:,.0f} MiB; "
                f"{figures['changed']:,} changed, {figures['errors']:,} error rows"
            )


if __name__ == "__main__":
    main()
