"""The columnar facts stage (issue 12: fewer passes over the events, per-account
reductions over positions) gives exactly the facts of the implementation it
replaced, kept verbatim in ``_colfacts_reference.py``: every array (values and
dtype), every column (kind, values, known, memberships), the fallback marks
and their reasons, the cache entries the policies stage reads — on generated
portfolios of every profile (plain and dictionary-encoded events), on
hand-made edges (empty and one-event histories, several zones, DST edges,
unsorted histories, payments, promises, several numbers) and on histories
drawn by hypothesis."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyarrow")

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.backends.columnar._column import Column
from escalation.backends.columnar._facts import Facts, derive_batch
from escalation.policy import Policy, load_policy
from escalation.portfolio.arrow import TypedBatch, read_typed, to_batch, write_typed
from escalation.portfolio.generate import PROFILES, generate

from . import _colfacts_reference as reference

ROOT = Path(__file__).resolve().parent.parent
AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
_POLICIES: dict[str, Policy] = {}


def _policy(profile: str) -> Policy:
    if profile not in _POLICIES:
        _POLICIES[profile] = load_policy(ROOT / PROFILES[profile].policy)
    return _POLICIES[profile]


def _same_array(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return bool(a.tolist() == b.tolist())
    return bool(np.array_equal(a, b))


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _same_array(a, b)
    if isinstance(a, pa.Table | pa.ChunkedArray | pa.Array):
        return type(a) is type(b) and bool(a.equals(b))
    if isinstance(a, tuple | list):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, Column):
        return isinstance(b, Column) and all(
            _same_value(getattr(a, f), getattr(b, f)) for f in ("kind", "values", "known", "lists", "members")
        )
    return bool(a is b or a == b)


def differences(new: Facts, old: Facts) -> list[str]:
    """Every part of two batches' facts that differs (empty: the same facts)."""
    out = []
    for f in dataclasses.fields(Facts):
        a, b = getattr(new, f.name), getattr(old, f.name)
        if f.name == "why":
            if not (_same_array(a.mask, b.mask) and _same_array(a.code, b.code)):
                out.append("why")
        elif f.name == "columns":
            if list(a) != list(b):
                out.append(f"column names: {list(a)} != {list(b)}")
            out += [f"column {k}" for k in a if k in b and not _same_value(a[k], b[k])]
        elif f.name == "cache":
            if list(a) != list(b):
                out.append(f"cache keys: {list(a)} != {list(b)}")
            out += [f"cache {k}" for k in a if k in b and not _same_value(a[k], b[k])]
        elif not _same_value(a, b):
            out.append(f.name)
    return out


def check(batch: TypedBatch, policy: Policy, now: dt.datetime = AT) -> Facts:
    new = derive_batch(batch, policy, now)
    old = reference.derive_batch(batch, policy, now)
    assert [] == differences(new, old)
    return new


