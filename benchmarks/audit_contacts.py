"""Benchmark the contact audit: N generated CN accounts, each with a history
of exactly 30 outbound contacts (SMS and calls on the 30 days before the
export, every one inside the audited period), audited under the bundled CN
policy by the reference evaluator (every contact re-derived), the fast one
(a screen, the reference only for contacts it cannot clear) and the typed one
(the same portfolio converted once to the typed layout; whole accounts
screened over columns, the fast path only for accounts it cannot clear), in
one run. Prints, for each, accounts/second and contacts/second by the wall
clock and accounts per CPU-second (the machine may be shared), whether the
summaries are identical, how many accounts the typed screen referred, and the
ceilings set by reading alone: the JSONL read and validated record by record,
the typed folder read batch by batch. ``--profile`` shows where the typed
path's time goes (cProfile, top functions by internal time). ``--skip``
leaves evaluators out (``--skip reference`` for large N). A script, not a test.

    python benchmarks/audit_contacts.py --accounts 2000
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from escalation import audit_contacts
from escalation.contacts import summary_json
from escalation.policy import load_policy
from escalation.portfolio.arrow import convert
from escalation.portfolio.generate import generate

ROOT = Path(__file__).resolve().parent.parent
AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
EVENTS = 30


# What --clean removes: the record state that blocks contacts (holds, opt-outs, plans).
CLEAN = ("flags", "opt_out", "payment_plan", "promise_to_pay")


def write(path: Path, accounts: int, clean: bool = False, breach: float | None = None) -> None:
    """Generated accounts whose histories are replaced by 30 daily contacts
    (with ``clean``, without the state that blocks them, at 09:05–17:05 +08:00;
    with ``breach``, clean, at 10:05–16:05 +08:00 — inside the hours in both
    CN zones — but for one contact at 06:05 in that percentage of the accounts)."""
    with path.open("w") as handle:
        for n, record in enumerate(generate(accounts, 1, "cn-card", AT)):
            if clean or breach is not None:
                for name in CLEAN:
                    record.pop(name, None)
            tz = dt.timezone(dt.timedelta(hours=8))
            history = []
            for day in range(EVENTS, 0, -1):
                hour = 9 + (n + day) % (9 if clean else 10)
                if breach is not None:
                    early = day == 1 and (n * 7919) % 10_000 < breach * 100
                    hour = 6 if early else 10 + (n + day) % 7
                moment = (AT - dt.timedelta(days=day)).astimezone(tz).replace(hour=hour, minute=5)
                phone = day % 2 == 0
                history.append({"at": moment.isoformat(), "action": "phone_call" if phone else "sms_reminder",
                                "channel": "phone" if phone else "sms",
                                "outcome": "no_answer" if phone else "delivered",
                                **({"address": "+86-100-0000-0001"} if phone else {})})  # fmt: skip
            record["history"] = history
            record.pop("timezones", None)
            handle.write(json.dumps(record) + "\n")


def read_only(path: Path, policy: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) to read and validate every record (what the reference
    and fast paths pay for every account)."""
    from escalation.engine import Engine
    from escalation.policy import load_policy
    from escalation.portfolio.io import read_portfolio

    engine = Engine(load_policy(policy))
    began, cpu = time.perf_counter(), time.process_time()
    for item in read_portfolio(path):
        record = item.parsed().record
        if record is not None:
            engine.validate(record, now=AT)
    return time.perf_counter() - began, time.process_time() - cpu


