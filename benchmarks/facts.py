"""Benchmark the columnar backend's facts stage alone: ``derive_batch`` over
every batch of a typed portfolio folder (e.g. one kept by ``dry_run.py --keep
DIR``: DIR/portfolio.typed), under the CN policy, at the dry-run benchmark's
instant. Prints CPU µs per account (``time.process_time``, the batches read
beforehand and not counted) for each of ``--repeat`` passes, and the best.
With ``--profile N`` it prints the N costliest functions (cProfile, cumulative).
A script, not a test; run it with another tree's interpreter to compare trees:

    python benchmarks/facts.py /tmp/bench/portfolio.typed --accounts 200000
    /work/wt-base/.venv/bin/python benchmarks/facts.py /tmp/bench/portfolio.typed
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AT = "2026-11-23T10:00:00+08:00"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", help="a typed portfolio folder (accounts.parquet, events.parquet)")
    parser.add_argument("--accounts", type=int, default=200_000, help="accounts read (whole batches)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    args = parser.parse_args()
    import escalation
    from escalation.backends.columnar._table import derive_batch
    from escalation.policy import load_policy
    from escalation.portfolio.arrow import read_typed

    policy = load_policy(ROOT / "policies" / "consumer-credit-cn.yaml")
    now = dt.datetime.fromisoformat(AT)
    batches = []
    for batch in read_typed(args.folder):
        batches.append(batch)
        if sum(len(b) for b in batches) >= args.accounts:
            break
    accounts = sum(len(b) for b in batches)
    events = sum(b.encoded_events.num_rows for b in batches)
    derive_batch(batches[0], policy, now)  # warm the zone tables and day-start caches
    print(f"{escalation.__file__}: {len(batches)} batches, {accounts:,} accounts, {events:,} events")
    best = float("inf")
    for _ in range(args.repeat):
        start = time.process_time()
        for batch in batches:
            derive_batch(batch, policy, now)
        spent = time.process_time() - start
        best = min(best, spent)
        print(f"  facts: {spent:.3f} CPU-s = {spent / accounts * 1e6:.2f} CPU-µs per account")
    print(f"best: {best / accounts * 1e6:.2f} CPU-µs per account")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in batches:
            derive_batch(batch, policy, now)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
