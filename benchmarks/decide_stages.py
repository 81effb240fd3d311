"""Per-stage CPU cost of ``Engine.decide()`` on the CN policy (30-event
histories, records already validated into ``Account`` objects).

Each stage is timed twice: on *fresh* accounts (objects no decision has seen:
what a service deciding each record once pays) and *again* on the same objects
(what a dry-run's second policy, or a second instant, pays). Prints CPU µs per
call, the median of ``--rounds`` child processes per tree; with ``--baseline``
the trees run alternately, so both meet the same machine load::

    python benchmarks/decide_stages.py --baseline /work/wt-base --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def child(n: int, events: int) -> dict[str, float]:
    """CPU µs per call of each stage, in this interpreter's `escalation`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import decide as bench

    from escalation import Engine, parse_account
    from escalation._facts import derive
    from escalation.decision import decision_id

    engine = Engine.from_file("policies/consumer-credit-cn.yaml")
    policy, now = engine.policy, bench.NOW
    rng = random.Random(7)
    records = [bench.record(rng, i, events) for i in range(n)]

    def fresh() -> list[Any]:
        return [parse_account(r) for r in records]

    def cpu(calls: Callable[[], object]) -> float:
        start = time.process_time()
        calls()
        return (time.process_time() - start) / n * 1e6

    def read_only(account: Any, stamps: Any) -> Any:
        try:
            return derive(account, now, policy, stamps, read_only=True)
        except TypeError:  # a tree without the option derives every fact
            return derive(account, now, policy, stamps)

    def decide_all(accounts: list[Any], trace: bool) -> Callable[[], object]:
        # each decision dropped at once, as a service does: a list holding them all
        # would add 150–250 µs a traced decide of full garbage collections
        def run() -> None:
            for a in accounts:
                engine.decide(a, now=now, trace=trace)

        return run

    out: dict[str, float] = {}
    for trace in (True, False):
        label = f"decide trace {'on' if trace else 'off'}"
        engine.decide(fresh()[0], now=now, trace=trace)  # warm-up
        accounts = fresh()
        out[f"{label}, fresh"] = cpu(decide_all(accounts, trace))
        out[f"{label}, again"] = cpu(decide_all(accounts, trace))
    accounts = fresh()
    out["_checked, fresh"] = cpu(lambda: [engine._checked(a, now) for a in accounts])
    out["_checked, again"] = cpu(lambda: [engine._checked(a, now) for a in accounts])
    checked = [engine._checked(a, now) for a in accounts]
    out["derive (engine's call)"] = cpu(lambda: [read_only(a, s) for a, s in checked])
    out["derive (every fact)"] = cpu(lambda: [derive(a, now, policy, s) for a, s in checked])
    accounts = fresh()
    fingerprint = policy.fingerprint
    out["decision_id, fresh"] = cpu(lambda: [decision_id(fingerprint, a, now) for a in accounts])
    out["decision_id, again"] = cpu(lambda: [decision_id(fingerprint, a, now) for a in accounts])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n, args.events)))
        return
    trees = (
        {"current": ROOT} if args.baseline is None else {"baseline": args.baseline.resolve(), "current": ROOT}
    )
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):  # alternate, so both trees meet the same load
        for name, tree in trees.items():
            cmd = [sys.executable, __file__, "--child", "--n", str(args.n), "--events", str(args.events)]
            env = dict(os.environ, PYTHONPATH=str(tree))
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=tree)
            rounds[name].append(json.loads(done.stdout))
    print(
        f"CN policy, {args.events} events, {args.n} accounts, median of {args.rounds}; load {os.getloadavg()}"
    )
    header = f"{'stage (CPU µs per call)':<28}" + "".join(f"{name:>10}" for name in trees)
    print(header + ("   × base" if "baseline" in trees else ""))
    for stage in rounds["current"][0]:
        medians = {name: statistics.median(r[stage] for r in rounds[name]) for name in trees}
        line = f"{stage:<28}" + "".join(f"{medians[name]:>10.1f}" for name in trees)
        if "baseline" in trees:
            line += f"{medians['baseline'] / medians['current']:>8.2f}×"
        print(line)


if __name__ == "__main__":
    main()
