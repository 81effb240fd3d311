"""Benchmark a portfolio dry-run with a baseline: decide N accounts under the
CN policy and a one-threshold variant (every account under both), with the
columnar backend from the typed layout and/or the native backend from JSON
lines. Prints accounts/s (wall), accounts per CPU-second (the run's rusage,
and the CPU of every process of the run sampled from /proc every 20 ms: with
``--workers`` ≥ 2 rusage misses the forkserver's workers, which are not the
run's children), peak RSS summed over every process of the run (sampled from
/proc every 20 ms: the run and all its descendants), how many rows the columnar
backend vectorised, and the time per stage of the columnar run (read, facts,
policies, output). A script, not a test.

    python benchmarks/dry_run.py --accounts 1000000 --unique 100000
    python benchmarks/dry_run.py --accounts 20000 --backend columnar native --workers 1 2
    python benchmarks/dry_run.py --accounts 1000000 --unique 20000 --workers 1 2 --reasons none changed

Generating accounts costs ~0.5 ms each (Python, record by record), so
``--unique U`` generates U distinct accounts and tiles them up to N in the
typed layout (each copy with its own row numbers and ids; the decision mix
is the same in every copy). Files go to a temporary folder under /tmp (or
``--keep DIR``) and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AT = "2026-11-23T10:00:00+08:00"

CHILD = """
import datetime as dt, json, resource, sys, time
from escalation import compare
stages = {"read": 0.0, "decide": 0.0, "fold": 0.0, "merge": 0.0}
import escalation.portfolio.dryrun as dryrun
if hasattr(dryrun, "merge"):  # batches folded where decided, merged here
    merge = dryrun.merge
    def timed_merge(part, *args):
        for stage, seconds in part.clocks.items():  # measured where the batch was read, decided, folded
            stages[stage] += seconds
        t = time.process_time()
        merge(part, *args)
        stages["merge"] += time.process_time() - t
    dryrun.merge = timed_merge
else:  # a tree from before the per-batch fold (a baseline): read, decided, folded here
    import escalation.portfolio._columnar_run as run
    import escalation.portfolio.arrow as arrow
    def timed(stage, inner):
        def run_timed(*args):
            it = inner(*args)
            while True:
                t = time.process_time()
                try:
                    item = next(it)
                except StopIteration:
                    return
                stages[stage] += time.process_time() - t
                yield item
        return run_timed
    arrow.read_typed = timed("read", arrow.read_typed)
    dryrun.columnar_results = timed("decide", run.columnar_results)
    fold = dryrun.fold
    def timed_fold(*args):
        t = time.process_time()
        fold(*args)
        stages["fold"] += time.process_time() - t
    dryrun.fold = timed_fold
import escalation.backends.columnar._table as table
def clock(module, name, stage):
    inner = getattr(module, name)
    def wrapper(*args, **kwargs):
        t = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            stages[stage] = stages.get(stage, 0.0) + time.process_time() - t
    setattr(module, name, wrapper)
clock(table, "derive_batch", "facts")
clock(table, "decide", "policies")
clock(table, "_reference", "reference engine")
clock(table, "_explain_rows", "reasons")
clock(table, "decision_table", "output tables")
import escalation.arrow as arrow_api
why = {}
decide_result = arrow_api.decide_result
def counted(*args, **kwargs):
    result = decide_result(*args, **kwargs)
    for reason, rows in result.fallback_reasons.items():
        why[reason] = why.get(reason, 0) + rows
    return result
arrow_api.decide_result = counted
start = time.perf_counter()
workers = int(sys.argv[6])
result = compare(sys.argv[1], sys.argv[2], sys.argv[3], at=dt.datetime.fromisoformat(sys.argv[4]),
                 out=sys.argv[5], workers=workers, backend=sys.argv[7], fmt=sys.argv[8],
                 reasons=sys.argv[9])
