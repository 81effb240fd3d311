"""Benchmark the contact audit: N generated CN accounts, each with a history
of exactly 30 outbound contacts (SMS and calls on the 30 days before the
export, every one inside the audited period), audited under the bundled CN
policy by the reference evaluator (every contact re-derived) and by the fast
one (the default: a screen, the reference only for contacts it cannot clear),
on the same file in one run. Prints accounts/second and contacts/second for
both, their ratio, whether they found the same violations, how many contacts
the fast path still sent to the reference, and the ceiling set by reading and
validating the records alone. ``--profile`` shows where the fast path's time
goes (cProfile, top functions by internal time). A script, not a test.

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
from escalation.portfolio.generate import generate

ROOT = Path(__file__).resolve().parent.parent
AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
EVENTS = 30


# What --clean removes: the record state that blocks contacts (holds, opt-outs, plans).
CLEAN = ("flags", "opt_out", "payment_plan", "promise_to_pay")


def write(path: Path, accounts: int, clean: bool = False) -> None:
    """Generated accounts whose histories are replaced by 30 daily contacts
    (with ``clean``, without the state that blocks them, at 09:05–17:05 +08:00)."""
    with path.open("w") as handle:
        for n, record in enumerate(generate(accounts, 1, "cn-card", AT)):
            if clean:
                for name in CLEAN:
                    record.pop(name, None)
            tz = dt.timezone(dt.timedelta(hours=8))
            history = []
            for day in range(EVENTS, 0, -1):
                hour = 9 + (n + day) % (9 if clean else 10)
                moment = (AT - dt.timedelta(days=day)).astimezone(tz).replace(hour=hour, minute=5)
                phone = day % 2 == 0
                history.append({"at": moment.isoformat(), "action": "phone_call" if phone else "sms_reminder",
                                "channel": "phone" if phone else "sms",
                                "outcome": "no_answer" if phone else "delivered",
                                **({"address": "+86-100-0000-0001"} if phone else {})})  # fmt: skip
            record["history"] = history
            record.pop("timezones", None)
            handle.write(json.dumps(record) + "\n")


def read_only(path: Path, policy: Path) -> float:
    """Seconds to read and validate every record (what any audit path pays)."""
    from escalation.engine import Engine
    from escalation.policy import load_policy
    from escalation.portfolio.io import read_portfolio

    engine = Engine(load_policy(policy))
    began = time.perf_counter()
    for item in read_portfolio(path):
        record = item.parsed().record
        if record is not None:
            engine.validate(record, now=AT)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="print where the fast path's time goes")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="no blocking record state (flags, opt-outs, plans, promises); contacts 09:05-17:05 +08:00",
    )
    args = parser.parse_args()
    policy = ROOT / "policies" / "consumer-credit-cn.yaml"
    start = AT - dt.timedelta(days=EVENTS + 1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "portfolio.jsonl"
        write(path, args.accounts, args.clean)
        took: dict[str, float] = {}
        found: dict[str, Any] = {}
        results = {}
        for evaluator in ("reference", "fast"):
            profiler = cProfile.Profile() if args.profile and evaluator == "fast" else None
            began = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            results[evaluator] = audit_contacts(policy, path, start=start, end=AT, at=AT, evaluator=evaluator)
            if profiler is not None:
                profiler.disable()
            took[evaluator] = time.perf_counter() - began
            found[evaluator] = summary_json(results[evaluator])  # every count, by rule, actor and day
            print(_line(evaluator, results[evaluator], took[evaluator]))
        reading = read_only(path, policy)
        fast = results["fast"]
        print(f"ratio     fast / reference = {took['reference'] / took['fast']:.1f}x; "
              f"summaries {'identical' if found['fast'] == found['reference'] else 'DIFFER'}")  # fmt: skip
        referred, reused = fast.stats.get("referred", 0), fast.stats.get("reused", 0)
        print(f"referred  {referred:,} of {fast.contacts:,} contacts judged by the reference, "
              f"{reused:,} given the violations it wrote for their state")  # fmt: skip
        print(f"ceiling   reading + validating alone: {reading:.2f} s = "
              f"{fast.accounts / reading:,.0f} accounts/s")  # fmt: skip
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def _line(evaluator: str, result: Any, took: float) -> str:
    return (f"{evaluator:<9} {result.accounts:,} accounts, {result.contacts:,} contacts in {took:.2f} s: "
            f"{result.accounts / took:,.0f} accounts/s, {result.contacts / took:,.0f} contacts/s "
            f"({result.violations:,} violations, {result.errors} error rows)")  # fmt: skip


if __name__ == "__main__":
    main()
