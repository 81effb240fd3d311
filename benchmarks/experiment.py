"""Benchmark champion/challenger serving: what routing and labelling cost.

1. ``decide``: the bundled CN portfolio (1,000 accounts) decided by the
   champion's ``Engine`` and by the ``ExperimentEngine`` of
   ``examples/experiment-lawyer-45.yaml`` (trace off), best of ``--repeat``.
2. dry-run: a generated CN portfolio of ``--accounts`` accounts as a plain
   comparison (challenger against champion, every account under both) and as
   the experiment (every account under the champion, challenger accounts under
   their arm's policy), on the columnar and the reference backends.

Prints accounts/s. A script, not a test::

    python benchmarks/experiment.py --accounts 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from escalation import Engine, ExperimentEngine, dry_run
from escalation.portfolio.generate import generate, write_portfolio

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "examples" / "experiment-lawyer-45.yaml"
AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")


def best(repeat: int, run: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    experiment = ExperimentEngine.from_file(EXPERIMENT)
    champion = Engine(experiment.champion.policy)
    records = [
        json.loads(line) for line in (ROOT / "examples" / "portfolio-cn.jsonl").read_text().splitlines()
    ]
    for name, engine in (("Engine (champion)", champion), ("ExperimentEngine", experiment)):
        seconds = best(args.repeat, lambda e=engine: [e.decide(r, now=AT, trace=False) for r in records])
        print(f"decide, {name:<18}: {len(records) / seconds:>9,.0f} accounts/s")

    with tempfile.TemporaryDirectory() as folder:
        book = Path(folder) / "book.jsonl"
        write_portfolio(generate(args.accounts, 5, "cn-card", AT), book)
        challenger, base = experiment.challenger.policy, experiment.champion.policy
        for backend in ("columnar", "native"):
            runs = {
                "compare (both policies, every account)": lambda b=backend: dry_run(
                    challenger, book, at=AT, baseline=base, backend=b
                ),
                "experiment (by arm)": lambda b=backend: dry_run(experiment, book, at=AT, backend=b),
            }
            for name, run in runs.items():
                seconds = best(1 if backend == "native" else args.repeat, run)
                print(f"dry-run {backend:<8}, {name:<39}: {args.accounts / seconds:>9,.0f} accounts/s")


if __name__ == "__main__":
    main()
