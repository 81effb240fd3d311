"""The columnar evaluator at window and day edges, with two policies in one
batch (so guard verdicts are shared between them): per-address call caps at
and around their limit, events a microsecond either side of local midnight,
contact-hour edges; and the sort-free helpers against the ones they replace."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("pyarrow")

from escalation import Engine  # noqa: E402
from escalation.backends.columnar import ColumnarPolicy, decide_table  # noqa: E402
from escalation.backends.columnar._events import signature  # noqa: E402
from escalation.backends.columnar._starts import zone_day_starts  # noqa: E402
from escalation.backends.columnar._zones import day_start_us  # noqa: E402
from escalation.policy import load_policy  # noqa: E402
from escalation.portfolio.arrow import to_batch  # noqa: E402
from escalation.portfolio.writer import decision_row  # noqa: E402
from escalation.record import zone  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CN = ROOT / "policies" / "consumer-credit-cn.yaml"
KEYS = ("status", "action", "channel", "severity", "next_eligible_at", "hold", "blocked_guards")
TZ = dt.timezone(dt.timedelta(hours=8))
DAY = dt.datetime(2026, 11, 23, tzinfo=TZ)  # a Monday
UNANSWERED = ["no_answer", "busy", "voicemail", "failed", "not_in_service"]


def _records() -> list[dict[str, Any]]:
    """Phone-eligible accounts whose calls today sit at, below and above the
    per-number (6) and connected (3) caps, some a microsecond before or at
    local midnight, to one or two numbers."""
    out = []
    sms = {"action": "sms_reminder", "channel": "sms", "outcome": "delivered"}
    base = [{"at": "2026-11-11T10:00:00+08:00", **sms}, {"at": "2026-11-14T10:00:00+08:00", **sms}]
    for calls in (5, 6, 7):
        for edge in (-1, 0, 1):  # the first call a microsecond before, at, or after local midnight
            for numbers in (1, 2):
                for connected in (False, True):
                    history = list(base)
                    for k in range(calls):
                        moment = DAY + dt.timedelta(microseconds=edge) + dt.timedelta(minutes=k)
                        if k and k < calls:
                            moment = DAY + dt.timedelta(hours=1 + k)
                        outcome = "conversation" if connected and k < 3 else UNANSWERED[k % len(UNANSWERED)]
                        number = f"+86-100-0000-000{1 + (k % numbers if k == calls - 1 else 0)}"
                        history.append({"at": moment.isoformat(), "channel": "phone", "outcome": outcome,
                                        "address": number})  # fmt: skip
                    ident = f"E-{calls}-{edge}-{numbers}-{int(connected)}"
                    history.sort(key=lambda e: dt.datetime.fromisoformat(e["at"]))
                    out.append({"id": ident, "currency": "CNY", "timezone": "Asia/Shanghai",
                                "overdue_since": "2026-11-10", "amount_overdue": "600.00",
                                "balance": "5000.00", "history": history})  # fmt: skip
    return out


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CN policy with calls from day 14 (its guards the same: shared verdicts)."""
    path = tmp_path_factory.mktemp("edges") / "variant.yaml"
    path.write_text(CN.read_text().replace("when: days_overdue >= 8\n", "when: days_overdue >= 14\n", 1))
    return path


@pytest.mark.parametrize(
    "now",
    ["2026-11-23T10:00:00+08:00", "2026-11-23T21:59:59+08:00", "2026-11-23T22:00:00+08:00",
     "2026-11-24T07:59:59.999999+08:00", "2026-11-23T07:00:00+08:00"],
)  # fmt: skip
def test_caps_at_day_edges_agree_with_native(now: str, variant: Path) -> None:
    """Both policies, decided in one batch, agree with the reference engine on
    every account (decisions, next_eligible_at, blocked guards)."""
    at = dt.datetime.fromisoformat(now)
    records = [r for r in _records() if all(dt.datetime.fromisoformat(e["at"]) <= at for e in r["history"])]
    policies = [load_policy(CN), load_policy(variant)]
    batch = to_batch(list(enumerate(records, 1)))
    result = decide_table(batch, [ColumnarPolicy(p) for p in policies], now=at)
    assert result.vectorised == len(records) > 0
    differing = []
    for p, policy in enumerate(policies):
        engine = Engine(policy)
        for i, record in enumerate(records):
            ref = decision_row(engine.decide(record, now=at, trace=False))
            got = result.decisions[p][i]
            assert got is not None
            differing += [(p, record["id"], k, ref[k], got[k]) for k in KEYS if ref[k] != got[k]]
    assert [] == differing
    blocked = {g for rows in result.decisions[0] if rows for g in rows["blocked_guards"]}
    assert "cn-unanswered-attempts-per-number" in blocked or at.hour >= 22 or at.hour < 8


def test_signatures_tell_guard_definitions_apart(variant: Path) -> None:
    """Equal guards of two policies share a signature; a changed parameter does not."""
    a, b = load_policy(CN), load_policy(variant)
    assert [signature(r) for r in a.guards] == [signature(r) for r in b.guards]
    rule = next(r for r in b.guards if r.model.id == "cn-unanswered-attempts-per-number")
    changed = rule.model.model_copy(update={"max": 5})
    assert signature(rule) != signature(dataclasses.replace(rule, model=changed))


@pytest.mark.parametrize("name", ["Europe/London", "America/Havana", "Australia/Lord_Howe", "Asia/Shanghai"])
def test_day_starts_without_sorting_match(name: str) -> None:
    """``zone_day_starts`` equals ``day_start_us`` on DST days, narrow and wide ranges."""
    rng = np.random.default_rng(3)
    narrow = rng.integers(20_400, 20_800, 3_000)
    wide = np.concatenate([narrow, np.asarray([0, 40_000])])
    for days in (narrow, wide, narrow[:1], narrow[:0]):
        assert np.array_equal(zone_day_starts(name, days), day_start_us(name, zone(name), days))
