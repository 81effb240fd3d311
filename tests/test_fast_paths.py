"""The decide() fast paths agree with the plain definitions they replace.

* history instants are compared as POSIX timestamps (converted once per
  decision): a record with an event after ``now`` is still refused, naming
  exactly the events a datetime comparison names;
* facts are the same whether the history arrives oldest first (no re-sort)
  or in any other order;
* a prerequisite guard's cached single alternative equals a fresh one;
* decisions with the trace off equal decisions with it on, trace aside."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, load_policy, parse_account
from escalation._facts import account_zone, derive
from escalation._validate import check_at
from escalation.errors import RecordError
from escalation.guards import PrerequisiteGuard

from .strategies import cases

ROOT = Path(__file__).resolve().parent.parent
CN = load_policy(ROOT / "policies/consumer-credit-cn.yaml")
US = load_policy(ROOT / "policies/us-card-collector.yaml")
ENGINES = {"cn": Engine(CN), "us": Engine(US)}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(data=st.data(), shift=st.integers(-3 * 86_400, 3 * 86_400))
def test_future_events_are_named_as_a_datetime_comparison_names_them(data: st.DataObject, shift: int) -> None:
    record, now = data.draw(cases(CN))
    account = parse_account(record)
    # move `now` so that some events may lie after it
    moved = now - dt.timedelta(seconds=shift)
    expected = {f"history.{i}.at" for i, e in enumerate(account.history) if e.at > moved}
    issues = check_at(account, moved, account_zone(account, CN))
    assert {i.field for i in issues if i.field.startswith("history.")} == expected
    if expected:
        with pytest.raises(RecordError) as caught:
            ENGINES["cn"].decide(record, now=moved)
        assert expected <= {i.field for i in caught.value.issues}


@SETTINGS
@given(data=st.data(), seed=st.integers(0, 1000))
def test_facts_do_not_depend_on_history_order(data: st.DataObject, seed: int) -> None:
    record, now = data.draw(cases(CN))
    # one event per instant (events at the same instant keep their record order)
    unique = list({e["at"]: e for e in record["history"]}.values())
    # ISO strings with one offset sort as the instants they name
    ordered: dict[str, Any] = dict(record, history=sorted(unique, key=lambda e: e["at"]))
    shuffled = dict(record, history=list(unique))
    random.Random(seed).shuffle(shuffled["history"])
    a = derive(parse_account(ordered), now, CN)
    b = derive(parse_account(shuffled), now, CN)
    assert a.values == b.values
    assert a.stamps == b.stamps


def test_the_cached_single_alternative_equals_a_fresh_one() -> None:
    singles = [g.model for g in US.guards + CN.guards if isinstance(g.model, PrerequisiteGuard)]
    singles = [g for g in singles if not g.any_of]
    assert singles, "the shipped policies have single-form prerequisite guards"
    for guard in singles:
        first = guard.alternatives()
        assert first is guard.alternatives()  # built once
        assert first == (guard._single(),)


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(ENGINES)))
def test_trace_off_changes_nothing_but_the_trace(data: st.DataObject, which: str) -> None:
    engine = ENGINES[which]
    record, now = data.draw(cases(engine.policy))
    on = engine.decide(record, now=now)
    off = engine.decide(record, now=now, trace=False)
    assert off.trace == []
    assert on.model_dump(exclude={"trace"}) == off.model_dump(exclude={"trace"})


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@st.composite
def odd_events(draw: st.DrawFn) -> dict[str, Any]:
    """History events with awkward text, offsets, fractions of a second and amounts."""
    offset = draw(st.sampled_from([0, 8 * 60, -5 * 60 - 30, 5 * 60 + 45, 14 * 60]))
    tz = dt.timezone(dt.timedelta(minutes=offset))
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        seconds=draw(st.integers(0, 300 * 86_400)),
        microseconds=draw(st.sampled_from([0, 1, 500_000, 999_999])),
    )
    event: dict[str, Any] = {
        "at": at.astimezone(tz).isoformat() if draw(st.booleans()) else at.astimezone(tz)
    }
    for name in ("action", "address", "actor", "offer"):
        if draw(st.booleans()):
            event[name] = draw(_TEXT.filter(lambda t: t.strip() == t and t))
    if draw(st.booleans()):
        event["outcome"] = draw(st.sampled_from(["sent", "payment", "conversation"]))
        event["channel"] = draw(st.sampled_from(["sms", "phone", "letter"]))
    if draw(st.booleans()):
        event["direction"] = draw(st.sampled_from(["inbound", "outbound"]))
    if draw(st.booleans()):
        event["misdirected"] = draw(st.booleans())
    if draw(st.booleans()):
        event["amount"] = draw(st.sampled_from(["0", "0.00", "12.50", "1E+3", "100"]))
    if draw(st.integers(0, 5)) == 0:
        event["consent_until"] = (at + dt.timedelta(days=3)).isoformat()
    return event


@SETTINGS
@given(data=st.data(), events=st.lists(odd_events(), max_size=6), ident=_TEXT)
def test_the_fast_canonical_record_is_the_reference_text(
    data: st.DataObject, events: list[dict[str, Any]], ident: str
) -> None:
    from escalation.decision import _canonical, reference_canonical

    record, _now = data.draw(cases(CN))
    for candidate in (record, dict(record, history=events, id=ident.strip() or "x", currency="USD")):
        try:
            account = parse_account(candidate)
        except RecordError:
            continue
        assert _canonical(account) == reference_canonical(account)


def _undone_by_scan(start: int, ready: int, undo: list[int], kept: list[int]) -> bool:
    """The definition: an undo at or after the start, before the first kept at or after ready."""
    lock = min((k for k in kept if k >= ready), default=None)
    return any(u >= start and (lock is None or u < lock) for u in undo)


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 40),
    wait=st.integers(0, 10),
    undo=st.lists(st.integers(0, 60), max_size=8),
    kept=st.lists(st.integers(0, 60), max_size=8),
)
def test_undone_by_bisection_is_the_scan(start: int, wait: int, undo: list[int], kept: list[int]) -> None:
    from escalation.guards.prerequisite import _undone

    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def at(minutes: list[int]) -> list[dt.datetime]:
        return [base + dt.timedelta(minutes=m) for m in sorted(minutes)]  # history order

    expected = _undone_by_scan(start, start + wait, sorted(undo), sorted(kept))
    got = _undone(at([start])[0], at([start + wait])[0], at(undo), at(kept))
    assert got == expected
