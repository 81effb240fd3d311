"""The columnar ladder's narrowed passes (contact-hours reopening over the rows
asked, frequency caps over the selected events, event filters at ``now``, event
day starts) against the reference engine: generated accounts of every profile,
with dense same-day call histories, decided at instants hypothesis picks over a
week (nights, weekends, window edges) — zero differing decisions."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation import Engine  # noqa: E402
from escalation.backends.columnar import ColumnarPolicy, decide_table  # noqa: E402
from escalation.policy import load_policy  # noqa: E402
from escalation.portfolio.arrow import to_batch  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402
from escalation.portfolio.writer import decision_row  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("status", "action", "channel", "severity", "next_eligible_at", "hold", "blocked_guards")
START = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)  # a Friday: the week spans a weekend


def _busy(records: list[dict[str, Any]], now: dt.datetime, seed: int) -> list[dict[str, Any]]:
    """Records with extra phone attempts in the hours before ``now`` (several a
    day, two numbers): frequency caps per account and per address reach their
    limit, and the release search runs."""
    rng = random.Random(seed)
    for index, record in enumerate(records):
        history = list(record.get("history") or [])
        for k in range(index % 8):
            moment = now - dt.timedelta(hours=1 + 5 * k + rng.randrange(4), minutes=rng.randrange(60))
            history.append(
                {"at": moment.isoformat(), "action": "call", "channel": "phone", "direction": "outbound",
                 "outcome": ["no_answer", "conversation", "busy", "voicemail"][(k + index) % 4],
                 "address": f"+86-100-0000-{k % 2:04d}"}
            )  # fmt: skip
        record["history"] = sorted(history, key=lambda e: dt.datetime.fromisoformat(e["at"]))
    return records


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.sampled_from(sorted(PROFILES)),
    minutes=st.integers(0, 7 * 24 * 60 - 1),
    busy=st.booleans(),
)
def test_columnar_agrees_with_the_reference_at_any_instant(profile: str, minutes: int, busy: bool) -> None:
    now = START + dt.timedelta(minutes=minutes)
    records = list(generate(120, minutes % 97, profile, now))
    if busy:
        records = _busy(records, now, minutes)
    policy = load_policy(ROOT / PROFILES[profile].policy)
    result = decide_table(to_batch(list(enumerate(records, 1))), [ColumnarPolicy(policy)], now=now)
    engine = Engine(policy)
    differing = []
    for i, record in enumerate(records):
        got = result.decisions[0][i]
        try:
            ref: dict[str, Any] | None = decision_row(engine.decide(record, now=now, trace=False))
        except Exception:  # a record the reference engine refuses: an error row on both paths
            ref = None
        if (ref is None) != (got is None) or (
            ref is not None and got is not None and any(ref[k] != got[k] for k in KEYS)
        ):
            differing.append((record.get("id"), ref, got))
    assert differing[:3] == []
    assert result.vectorised >= 0.5 * len(records), result.fallback_reasons
