"""Benchmark the contact audit: N generated CN accounts, each with a history
of exactly 30 outbound contacts (SMS and calls on the 30 days before the
export, every one inside the audited period), audited under the bundled CN
policy. Prints accounts/second and contacts/second, and where the time goes
(cProfile, top functions by cumulative time, with --profile). A script, not a test.

    python benchmarks/audit_contacts.py --accounts 5000
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

from escalation import audit_contacts
from escalation.portfolio.generate import generate

ROOT = Path(__file__).resolve().parent.parent
AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
EVENTS = 30


def write(path: Path, accounts: int) -> None:
    """Generated accounts whose histories are replaced by 30 daily contacts."""
    with path.open("w") as handle:
        for n, record in enumerate(generate(accounts, 1, "cn-card", AT)):
            tz = dt.timezone(dt.timedelta(hours=8))
            history = []
            for day in range(EVENTS, 0, -1):
                moment = (
                    (AT - dt.timedelta(days=day)).astimezone(tz).replace(hour=9 + (n + day) % 10, minute=5)
                )
                phone = day % 2 == 0
                history.append({"at": moment.isoformat(), "action": "phone_call" if phone else "sms_reminder",
                                "channel": "phone" if phone else "sms",
                                "outcome": "no_answer" if phone else "delivered",
                                **({"address": "+86-100-0000-0001"} if phone else {})})  # fmt: skip
            record["history"] = history
            record.pop("timezones", None)
            handle.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "portfolio.jsonl"
        write(path, args.accounts)
        start = AT - dt.timedelta(days=EVENTS + 1)
        profiler = cProfile.Profile() if args.profile else None
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = audit_contacts(
            ROOT / "policies" / "consumer-credit-cn.yaml", path, start=start, end=AT, at=AT
        )
        if profiler is not None:
            profiler.disable()
        took = time.perf_counter() - began
    print(f"{result.accounts:,} accounts, {result.contacts:,} contacts audited in {took:.2f} s: "
          f"{result.accounts / took:,.0f} accounts/s, {result.contacts / took:,.0f} contacts/s "
          f"({result.violations:,} violations, {result.errors} error rows)")  # fmt: skip
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
