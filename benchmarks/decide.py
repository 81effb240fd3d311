"""Benchmark ``Engine.decide()`` on the shipped CN policy.

For each history length, times four ways of calling ``decide``: records given
as pre-validated ``Account`` objects or as dicts (validated on every call, as
a backend service would), each with the trace on (the default) and off.
Prints decisions per wall second and per CPU second (the process's own CPU
time: what a core delivers, whatever else shares the machine) and p50/p99
latency (wall and CPU).

Side by side with a previous version (same script, same records, one run)::

    git worktree add --detach /tmp/native-base 633661f
    python benchmarks/decide.py --baseline /tmp/native-base --rounds 3

The baseline and the current tree then run alternately in child processes
(``PYTHONPATH`` picks the tree), ``--rounds`` times each, and the table gives
the median of the rounds with the ratio current / baseline.
Run alone: ``python benchmarks/decide.py [--n 5000] [--events 30,300]``.
``--backends native,rete`` times each evaluator a tree has (default
``native``), on the same records in the same process (a tree without one of
them runs the others); the ``× native`` column is each row's decisions per
CPU-second over the current tree's native row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
TIERS = ["sms_reminder", "phone_call", "demand_letter", "lawyer_letter"]
CHANNEL = {"sms_reminder": "sms", "phone_call": "phone", "demand_letter": "letter", "lawyer_letter": "letter"}
OUTCOMES = ["delivered", "no_answer", "voicemail", "conversation", "busy"]
MODES = [  # label, pre-validated, trace
    ("Account, trace on", True, True),
    ("Account, trace off", True, False),
    ("dict, trace on", False, True),
    ("dict, trace off", False, False),
]


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


def measure(engine: Any, records: list[Any], trace: bool, warm_up: list[Any]) -> dict[str, float]:
    """Time each decide() call: throughput and percentiles, wall and CPU.

    ``warm_up`` are other objects than ``records``: an evaluator may keep what it
    derived from an account for as long as that account lives (a dry-run decides
    each account under two policies), and a timed account must not have been
    decided before.

    The objects alive before timing starts (the benchmark's own records: ~260k
    tracked objects for 2,000 parsed 30-event accounts) are frozen out of the
    garbage collector's reach while timing: otherwise the first full collection
    the timed decisions trigger walks them all (~130 ms, ~65 µs a decision in
    the ``Account, trace on`` row), a cost of this script's set-up, not of
    ``decide()``. Collections of what the decisions themselves allocate still
    count."""
    gc.collect()
    gc.freeze()
    try:
        return _timed(engine, records, trace, warm_up)
    finally:
        gc.unfreeze()


def _timed(engine: Any, records: list[Any], trace: bool, warm_up: list[Any]) -> dict[str, float]:
    for rec in warm_up:
        engine.decide(rec, now=NOW, trace=trace)
    wall_ns, cpu_ns = [], []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for rec in records:
        w, c = time.perf_counter_ns(), time.thread_time_ns()
        engine.decide(rec, now=NOW, trace=trace)
        cpu_ns.append(time.thread_time_ns() - c)
        wall_ns.append(time.perf_counter_ns() - w)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    qw, qc = statistics.quantiles(wall_ns, n=100), statistics.quantiles(cpu_ns, n=100)
    return {
        "per_s": len(records) / wall,
        "per_cpu_s": len(records) / cpu,
        "p50": qw[49] / 1000,
        "p99": qw[98] / 1000,
        "cpu_p50": qc[49] / 1000,
        "cpu_p99": qc[98] / 1000,
    }


def child(n: int, lengths: list[int], backends: list[str]) -> dict[str, Any]:
    """Every mode at every history length for each evaluator, in this interpreter's `escalation`."""
    import escalation
    from escalation import Engine, parse_account

    # each tree's own copy of the policy (the child runs in that tree): an older
    # tree may not read today's policy file
    policy = escalation.load_policy(Path("policies/consumer-credit-cn.yaml"))
    engines = {}
    for backend in backends:
        try:
            engines[backend] = Engine(policy, backend=backend)  # type: ignore[arg-type]
        except ValueError:
            if backend == "native":
                raise
            continue  # an older tree without this evaluator
    out: dict[str, Any] = {"tree": str(Path(escalation.__file__).parent.parent), "results": {}}
    for events in lengths:
        rng = random.Random(7)
        count = n if events <= 30 else max(200, n * 30 // events)
        dicts = [record(rng, i, events) for i in range(count)]
        statuses: dict[str, int] = {}
        for d in dicts:
            status = engines["native"].decide(d, now=NOW).status
            statuses[status] = statuses.get(status, 0) + 1
        out["results"][str(events)] = {"statuses": statuses, "count": count}
        for backend, engine in engines.items():
            for label, validated, trace in MODES:
                # accounts validated afresh for every mode: none decided before it is timed
                rows = [parse_account(d) for d in dicts] if validated else dicts
                warm_up = [parse_account(d) for d in dicts[:100]] if validated else dicts[:100]
                out["results"][str(events)][f"{backend}|{label}"] = measure(engine, rows, trace, warm_up)
    return out


def run_child(tree: Path, n: int, lengths: list[int], backends: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    args = [sys.executable, __file__, "--child", "--n", str(n), "--events", ",".join(map(str, lengths))]
    args += ["--backends", ",".join(backends)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def median_of(rounds: list[dict[str, Any]], events: str, label: str, key: str) -> float:
    return statistics.median(r["results"][events][label][key] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5_000, help="records per mode at 30 events")
    parser.add_argument("--events", default="30,300", help="history lengths, comma-separated")
    parser.add_argument("--baseline", type=Path, help="source tree of the version to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="native", help="evaluators, comma-separated")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lengths = [int(x) for x in args.events.split(",")]
    backends = args.backends.split(",")
    if args.child:
        print(json.dumps(child(args.n, lengths, backends)))
        return
    trees = {"current": ROOT}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), "current": ROOT}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(args.rounds):  # alternate, so both meet the same machine load
        for name, tree in trees.items():
            rounds[name].append(run_child(tree, args.n, lengths, backends))
    print(f"policy consumer-credit-cn, median of {args.rounds} round(s), load {os.getloadavg()}")
    for name, tree in trees.items():
        print(f"  {name}: {tree}")
    for events in map(str, lengths):
        first = rounds["current"][0]["results"][events]
        print(
            f"\n{events} events per history, {first['count']} records per mode; statuses {first['statuses']}"
        )
        header = f"{'mode':<20} {'tree':<9} {'backend':<9} {'dec/s':>8} {'dec/CPU-s':>10} {'p50 µs':>8}"
        header += f" {'p99 µs':>8} {'CPU p50':>8} {'CPU p99':>8} {'× native':>9}"
        if "baseline" in trees:
            header += f" {'× base':>7}"
        print(header)
        for label, _, _ in MODES:
            native = median_of(rounds["current"], events, f"native|{label}", "per_cpu_s")
            base = (
                median_of(rounds["baseline"], events, f"native|{label}", "per_cpu_s")
                if "baseline" in trees
                else None
            )
            for name in trees:
                for backend in backends:
                    key = f"{backend}|{label}"
                    if key not in rounds[name][0]["results"][events]:
                        continue
                    row = {k: median_of(rounds[name], events, key, k) for k in first[key]}
                    line = (
                        f"{label:<20} {name:<9} {backend:<9} "
                        f"{row['per_s']:>8,.0f} {row['per_cpu_s']:>10,.0f} "
                        f"{row['p50']:>8.1f} {row['p99']:>8.1f} {row['cpu_p50']:>8.1f} {row['cpu_p99']:>8.1f}"
                        f" {row['per_cpu_s'] / native:>9.2f}"
                    )
                    if base is not None:
                        line += f" {row['per_cpu_s'] / base:>7.2f}"
                    print(line)


if __name__ == "__main__":
    main()
