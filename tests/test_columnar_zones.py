"""The columnar evaluator against the reference engine (``native``) where it
used to hand rows to the reference engine: accounts in several time zones
(contact hours in every zone, the next opening across zones, ``every_zone``
cooldowns and frequency caps, DST edges) and tiers an offer must come before
(``offer_first``, with offers already made in the cycle) — zero differing
decisions, and those rows vectorised."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation import Engine  # noqa: E402
from escalation._facts import derive  # noqa: E402
from escalation.backends.columnar import ColumnarPolicy, TableResult, decide_table  # noqa: E402
from escalation.backends.columnar._facts import derive_batch  # noqa: E402
from escalation.policy import load_policy  # noqa: E402
from escalation.portfolio.arrow import TypedBatch, to_batch  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402
from escalation.portfolio.writer import decision_row  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("status", "action", "channel", "severity", "next_eligible_at", "hold", "blocked_guards")
# zones with DST (north and south, a 30-minute one), without, and far apart (no common window)
ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",
    "Europe/London",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
)
# DST edges (US spring/autumn, EU spring/autumn, Lord Howe), a holiday, an ordinary day
INSTANTS = (
    "2026-03-08T06:30:00+00:00",
    "2026-11-01T12:59:00+00:00",
    "2026-03-29T00:30:00+00:00",
    "2026-10-25T00:59:00+00:00",
    "2026-10-03T15:45:00+00:00",
    "2026-10-01T02:05:00+08:00",
    "2026-11-23T10:00:00+08:00",
)


def _several_zones(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Every account gets 1–3 other zones (sometimes its own again, or a duplicate)."""
    rng = random.Random(seed)
    for record in records:
        listed = rng.sample(ZONES, rng.choice([1, 1, 2, 3]))
        if record.get("timezone") and rng.random() < 0.3:
            listed.append(record["timezone"])
        if rng.random() < 0.1:
            listed.append(listed[0])
        record["timezones"] = listed
    return records


def _compare(
    policy_path: Path, batch: TypedBatch, records: list[dict[str, Any]], now: dt.datetime
) -> tuple[list[str], TableResult]:
    policy = load_policy(policy_path)
    result = decide_table(batch, [ColumnarPolicy(policy)], now=now)
    engine = Engine(policy)
    differing = []
    for i, record in enumerate(records):
        got = result.decisions[0][i]
        try:
            ref: dict[str, Any] | None = decision_row(engine.decide(record, now=now, trace=False))
        except Exception:
            ref = None
        if (ref is None) != (got is None):
            differing.append(f"{record.get('id')}: native {ref} columnar {got}")
        elif ref is not None and got is not None and any(ref[k] != got[k] for k in KEYS):
            differing.append(f"{record.get('id')}: {[(k, ref[k], got[k]) for k in KEYS if ref[k] != got[k]]}")
    return differing, result


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("at", INSTANTS)
def test_accounts_in_several_zones_agree_and_are_vectorised(profile: str, at: str) -> None:
    """Generated accounts, each in 2–4 zones, at DST edges and window edges:
    zero differing decisions, and every such account is vectorised unless a
    reason other than its zones sends it to the reference engine."""
    now = dt.datetime.fromisoformat(at)
    records = _several_zones(list(generate(250, 7, profile, now)), 3)
    batch = to_batch(list(enumerate(records, 1)))
    differing, result = _compare(ROOT / PROFILES[profile].policy, batch, records, now)
    assert [] == differing[:10]
    assert result.vectorised >= 0.8 * len(records), result.fallback_reasons
    assert not {"several time zones", "time zone"} & set(result.fallback_reasons)


def test_contact_hours_across_zones_are_exercised() -> None:
    """The multi-zone cases above do reach the new checks: accounts shut in one
    of their zones but open in their own wait for the window common to all
    (a later ``next_eligible_at``), and accounts whose zones share no window
    are blocked with no time (only an event lifts it)."""
    now = dt.datetime.fromisoformat("2026-10-01T02:05:00+08:00")  # 02:05 Shanghai, 19:05 London
    records = list(generate(600, 7, "cn-card", now))
    alone = [dict(r, timezones=[]) for r in records]
    paired = [dict(r, timezones=["Europe/London"]) for r in records]
    # UTC+8, UTC+1 and UTC-7 that day: no hour is inside a 13-hour window in all three
    far = [dict(r, timezones=["Europe/London", "America/Los_Angeles"]) for r in records]
    policy = ROOT / PROFILES["cn-card"].policy
    outcomes = {}
    for name, book in (("alone", alone), ("paired", paired), ("far", far)):
        differing, result = _compare(policy, to_batch(list(enumerate(book, 1))), book, now)
        assert [] == differing[:10]
        outcomes[name] = result.decisions[0]
    later = sum(
        1
        for a, b in zip(outcomes["alone"], outcomes["paired"], strict=True)
        if a and b and a["next_eligible_at"] and (b["next_eligible_at"] or "") > a["next_eligible_at"]
    )
    never = sum(
        1
        for a, b in zip(outcomes["alone"], outcomes["far"], strict=True)
        if a and b and a["status"] in ("act", "wait") and b["status"] == "none" and b["blocked_guards"]
    )
    assert later > 0
    assert never > 0