def read_typed_only(folder: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) to read the typed folder's batches (what the typed path pays)."""
    from escalation.contacts._typed_run import BATCH
    from escalation.portfolio.arrow import read_typed

    began, cpu = time.perf_counter(), time.process_time()
    for batch in read_typed(folder, BATCH):
        batch.events.column("at")
    return time.perf_counter() - began, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="print where the typed path's time goes")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="no blocking record state (flags, opt-outs, plans, promises); contacts 09:05-17:05 +08:00",
    )
    parser.add_argument(
        "--breach",
        type=float,
        metavar="PCT",
        help="clean state, contacts inside the hours in every zone, and one contact at 06:05 "
        "(a quiet-hours violation) in PCT %% of the accounts",
    )
    parser.add_argument("--skip", action="append", default=[], choices=("reference", "fast"))
    args = parser.parse_args()
    policy = ROOT / "policies" / "consumer-credit-cn.yaml"
    start = AT - dt.timedelta(days=EVENTS + 1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "portfolio.jsonl"
        write(path, args.accounts, args.clean, args.breach)
        typed = Path(folder) / "portfolio.typed"
        began = time.perf_counter()
        convert(path, typed)
        print(
            f"convert   JSONL -> typed folder once: {time.perf_counter() - began:.2f} s (not counted below)"
        )
        loaded = load_policy(policy)  # once: the runs below time the audit, not the YAML
        found: dict[str, Any] = {}
        results = {}
        for evaluator in ("reference", "fast", "typed"):
            if evaluator in args.skip:
                continue
            profiler = cProfile.Profile() if args.profile and evaluator == "typed" else None
            source = typed if evaluator == "typed" else path
            began, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            results[evaluator] = audit_contacts(
                loaded, source, start=start, end=AT, at=AT, evaluator=evaluator
            )
            if profiler is not None:
                profiler.disable()
            took, used = time.perf_counter() - began, time.process_time() - cpu
            found[evaluator] = summary_json(results[evaluator])  # every count, by rule, actor and day
            print(_line(evaluator, results[evaluator], took, used))
        same = all(f == found["typed"] for f in found.values())
        print(f"summaries {'identical' if same else 'DIFFER'} across {', '.join(found)}")
        stats = results["typed"].stats
        print(f"referred  typed screen: {stats.get('accounts_cleared', 0):,} accounts cleared, "
              f"{stats.get('accounts_referred', 0):,} referred to the fast path "
              f"({stats.get('referred', 0):,} contacts judged by the reference there)")  # fmt: skip
        for name, (wall, cpu) in (("JSONL read + validate", read_only(path, policy)),
                                  ("typed folder read", read_typed_only(typed))):  # fmt: skip
            print(f"ceiling   {name} alone: {wall:.2f} s = {args.accounts / wall:,.0f} accounts/s, "
                  f"{args.accounts / cpu:,.0f} accounts/CPU-s")  # fmt: skip
        print(breakdown(typed, policy, start))
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def breakdown(folder: Path, policy: Path, start: dt.datetime) -> str:
    """Where the typed path's CPU time goes: reading the batches, the column
    screen, and for the accounts it refers, rebuilding their records,
    validating them and auditing them on the fast path."""
    import numpy as np

    from escalation.contacts import ContactAuditor
    from escalation.contacts._fast import FastAuditor
    from escalation.contacts._typed import TypedScreen
    from escalation.contacts._typed_run import BATCH
    from escalation.engine import Engine
    from escalation.policy import load_policy
    from escalation.portfolio.arrow import read_typed, records_of

    loaded = load_policy(policy)
    engine, reference = Engine(loaded), ContactAuditor(loaded)
    screen, fast = TypedScreen(reference), FastAuditor(reference)
    spent = dict.fromkeys(("read", "screen", "rebuild", "validate", "audit"), 0.0)
    accounts = referred = guilty = 0
    clock = time.process_time
    began = clock()
    for batch in read_typed(folder, BATCH):
        batch.events.column("at")
        spent["read"] += clock() - began
        began = clock()
        found = screen.screen(batch, start, AT, AT)
        spent["screen"] += clock() - began
        rows = np.flatnonzero(~found.cleared).tolist()
        accounts, referred = accounts + len(batch), referred + len(rows)
        began = clock()
        records = records_of(batch, rows)
        spent["rebuild"] += clock() - began
        for record in records:
            began = clock()
            account = engine.validate(record, now=AT)  # type: ignore[arg-type]
            spent["validate"] += clock() - began
            began = clock()
            guilty += bool(fast.audit(account, start, AT, AT)[1])
            spent["audit"] += clock() - began
        began = clock()
    total = sum(spent.values())
    parts = ", ".join(f"{k} {v:.3f} ({100 * v / total:.0f} %)" for k, v in spent.items())
    per = ", ".join(
        f"{k} {1000 * spent[k] / max(referred, 1):.2f} ms" for k in ("rebuild", "validate", "audit")
    )
    return (f"breakdown typed path, CPU-s: {parts}; "
            f"total {total:.3f} = {accounts / total:,.0f} accounts/CPU-s\n"
            f"          screen alone {accounts / spent['screen']:,.0f} accounts/CPU-s; "
            f"per referred account ({referred:,}, of which {guilty:,} have a violation): {per}")  # fmt: skip


def _line(evaluator: str, result: Any, took: float, cpu: float) -> str:
    return (f"{evaluator:<9} {result.accounts:,} accounts, {result.contacts:,} contacts in {took:.2f} s "
            f"({cpu:.2f} CPU-s): {result.accounts / took:,.0f} accounts/s, {result.contacts / took:,.0f} "
            f"contacts/s, {result.accounts / cpu:,.0f} accounts/CPU-s "
            f"({result.violations:,} violations, {result.errors} error rows)")  # fmt: skip


if __name__ == "__main__":
    main()