wall = time.perf_counter() - start
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
inner = [v for k, v in stages.items() if k not in ("read", "decide", "fold", "merge")]
stages["decide"] -= sum(inner) + (0 if hasattr(dryrun, "merge") else stages["read"])
stages["other decide_table" if inner else "decide"] = stages.pop("decide")
print(json.dumps({"accounts": result.accounts, "decided": result.decided, "errors": result.errors,
                  "changed": result.changed, "wall": wall, "cpu": cpu, "backend": result.backend,
                  "vectorised": result.vectorised, "fallback": result.fallback, "stages": stages,
                  "fallback_reasons": why}))
"""


def _tree_rss(root: int, ticks: dict[int, int], peaks: dict[int, int]) -> int:
    """RSS (KiB) summed over ``root`` and all its descendants, from /proc; each
    one's CPU so far (user + system clock ticks) recorded in ``ticks``, its
    peak RSS (KiB) in ``peaks``."""
    parents: dict[int, int] = {}
    used: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
                used[int(entry)] = int(fields[11]) + int(fields[12])  # utime + stime
            except OSError:
                continue
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    total = 0
    for pid in members:
        ticks[pid] = max(ticks.get(pid, 0), used.get(pid, 0))
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        peaks[pid] = max(peaks.get(pid, 0), int(line.split()[1]))
        except OSError:
            continue
    return total


def _run(command: list[str]) -> tuple[dict[str, object], int, float, str]:
    """Run ``command``; its last stdout line as JSON, the peak summed RSS (KiB)
    and the CPU seconds of it and every descendant, sampled from /proc (the
    run's own rusage misses worker processes started by a forkserver: they are
    not its children), and each process's CPU seconds and peak RSS."""
    ticks: dict[int, int] = {}
    peaks: dict[int, int] = {}
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid, ticks, peaks))
            time.sleep(0.02)
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode:
            raise SystemExit(f"run failed:\n{err}")
        out.seek(0)
        tick = os.sysconf("SC_CLK_TCK")
        each = ", ".join(
            f"{ticks[pid] / tick:.1f} s {peaks.get(pid, 0) / 1024:,.0f} MiB" for pid in sorted(ticks)
        )
        return json.loads(out.read().strip().splitlines()[-1]), peak, sum(ticks.values()) / tick, each


