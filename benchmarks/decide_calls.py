"""Count the Python calls one ``Engine.decide()`` makes, by stage.

Timings on a shared machine swing with its load; the number of Python calls
(function calls and calls into C, counted with :func:`sys.setprofile`) does
not. For each evaluator and mode (pre-validated ``Account`` or dict, trace on
or off) it prints the calls per decision on the shipped CN policy with
30-event histories, and the stages they are spent in (the outermost stage
function on the stack)::

    python benchmarks/decide_calls.py [--n 200] [--backends native,rete]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decide import NOW, ROOT, record

STAGES = {
    "parse_account": "validation",
    "_checked": "record checks",
    "derive": "facts",
    "first_hold": "holds",
    "first_hold_planned": "holds",
    "_check_channels": "guards",
    "check_channels": "guards",
    "after_ladder": "offers",
    "render": "reason",
    "decision_id": "decision id",
    "facts": "trace figures",
    "add": "trace entries",
    "entry": "trace entries",
    "truth": "conditions",
    "<lambda>": "conditions",
}


def count(engine: Any, rows: list[Any], trace: bool) -> dict[str, int]:
    counts: dict[str, int] = {}
    stack: list[str | None] = []

    def outer() -> str:
        return next((s for s in stack if s), "ladder and the rest")

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call":
            stack.append(STAGES.get(frame.f_code.co_name))
            counts[outer()] = counts.get(outer(), 0) + 1
        elif event == "return" and stack:
            stack.pop()
        elif event == "c_call":
            counts[outer()] = counts.get(outer(), 0) + 1

    sys.setprofile(profile)
    try:
        for row in rows:
            engine.decide(row, now=NOW, trace=trace)
    finally:
        sys.setprofile(None)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--backends", default="native")
    args = parser.parse_args()
    from escalation import Engine, parse_account

    rng = random.Random(7)
    dicts = [record(rng, i, 30) for i in range(args.n)]
    accounts = [parse_account(d) for d in dicts]
    for backend in args.backends.split(","):
        engine = Engine.from_file(ROOT / "policies/consumer-credit-cn.yaml", backend=backend)  # type: ignore[arg-type]
        for label, rows, trace in [
            ("Account, trace on", accounts, True),
            ("Account, trace off", accounts, False),
            ("dict, trace on", dicts, True),
            ("dict, trace off", dicts, False),
        ]:
            counts = count(engine, rows, trace)
            total = sum(counts.values()) / len(rows)
            stages = ", ".join(
                f"{k} {v / len(rows):.0f}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
            )
            print(f"{backend:<9} {label:<19} {total:6.0f} calls/decision  ({stages})")


if __name__ == "__main__":
    main()