def test_every_zone_guards_are_the_strictest_per_zone() -> None:
    """The US Regulation F pack counts its 7-in-7 call cap and its cooldown in
    every zone (``days_in: every_zone``): dense histories near midnight in one
    zone and not another agree with the reference engine, all vectorised."""
    now = dt.datetime.fromisoformat("2026-11-23T04:30:00+00:00")  # 23:30 New York, 20:30 Los Angeles
    records = list(generate(1500, 9, "us-card", now))
    rng = random.Random(4)
    for index, record in enumerate(records):
        record["timezones"] = [rng.choice(["America/Los_Angeles", "Pacific/Honolulu", "Europe/London"])]
        history = list(record.get("history") or [])
        for k in range(index % 9):
            moment = now - dt.timedelta(hours=3 + 11 * k + index % 7)
            outcome = ["no_answer", "conversation", "voicemail"][k % 3]
            history.append(
                {"at": moment.isoformat(), "action": "call", "channel": "phone", "direction": "outbound",
                 "outcome": outcome, "address": "+1555000" + str(k % 2)}
            )  # fmt: skip
        record["history"] = sorted(history, key=lambda e: dt.datetime.fromisoformat(e["at"]))
    batch = to_batch(list(enumerate(records, 1)))
    differing, result = _compare(ROOT / PROFILES["us-card"].policy, batch, records, now)
    assert [] == differing[:10]
    assert result.vectorised >= 0.8 * len(records), result.fallback_reasons
    blocked = {g for d in result.decisions[0] if d for g in d["blocked_guards"]}
    assert blocked, "no guard blocked: the case does not exercise the caps"


