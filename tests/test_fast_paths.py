"""The decide() fast paths agree with the plain definitions they replace.

* history instants are compared as POSIX timestamps (converted once per
  decision): a record with an event after ``now`` is still refused, naming
  exactly the events a datetime comparison names;
* facts are the same whether the history arrives oldest first (no re-sort)
  or in any other order;
* a prerequisite guard's cached single alternative equals a fresh one;
* the canonical record text behind decision ids equals its definition, for
  awkward text (controls, quotes, non-ASCII, U+2028, JSON-looking values)
  in every optional event field.

(Decisions with the trace off equal those with it on, trace aside: in
``tests/test_ladder_fast.py``, over every shipped policy.)
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from escalation import Engine, load_policy, parse_account
from escalation._facts import account_zone, derive
from escalation._validate import _DATE_FIELDS, _INSTANT_FIELDS, check_at, fill_channels
from escalation.errors import RecordError
from escalation.guards import PrerequisiteGuard

from .strategies import cases

ROOT = Path(__file__).resolve().parent.parent
CN = load_policy(ROOT / "policies/consumer-credit-cn.yaml")
US = load_policy(ROOT / "policies/us-card-collector.yaml")
ENGINES = {"cn": Engine(CN), "us": Engine(US)}
_MINIMAL = {"id": "a", "currency": "CNY", "amount_overdue": "1", "balance": "1", "days_overdue": 1}
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


# text that JSON writers escape differently if at all: controls, quotes, backslashes,
# line and paragraph separators, non-BMP characters, and values that look like the
# keys and defaults the canonical writer handles
_AWKWARD = [
    '"', "\\", "\x00", "\x1f", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\n", "\t", "é", "中文",
    "\U0001f600", '"action":null,', ',"misdirected":false', ',"direction":"outbound"', "null", "}", "{",
    '\\"', "</script>",
]  # fmt: skip
_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    st.lists(st.sampled_from([*_AWKWARD, "a", "Z", "0"]), min_size=1, max_size=5).map(
        lambda p: "x" + "".join(p) + "y"
    ),
)


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
    if draw(st.integers(0, 2)) == 0:  # the usual event: a tier action with its channel, outcome, address
        event.update(action="sms_reminder", channel="sms", outcome="delivered", address="+86 100")
        for name in ("action", "address"):  # their text may be awkward too
            if draw(st.booleans()):
                event[name] = draw(_TEXT.filter(lambda t: t.strip() == t and t))
        return event
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
        event["amount"] = draw(st.sampled_from(["0", "0.00", "12.50", "1E+3", "100", "0.1", "7.0"]))
    if draw(st.integers(0, 5)) == 0:
        event["consent_until"] = (at + dt.timedelta(days=3)).isoformat()
    return event


@SETTINGS
@given(data=st.data(), events=st.lists(odd_events(), max_size=6), ident=_TEXT)
def test_the_fast_canonical_record_is_the_reference_text(
    data: st.DataObject, events: list[dict[str, Any]], ident: str
) -> None:
    from escalation._canonical import canonical, reference_canonical

    record, _now = data.draw(cases(CN))
    attributes = {ident.strip() or "k": ident, "misdirected": False, "id": "x"}
    others = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "flags": st.just(["dispute", "hardship"]),
                "attributes": st.just(attributes),
                "segment": _TEXT,
            },
        )
    )
    for candidate in (
        record,
        dict(record, history=events, id=ident.strip() or "x", currency="USD", **others),
    ):
        try:
            account = parse_account(candidate)
        except RecordError:
            continue
        assert reference_canonical(account) == canonical(account)


def test_fill_channels_keeps_a_record_whose_events_all_name_a_channel() -> None:
    """A record whose every event names its channel comes back unchanged and clean;
    one missing a channel is still filled from its tier or named."""
    engine = ENGINES["cn"]
    event = {"at": "2026-01-01T00:00:00+08:00", "action": "sms_reminder", "channel": "sms"}
    full = parse_account(dict(_MINIMAL, history=[event]))
    assert (full, []) == fill_channels(full, engine._single)
    missing = full.model_copy(update={"history": (full.history[0].model_copy(update={"channel": None}),)})
    filled, issues = fill_channels(missing, engine._single)
    assert ([], full.history) == (issues, filled.history)
    unknown = missing.model_copy(
        update={"history": (missing.history[0].model_copy(update={"action": "no_such_tier"}),)}
    )
    assert ["history.0.channel"] == [i.field for i in fill_channels(unknown, engine._single)[1]]


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


_NOW = dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@SETTINGS
@given(
    instants=st.dictionaries(st.sampled_from(_INSTANT_FIELDS), st.integers(-3, 3)),
    dates=st.dictionaries(st.sampled_from([n for n in _DATE_FIELDS if "." not in n]), st.integers(-3, 3)),
    reply=st.none() | st.tuples(st.integers(-3, 3), st.none() | st.integers(-3, 3)),
)
def test_record_dates_after_now_are_named_in_field_order(
    instants: dict[str, int], dates: dict[str, int], reply: tuple[int, int | None] | None
) -> None:
    """check_at names exactly the record instants after ``now`` and dates after
    today, in the order of its field lists (the definition: one field at a time)."""
    today = _NOW.date()
    record: dict[str, Any] = dict(_MINIMAL, currency="CNY")
    record.update({k: (_NOW + dt.timedelta(hours=h)).isoformat() for k, h in instants.items()})
    record.update({k: (today + dt.timedelta(days=d)).isoformat() for k, d in dates.items()})
    if reply is not None:
        received, provided = reply
        record["letter_of_claim_reply"] = {
            "received_at": (today + dt.timedelta(days=received)).isoformat(),
            "kinds": ["documents_requested"],
        }
        if provided is not None:
            record["letter_of_claim_reply"]["documents_provided_at"] = (
                today + dt.timedelta(days=received + abs(provided))
            ).isoformat()
    try:
        account = parse_account(record)
    except RecordError:
        return
    expected = [n for n in _INSTANT_FIELDS if (v := getattr(account, n)) is not None and v > _NOW]
    for name in _DATE_FIELDS:
        found: Any = account
        for part in name.split("."):
            found = getattr(found, part, None)
        if found is not None and found > today:
            expected.append(name)
    issues = check_at(account, _NOW, ZoneInfo("Asia/Shanghai"), ())
    assert expected == [i.field for i in issues]
    event("named" if expected else "none named")


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(ENGINES)))
def test_history_facts_are_their_definitions(data: st.DataObject, which: str) -> None:
    """The facts derive() counts in one pass over the history equal their
    definitions, each counted on its own with datetime comparisons."""
    engine = ENGINES[which]
    record, now = data.draw(cases(engine.policy))
    account, stamps = engine._checked(record, now)
    sit = derive(account, now, engine.policy, stamps)
    out = [e for e in account.history if e.direction == "outbound"]
    week, month = now - dt.timedelta(days=7), now - dt.timedelta(days=30)
    expected: dict[str, Any] = {}
    for tier in (t.model for t in engine.policy.tiers):
        mine = [e for e in out if e.action == tier.id]
        cycle = [e for e in mine if e.at >= sit.cycle_start]
        made = [e for e in cycle if (e.outcome or "sent") in tier.counting_outcomes]
        expected[f"done.{tier.id}"], expected[f"attempts.{tier.id}"] = len(made), len(cycle)
        if mine:
            expected[f"days_since.{tier.id}"] = (now - max(e.at for e in mine)) // dt.timedelta(days=1)
    for channel in ("sms", "phone", "email", "letter", "visit", "legal", "bureau", "agency"):
        expected[f"contacts_7d.{channel}"] = sum(e.channel == channel and e.at > week for e in out)
        expected[f"contacts_30d.{channel}"] = sum(e.channel == channel and e.at > month for e in out)
    talks = [e for e in account.history if e.outcome == "conversation" and e.at > month]
    expected["conversations_30d"] = len(talks)
    got = {k: v for k, v in sit.values.items() if k in expected}
    assert expected == got
    tiers = {t.model.id for t in engine.policy.tiers}
    start = dt.datetime.combine(sit.today, dt.time(), sit.tz)
    today = [e for e in out if e.action in tiers and not e.misdirected and e.at >= start]
    reached = [t for t in engine.policy.tiers if not t.model.ongoing and expected[f"done.{t.model.id}"]]
    assert (len(today), reached[-1].model.id if reached else None) == (sit.actions_today, sit.stage)
