"""CPU time of the columnar backend's policies and output-tables stages on a
typed portfolio (``benchmarks/dry_run.py --keep DIR`` writes one), with a
digest of every decision table so two trees can be compared side by side:

    python benchmarks/columnar_policies.py DIR/portfolio.typed --rounds 3
    python benchmarks/columnar_policies.py DIR/portfolio.typed --profile 25

Reads every batch once, derives its facts once (not counted), then per round
times ``_ladder.decide`` + ``offers_first`` for the CN policy and its
one-threshold variant ("policies") and ``decide_table``'s ``decision_table``
calls ("output tables"), CPU seconds (``time.process_time``). Prints µs per
account for each stage, the best round, and the digest. A script, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import pstats
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
AT = "2026-11-23T10:00:00+08:00"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("typed", help="a typed portfolio folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=8, help="batches of 32,768 accounts read")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N functions")
    args = parser.parse_args()

    from escalation.backends.columnar._facts import derive_batch
    from escalation.backends.columnar._ladder import decide
    from escalation.backends.columnar._offers import offers_first
    from escalation.backends.columnar._output import decision_table
    from escalation.backends.columnar._table import ColumnarPolicy
    from escalation.policy import load_policy
    from escalation.portfolio.arrow import read_typed

    at = dt.datetime.fromisoformat(AT)
    text = (ROOT / "policies" / "consumer-credit-cn.yaml").read_text()
    variant = Path("/tmp") / f"columnar-policies-variant-{Path.cwd().name}.yaml"
    variant.write_text(text.replace("days_overdue >= 8", "days_overdue >= 9"))
    policies = [
        ColumnarPolicy(load_policy(ROOT / "policies" / "consumer-credit-cn.yaml"), accounts=False),
        ColumnarPolicy(load_policy(variant), accounts=False),
    ]
    batches = []
    for k, batch in enumerate(read_typed(args.typed)):
        if k >= args.batches:
            break
        batches.append(batch)
    accounts = sum(len(b) for b in batches)

    def one_round(
        digest: hashlib._Hash | None, profiler: cProfile.Profile | None = None
    ) -> tuple[float, float]:
        spent_policies = spent_output = 0.0
        for batch in batches:
            facts = derive_batch(batch, policies[0].policy, at)  # fresh: no memo carried over
            outs = []
            t = time.process_time()
            if profiler is not None:
                profiler.enable()
            for cp in policies:
                out = decide(cp.policy, cp.plan, facts)
                offers_first(cp.policy, facts, out)
                outs.append(out)
            spent_policies += time.process_time() - t
            n = len(batch)
            ids = batch.accounts.column("id").combine_chunks()
            vectorised = outs[0].covered & outs[1].covered
            valid = np.ones(n, bool)
            t = time.process_time()
            # (with its codes beside it; an older tree returns the table alone)
            made = [decision_table(n, ids, cp.policy.fingerprint, o, vectorised, {}, valid)
                    for cp, o in zip(policies, outs, strict=True)]  # fmt: skip
            tables = [m[0] if isinstance(m, tuple) else m for m in made]
            spent_output += time.process_time() - t
            if profiler is not None:
                profiler.disable()
            if digest is not None:
                for table in tables:
                    sink = pa.BufferOutputStream()
                    with pa.ipc.new_stream(sink, table.schema) as writer:
                        writer.write_table(table)
                    digest.update(sink.getvalue().to_pybytes())
                digest.update(vectorised.tobytes())
        return spent_policies, spent_output

    digest = hashlib.sha256()
    results = [one_round(digest if r == 0 else None) for r in range(args.rounds)]
    per = 1e6 / accounts
    for r, (p, o) in enumerate(results):
        print(f"round {r + 1}: policies {p * per:.2f} µs/account, output tables {o * per:.2f} µs/account")
    best_p, best_o = min(r[0] for r in results), min(r[1] for r in results)
    print(
        f"best of {args.rounds} over {accounts:,} accounts x 2 policies: "
        f"policies {best_p * per:.2f} µs/account "
        f"({best_p * 1e6 / accounts:.2f} CPU-s per 1M), output tables {best_o * per:.2f} µs/account"
    )
    print(f"decision tables digest {digest.hexdigest()[:16]}")
    if args.profile:
        profiler = cProfile.Profile()
        one_round(None, profiler)
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.profile)
        stats.sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
