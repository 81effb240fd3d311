"""Benchmark the scale-out adapters on one generated book: the local dry-run
(columnar, one process; native, ``--workers 2``), Spark (``local[N]``,
``mapInArrow``) and Ray (``map_batches`` tasks on N CPUs), each a dry-run of
the CN policy beside a one-threshold variant on the same JSONL book.

Prints, per engine: accounts, wall seconds of the dry-run (the Spark session
or Ray start-up excluded, shown apart), accounts per second, CPU-seconds of
the whole process tree during the dry-run (driver, JVM, Python workers,
raylet, …) and CPU-seconds per 1M accounts; then the extrapolation of each
to 100M accounts on ``--cores`` cores (CPU-seconds scaled linearly: an
estimate, not a measurement). A script, not a test.

    python benchmarks/scale_out.py --accounts 100000 --engines local spark ray --cores 64
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "consumer-credit-cn.yaml"
AT = "2026-11-23T10:00:00+08:00"
TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu() -> float:
    """CPU-seconds of this process and every descendant (alive, and those
    they reaped), from /proc."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        times[pid] = sum(int(v) for v in fields[11:15]) / TICK  # utime stime cutime cstime
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def child(engine: str, book: Path, numbered: Path, candidate: Path, cores: int) -> dict[str, Any]:
    import datetime as dt

    at = dt.datetime.fromisoformat(AT)
    start_up = time.perf_counter()
    if engine == "spark":
        from escalation.spark import dry_run, local_session

        session = local_session(cores, partition_bytes=1 << 20)
        frame = session.read.parquet(str(numbered))
        frame.count()
    elif engine == "ray":
        import ray

        from escalation.ray import dry_run as ray_dry_run
        from escalation.ray import local_cluster

        local_cluster(cores)
        dataset = ray.data.read_parquet(str(numbered), override_num_blocks=cores * 4)
    ready = time.perf_counter()
    cpu0 = tree_cpu()
    t0 = time.perf_counter()
    if engine.startswith("local"):
        from escalation import dry_run as local_dry_run

        workers = 2 if engine == "local-native-2" else 1
        backend = "native" if workers > 1 else "columnar"
        result = local_dry_run(candidate, book, at=at, baseline=POLICY, workers=workers, backend=backend)
        accounts, errors = result.accounts, result.errors
    elif engine == "spark":
        out = dry_run(frame, candidate, baseline=POLICY, at=at, json_column="record")
        counts = out.counts()
        out.transitions.collect()
        accounts, errors = counts["accounts"], counts["errors"]
    else:
        rout = ray_dry_run(dataset, candidate, baseline=POLICY, at=at, json_column="record", batch_size=2048)
        counts = rout.counts()
        accounts, errors = counts["accounts"], counts["errors"]
    wall = time.perf_counter() - t0
    cpu = tree_cpu() - cpu0
    return {"engine": engine, "accounts": accounts, "errors": errors, "wall": wall, "cpu": cpu,
            "start_up": ready - start_up}  # fmt: skip


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--engines", nargs="+", default=["local", "local-native-2", "spark", "ray"],
                        choices=["local", "local-native-2", "spark", "ray"])  # fmt: skip
    parser.add_argument("--local-cores", type=int, default=2, help="Spark local[N] / Ray CPUs")
    parser.add_argument("--cores", type=int, default=64, help="cores of the cluster to extrapolate to")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, book, numbered, candidate, cores = args.child
        print(json.dumps(child(engine, Path(book), Path(numbered), Path(candidate), int(cores))))
        return

    import pyarrow as pa
    import pyarrow.parquet as pq

    from escalation.portfolio.generate import generate, write_portfolio

    with tempfile.TemporaryDirectory(prefix="escalation-scale-") as tmp:
        folder = Path(tmp)
        book, numbered, candidate = folder / "book.jsonl", folder / "lines.parquet", folder / "candidate.yaml"
        write_portfolio(generate(args.accounts, seed=1), book)
        lines = book.read_text(encoding="utf-8").splitlines()
        pq.write_table(pa.table({"row": range(1, len(lines) + 1), "record": lines}), numbered,
                       row_group_size=5000)  # fmt: skip
        candidate.write_text(POLICY.read_text("utf-8").replace("days_overdue >= 8", "days_overdue >= 9"))
        print(f"{args.accounts:,} accounts (CN card, seed 1), dry-run with a baseline; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip
        print(f"{'engine':<16}{'accounts':>10}{'start s':>9}{'wall s':>9}{'acc/s':>9}{'CPU s':>9}"
              f"{'CPU s/1M':>10}{'100M on ' + str(args.cores) + ' cores':>20}")  # fmt: skip
        for engine in args.engines:
            run = subprocess.run(
                [sys.executable, __file__, "--child", engine, str(book), str(numbered), str(candidate),
                 str(args.local_cores)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if run.returncode != 0:
                print(f"{engine:<16} failed: {run.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            per_million = r["cpu"] / r["accounts"] * 1e6
            hours = per_million * 100 / args.cores / 3600  # extrapolated: CPU scaled linearly, perfect spread
            print(f"{engine:<16}{r['accounts']:>10,}{r['start_up']:>9.1f}{r['wall']:>9.1f}"
                  f"{r['accounts'] / r['wall']:>9,.0f}{r['cpu']:>9.1f}{per_million:>10,.0f}"
                  f"{hours:>16.2f} h")  # fmt: skip
        print("measured: accounts, start s, wall s, acc/s, CPU s, CPU s/1M; extrapolated: the last column "
              "(CPU s/1M x 100 / cores, assuming linear scaling and no stragglers)")  # fmt: skip


if __name__ == "__main__":
    main()