def _with_offers(
    records: list[dict[str, Any]], offer: str, now: dt.datetime
) -> tuple[list[dict[str, Any]], list[bool]]:
    """Every other account gets an outbound SMS in this cycle (a day ago); every
    fourth carries ``offer`` (delivered, undeliverable or no outcome), as the
    simulator's history does. Returns the records and which events (in the
    typed layout's order) carry the offer."""
    outcomes = ["delivered", "undeliverable", None]
    marks: list[bool] = []
    out = []
    for index, record in enumerate(records):
        history = list(record.get("history") or [])
        extra = None
        if index % 2 == 0:
            extra = {"at": (now - dt.timedelta(days=1)).isoformat(), "action": None, "channel": "sms",
                     "direction": "outbound", "outcome": "delivered"}  # fmt: skip
            if index % 4 == 0:
                extra["offer"] = offer
                extra["outcome"] = outcomes[(index // 4) % 3]
            history.append(extra)
        history.sort(key=lambda e: dt.datetime.fromisoformat(e["at"]))
        marks.extend(e is extra and "offer" in e for e in history)
        out.append(dict(record, history=history))
    return out, marks


def _typed_with_offers(records: list[dict[str, Any]], marks: list[bool], offer: str) -> TypedBatch:
    """The typed batch the simulator builds: offers in the events' ``offer`` column
    (:func:`to_batch` sends a record with an offer made to the reference engine)."""
    bare = [
        dict(r, history=[{k: v for k, v in e.items() if k != "offer"} for e in r["history"]]) for r in records
    ]
    batch = to_batch(list(enumerate(bare, 1)))
    column = pa.array([offer if m else None for m in marks], pa.string())
    events = batch.events.set_column(batch.events.schema.get_field_index("offer"), "offer", column)
    return TypedBatch(batch.accounts, events, batch.source)


@pytest.mark.parametrize("profile", ["cn-card", "uk-loan", "ie-loan"])
def test_offer_first_tiers_agree_and_are_vectorised(profile: str) -> None:
    """Accounts about to act on a tier with ``offer_first``: status ``offer``
    when none of its offers reached them in this cycle and one is eligible,
    ``act`` otherwise — as the reference engine decides, without it."""
    now = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
    policy_path = ROOT / PROFILES[profile].policy
    policy = load_policy(policy_path)
    gated = next(t for t in policy.tiers if t.model.offer_first)
    offer = gated.model.offer_first[0]
    records = list(generate(1200, 5, profile, now))
    records, marks = _with_offers(records, offer, now)
    differing, result = _compare(policy_path, _typed_with_offers(records, marks, offer), records, now)
    assert [] == differing[:10]
    assert "offer action" not in result.fallback_reasons
    statuses = [d["status"] for d in result.decisions[0] if d]
    if profile == "cn-card":  # the UK and IE books have no account at their gated tiers today
        assert statuses.count("offer") > 0


def test_limitation_interrupted_by_events_agrees_and_is_vectorised() -> None:
    """CN's limitation period restarts on a delivered demand or a payment made
    before it ran out (``interrupted_by``); a demand after it ran out revives
    nothing. Accounts whose last payment is 3–4 years old, some with such
    events inside the period, some after it: zero differing decisions, none
    sent to the reference engine for it, and both outcomes reached."""
    now = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
    records = list(generate(1600, 11, "cn-card", now))
    for index, record in enumerate(records):
        if index % 2:
            continue
        paid = now.date() - dt.timedelta(days=3 * 365 + 20 + index % 300)
        record["last_payment_at"] = paid.isoformat()
        history = list(record.get("history") or [])
        kind = (index // 2) % 4
        if kind in (1, 2):  # inside the period: a delivered demand letter, or a part payment
            moment = dt.datetime.combine(paid + dt.timedelta(days=200 + index % 500), dt.time(11), now.tzinfo)
            event = (
                {
                    "action": "demand_letter",
                    "channel": "letter",
                    "direction": "outbound",
                    "outcome": "delivered",
                }
                if kind == 1
                else {"direction": "inbound", "outcome": "payment", "amount": "50.00"}
            )
            history.append({"at": moment.isoformat(), **event})
        elif kind == 3:  # after it ran out: revives nothing
            moment = dt.datetime.combine(paid + dt.timedelta(days=3 * 365 + 5), dt.time(11), now.tzinfo)
            history.append({"at": moment.isoformat(), "action": "demand_letter", "channel": "letter",
                            "direction": "outbound", "outcome": "delivered"})  # fmt: skip
        record["history"] = sorted(history, key=lambda e: dt.datetime.fromisoformat(e["at"]))
    policy_path = ROOT / PROFILES["cn-card"].policy
    batch = to_batch(list(enumerate(records, 1)))
    differing, result = _compare(policy_path, batch, records, now)
    assert [] == differing[:10]
    assert "limitation interrupted" not in result.fallback_reasons
    policy = load_policy(policy_path)
    barred = derive_batch(batch, policy, now).columns["time_barred"]
    engine = Engine(policy)
    reference = [derive(engine.validate(r, now=now), now, policy).values.get("time_barred") for r in records]
    assert reference == [bool(v) if k else None for v, k in zip(barred.values, barred.known, strict=True)]
    old = reference[::2]
    assert 0 < old.count(True) < len(old)  # restarted periods are not barred


def test_backends_page_columnar_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The example of the columnar section of docs/backends.md runs (from the
    repository root) and prints its counts: several zones are vectorised."""
    import os
    import re

    text = (ROOT / "docs" / "backends.md").read_text()
    section = text.split("## The `columnar` backend", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))
    assert code
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(code, "docs/backends.md", "exec"), {})  # the page's own example, not user input
    finally:
        os.chdir(here)
    vectorised, fallback, _ = capsys.readouterr().out.split(" ", 2)
    assert int(vectorised) > 0.8 * (int(vectorised) + int(fallback))


def test_simulated_days_agree_with_the_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The simulator's own batches — histories grown day by day with outcomes,
    offers made, agency placements, promises and payments in the typed layout —
    decided over columns and by the reference engine (``reasons="all"``): zero
    differing decisions on every simulated day, both policies."""
    import escalation.simulate._loop as loop
    from escalation.portfolio.generate import write_portfolio
    from escalation.simulate.run import simulate

    now = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
    book = tmp_path / "book.jsonl"
    write_portfolio(generate(300, 2, "cn-card", now), book)
    original = loop.decide_table
    differing: list[str] = []
    rows = {"vectorised": 0, "offer": 0}

    def both(batch: TypedBatch, policies: list[ColumnarPolicy], **options: Any) -> TableResult:
        # The loop asks for Arrow tables (dicts=False); compare as dicts, answer as asked.
        fast = original(batch, policies, **{**options, "dicts": True})
        reference = original(batch, policies, now=options["now"], reasons="all")
        rows["vectorised"] += fast.vectorised
        for i, (a, b) in enumerate(zip(fast.decisions[0], reference.decisions[0], strict=True)):
            if (a is None) != (b is None) or (a and b and any(a[k] != b[k] for k in KEYS)):
                differing.append(f"{options['now']} row {i}: {a} != {b}")
            rows["offer"] += bool(a and a["status"] == "offer")
        return original(batch, policies, **options)

    monkeypatch.setattr(loop, "decide_table", both)
    simulate(ROOT / "examples" / "cn-lawyer-letter-45.yaml", book, at=now, days=6,
             baseline=ROOT / "policies" / "consumer-credit-cn.yaml", runs=1, out=tmp_path / "out",
             backend="columnar")  # fmt: skip
    assert [] == differing[:10]
    assert rows["vectorised"] > 0 and rows["offer"] > 0