def _tile(base: Path, folder: Path, accounts: int) -> None:
    """Copies of the typed portfolio ``base`` up to ``accounts`` rows (own rows and ids)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from escalation.portfolio._typed_writer import TypedWriter  # the layout's writer options

    acc = pq.read_table(base / "accounts.parquet")
    ev = pq.read_table(base / "events.parquet")
    unique = acc.num_rows
    with TypedWriter(folder, acc.schema, ev.schema) as writer:
        done = 0
        copy = 0
        while done < accounts:
            take = min(unique, accounts - done)
            part = acc.slice(0, take)
            part = part.set_column(0, "row", pc.add(part.column("row"), done))
            ids = pc.binary_join_element_wise(part.column("id"), f"-{copy}", "")
            part = part.set_column(part.schema.get_field_index("id"), "id", ids)
            events = ev.filter(pc.less(ev.column("account"), take))
            events = events.set_column(
                0, "account", pc.add(events.column("account"), pa.scalar(done, pa.int64()))
            )
            writer.write(part, events)
            done += take
            copy += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument(
        "--unique", type=int, default=None, help="distinct accounts generated (tiled up to N)"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker process counts (both backends)"
    )
    parser.add_argument("--backend", nargs="+", default=["columnar"], choices=["columnar", "native"])
    parser.add_argument(
        "--format", default="jsonl", choices=["jsonl", "parquet"], help="decisions file format"
    )
    parser.add_argument("--reasons", nargs="+", default=["changed"], choices=["all", "changed", "none"])
    parser.add_argument("--keep", metavar="DIR", help="work in DIR instead of a temporary directory")
    args = parser.parse_args()
    # The package compiled to bytecode first, as `pip install` leaves it: an
    # editable install under PYTHONDONTWRITEBYTECODE=1 (this VM sets it) would
    # otherwise compile every module from source in every process of every run
    # (~0.1 CPU-s each), a cost no installed copy pays.
    compileall.compile_dir(ROOT / "escalation", quiet=1)
    from escalation.portfolio.arrow import write_typed
    from escalation.portfolio.generate import generate, write_portfolio

    unique = min(args.unique or args.accounts, args.accounts)
    scratch = tempfile.mkdtemp(prefix="dry-run-bench-", dir="/tmp")
    try:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        baseline = ROOT / "policies" / "consumer-credit-cn.yaml"
        candidate = work / "candidate.yaml"
        candidate.write_text(baseline.read_text().replace("days_overdue >= 8", "days_overdue >= 9"))
        at = dt.datetime.fromisoformat(AT)
        started = time.perf_counter()
        base = work / "unique.typed"
        write_typed(generate(unique, 1, "cn-card", at), base)
        print(f"generated {unique:,} accounts (typed layout) in {time.perf_counter() - started:.1f} s")
        typed = base
        if args.accounts > unique:
            started = time.perf_counter()
            typed = work / "portfolio.typed"
            _tile(base, typed, args.accounts)
            print(f"tiled to {args.accounts:,} accounts in {time.perf_counter() - started:.1f} s")
        size = sum(f.stat().st_size for f in typed.iterdir()) / 2**20
        print(f"typed portfolio: {size:,.0f} MiB on disk")
        runs = []
        if "columnar" in args.backend:
            runs += [("columnar", w, typed, r) for w in args.workers for r in args.reasons]
        if "native" in args.backend:
            portfolio = work / "portfolio.jsonl"
            write_portfolio(generate(args.accounts, 1, "cn-card", at), portfolio)
            runs += [("native", w, portfolio, args.reasons[0]) for w in args.workers]
        for backend, workers, source, reasons in runs:
            out = work / f"out-{backend}-{workers}"
            f, peak, sampled, each = _run(
                [sys.executable, "-c", CHILD, str(baseline), str(candidate), str(source), AT, str(out),
                 str(workers), backend, args.format, reasons]
            )  # fmt: skip
            shutil.rmtree(out, ignore_errors=True)
            accounts = int(f["accounts"])  # type: ignore[call-overload]
            wall, cpu = float(f["wall"]), float(f["cpu"])  # type: ignore[arg-type]
            ok = "reconcile" if accounts == int(f["decided"]) + int(f["errors"]) else "DO NOT reconcile"  # type: ignore[call-overload]
            print(
                f"{backend} --workers {workers} (--format {args.format} --reasons {reasons}): "
                f"{accounts:,} accounts x 2 in {wall:.1f} s = {accounts / wall:,.0f} accounts/s, "
                f"{accounts / cpu:,.0f} per CPU-s (rusage), {accounts / sampled:,.0f} per CPU-s of every "
                f"process ({sampled:.1f} s, /proc); peak RSS summed over processes {peak / 1024:,.0f} MiB; "
                f"{f['decided']:,} decided + {f['errors']:,} error rows ({ok}); {f['changed']:,} changed"
            )
            print(f"  per process (in start order; CPU, peak RSS): {each}")
            if backend == "columnar":
                stages = f["stages"]
                assert isinstance(stages, dict)
                split = "CPU s per stage (summed over processes): " + ", ".join(
                    f"{k} {v:.2f}" for k, v in stages.items()
                )
                if workers == 1:  # facts, policies, ... are clocked in this process only
                    split += f", other {cpu - sum(stages.values()):.2f}"
                print(f"  {f['vectorised']:,} vectorised, {f['fallback']:,} by the reference engine; {split}")
                why = f["fallback_reasons"]
                assert isinstance(why, dict)
                shown = ", ".join(f"{k} {v:,}" for k, v in sorted(why.items(), key=lambda kv: -kv[1]))
                print(f"  reference-engine rows by reason (first found per row): {shown or 'none'}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
