"""Benchmark a portfolio dry-run with a baseline: generate N accounts, then
decide them under the CN policy and a one-threshold variant, with 1 and 2
worker processes (native), or with the columnar backend from the typed
layout. Prints accounts/second, accounts per CPU-second (the run and its
workers), how many rows the columnar backend vectorised, and peak RSS summed
over the processes (the parent's peak plus, per worker, the largest worker's
peak: an upper bound). A script, not a test.

    python benchmarks/dry_run.py --accounts 1000000 --backend columnar native
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
workers = int(sys.argv[6])
result = compare(sys.argv[1], sys.argv[2], sys.argv[3], at=dt.datetime.fromisoformat(sys.argv[4]),
                 out=sys.argv[5], workers=workers, backend=sys.argv[7])
wall = time.perf_counter() - start
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
peak = me.ru_maxrss + (workers if workers > 1 else 0) * kids.ru_maxrss
print(json.dumps({"accounts": result.accounts, "errors": result.errors, "changed": result.changed,
                  "wall": wall, "cpu": cpu, "peak_kib": peak, "backend": result.backend,
                  "vectorised": result.vectorised, "fallback": result.fallback}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="native worker counts")
    parser.add_argument(
        "--backend", nargs="+", default=["columnar", "native"], choices=["columnar", "native"]
    )
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
        typed = work / "portfolio.typed"
        if "columnar" in args.backend:
            from escalation.portfolio.arrow import convert

            started = time.perf_counter()
            convert(portfolio, typed)
            print(f"converted to the typed layout in {time.perf_counter() - started:.1f} s")
        runs = [("columnar", 1, typed)] if "columnar" in args.backend else []
        runs += [("native", w, portfolio) for w in args.workers] if "native" in args.backend else []
        for backend, workers, source in runs:
            out = work / f"out-{backend}-{workers}"
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(baseline), str(candidate), str(source), AT, str(out),
                 str(workers), backend],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            f = json.loads(done.stdout.strip().splitlines()[-1])
            extra = (
                f"; {f['vectorised']:,} vectorised, {f['fallback']:,} fallback"
                if backend == "columnar"
                else ""
            )
            print(
                f"{backend} --workers {workers}: {f['accounts']:,} accounts x 2 in {f['wall']:.1f} s "
                f"= {f['accounts'] / f['wall']:,.0f} accounts/s, {f['accounts'] / f['cpu']:,.0f} per CPU-s; "
                f"peak RSS (summed) {f['peak_kib'] / 1024:,.0f} MiB; "
                f"{f['changed']:,} changed, {f['errors']:,} error rows{extra}"
            )


if __name__ == "__main__":
    main()