def _densify(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """More events on the days of the latest ones (payments with amounts, promises,
    unreached calls to a second number), so every reduction has work to do."""
    rng = random.Random(seed)
    for record in records:
        history = record.get("history") or []
        if not history or rng.random() < 0.5:
            continue
        for _ in range(rng.randint(1, 6)):
            event = dict(rng.choice(history))
            moment = dt.datetime.fromisoformat(event["at"]) + dt.timedelta(hours=rng.randint(-30, 30))
            event["at"] = min(moment, AT - dt.timedelta(minutes=1)).isoformat()
            kind = rng.random()
            if kind < 0.2:
                event = {"at": event["at"], "direction": "inbound", "outcome": "payment", "amount": "12.5"}
            elif kind < 0.35:
                event["outcome"] = "promise_to_pay"
            elif kind < 0.55 and event.get("channel") == "phone":
                event["outcome"] = rng.choice(["not_in_service", "no_answer", "conversation"])
                event["address"] = rng.choice(["+1-555-0199", event.get("address") or "+1-555-0198"])
            history.append(event)
        record["history"] = sorted(history, key=lambda e: dt.datetime.fromisoformat(e["at"]))
    return records


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_generated_batches_give_the_same_facts(profile: str, tmp_path: Path) -> None:
    """3,000 generated accounts per profile (plus denser histories), as one batch of
    plain columns and as read back dictionary-encoded from the typed layout."""
    records = _densify(list(generate(3000, 21, profile, AT)), 5)
    policy = _policy(profile)
    facts = check(to_batch(list(enumerate(records, 1))), policy)
    assert len(facts.ev_ts) > 3000  # the histories are not empty
    assert (~facts.fallback).sum() > 1000  # most rows are vectorised: their facts are the ones used
    write_typed(iter(records), tmp_path / "typed", batch=1000)
    for batch in read_typed(tmp_path / "typed", batch=1024):
        check(batch, policy)


def _account(i: int, zone: str, history: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {
        "id": f"E-{i}", "currency": "USD", "amount_overdue": "100.00", "balance": "900.00",
        "overdue_since": "2026-10-01", "timezone": zone, "history": history, **more,
    }  # fmt: skip


def _edge_records() -> list[dict[str, Any]]:
    def call(
        at: str, outcome: str = "no_answer", address: str = "+1-555-0101", **more: Any
    ) -> dict[str, Any]:
        return {
            "at": at,
            "action": "collection_call",
            "channel": "phone",
            "outcome": outcome,
            "address": address,
            **more,
        }

    dst = [  # a microsecond either side of US and UK changes in 2026
        "2026-03-08T06:59:59.999999+00:00", "2026-03-08T07:00:00+00:00", "2026-11-01T05:59:59.999999+00:00",
        "2026-11-01T06:00:00+00:00", "2026-03-29T00:59:59.999999+00:00", "2026-10-25T01:00:00+00:00",
    ]  # fmt: skip
    return [
        _account(1, "America/New_York", []),
        _account(2, "America/New_York", [call("2026-11-20T15:00:00-05:00")]),
        _account(3, "America/New_York", [call(t) for t in dst]),
        _account(4, "Europe/London", [call(t, "not_in_service") for t in dst]),
        _account(
            5, "America/Chicago", [call(t) for t in dst], timezones=["America/Chicago", "America/Denver"]
        ),
        _account(
            6, "America/New_York", [call("2026-11-21T10:00:00-05:00"), call("2026-11-02T10:00:00-05:00")]
        ),
        _account(  # two numbers: one not in service, one unreached
            7,
            "America/New_York",
            [
                call("2026-11-02T10:00:00-05:00", "not_in_service", "+1-555-0102"),
                call("2026-11-03T10:00:00-05:00"),
            ],
        ),
        _account(
            8,
            "America/New_York",
            [
                call("2026-11-02T10:00:00-05:00", "not_in_service", "+1-555-0102"),
                call("2026-11-03T10:00:00-05:00", "not_in_service"),
            ],
        ),
        _account(
            9,
            "America/Los_Angeles",
            [
                {
                    "at": "2026-11-05T09:00:00-08:00",
                    "direction": "inbound",
                    "outcome": "payment",
                    "amount": "40.00",
                },
                call("2026-11-06T09:00:00-08:00", "promise_to_pay"),
                {"at": "2026-11-07T09:00:00-08:00", "direction": "inbound", "outcome": "payment"},
            ],
            promise_to_pay={
                "amount": "50.00",
                "due_date": "2026-11-20",
                "made_at": "2026-11-10T09:00:00-08:00",
            },
            last_payment_at="2020-01-01",
        ),
        _account(10, "America/New_York", [call("2026-12-01T10:00:00-05:00")]),  # after now
        _account(11, "Mars/Olympus", [call("2026-11-02T10:00:00-05:00")]),  # not a zone
        _account(
            12, "America/Denver", [call("2026-10-01T06:00:00+00:00"), call("2026-09-30T05:59:59+00:00")]
        ),
    ]


@pytest.mark.parametrize(
    "now", [AT, dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC)]
)
def test_edges_give_the_same_facts(now: dt.datetime) -> None:
    """Empty and one-event histories, DST edges, several zones and numbers,
    payments and promises, an unsorted history, an event after now, a bad zone."""
    policy = _policy("us-card")
    records = _edge_records()
    facts = check(to_batch(list(enumerate(records, 1))), policy, now)
    assert len(facts.ev_ts) > 20
    check(to_batch([]), policy, now)  # no accounts at all
    check(to_batch(list(enumerate(records[:2], 1))), policy, now)  # events of one account


_DST = [dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 1, tzinfo=dt.UTC)]  # fmt: skip
_OUTCOMES = ["no_answer", "busy", "voicemail", "conversation", "promise_to_pay", "not_in_service",
             "wrong_party", "delivered", "failed", "payment", "sent"]  # fmt: skip


@st.composite
def _histories(draw: st.DrawFn, tiers: list[tuple[str, str]]) -> list[dict[str, Any]]:
    events = []
    for _ in range(draw(st.integers(0, 12))):
        base = draw(st.sampled_from([AT, *_DST]))
        at = base - dt.timedelta(microseconds=draw(st.integers(-3_600_000_000, 200 * 86_400_000_000)))
        at = min(at, AT - dt.timedelta(seconds=1))
        event: dict[str, Any] = {"at": at.isoformat(), "outcome": draw(st.sampled_from(_OUTCOMES))}
        if event["outcome"] == "payment":
            event["direction"] = "inbound"
            if draw(st.booleans()):
                event["amount"] = str(draw(st.integers(1, 10_000)))
        else:
            tier, channel = draw(st.sampled_from(tiers))
            event.update(action=tier, channel=channel)
            if channel == "phone":
                event["address"] = draw(st.sampled_from(["+1-555-0101", "+1-555-0102", "+1-555-0103"]))
        events.append(event)
    if draw(st.booleans()):
        events.sort(key=lambda e: e["at"])  # otherwise: in drawn order
    return events


_POOL: dict[str, list[dict[str, Any]]] = {}


def _channel(tier: Any) -> str:
    chosen = tier.channel or (tier.channels[0] if tier.channels else "letter")
    return str(getattr(chosen, "value", chosen))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_drawn_histories_give_the_same_facts(data: st.DataObject) -> None:
    """Accounts of a generated book with drawn histories: in any zone of the
    profile (some in two), unsorted or sorted, across DST changes, at drawn instants."""
    profile = data.draw(st.sampled_from(sorted(PROFILES)))
    policy = _policy(profile)
    pool = _POOL.setdefault(profile, list(generate(40, 3, profile, AT)))
    tiers = [(t.model.id, _channel(t.model)) for t in policy.tiers]
    zones = [*PROFILES[profile].zones, "America/New_York", "Europe/London"]
    records = []
    for i in range(data.draw(st.integers(1, 8))):
        record = {**data.draw(st.sampled_from(pool)), "id": f"H-{i}"}
        record["history"] = data.draw(_histories(tiers))
        record["timezone"] = data.draw(st.sampled_from(zones))
        if data.draw(st.integers(0, 3)) == 0:
            record["timezones"] = sorted({record["timezone"], data.draw(st.sampled_from(zones))})
        records.append(record)
    now = data.draw(st.sampled_from([AT, *(d + dt.timedelta(days=40) for d in _DST)]))
    check(to_batch(list(enumerate(records, 1))), policy, now)
