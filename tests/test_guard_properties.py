"""No `act` decision ever breaks a limit of the shipped rule packs.

Each limit is re-checked here INDEPENDENTLY of the guard code: the counts are
made by hand over the generated history (local calendar days, every zone the
customer may be in, consent windows, exclusions), the hours by reading the
local clock in every zone, the flags and opt-outs from the record."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Decision, Engine

from .conftest import ROOT
from .strategies import instants, records

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
US = Engine.from_file(ROOT / "policies" / "us-card-collector.yaml")
UK = Engine.from_file(ROOT / "policies" / "uk-consumer-loan.yaml")
IE = Engine.from_file(ROOT / "policies" / "ie-consumer-loan.yaml")
CN = Engine.from_file(ROOT / "policies" / "consumer-credit-cn.yaml")
CONVERSED = {"conversation", "promise_to_pay", "refused", "dispute"}
PACK_FLAGS = ["statute_barred_refusal", "fos_complaint_open", "visit_agreed", "mental_capacity_concern",
              "contact_time_agreed"]  # fmt: skip
UNANSWERED = ("no_answer", "busy", "voicemail", "failed", "not_in_service")
# Unanswered calls weighted up so that daily and weekly counts reach their limits.
CALL_OUTCOMES = ["no_answer", "voicemail", "busy", "conversation", "not_in_service", "failed"] + [
    "no_answer"
] * 4


@st.composite
def situations(draw: st.DrawFn, engine: Engine) -> tuple[dict[str, Any], dt.datetime]:
    """A record for ``engine``'s policy at an instant, with the fields the packs read."""
    now = draw(instants())
    if draw(st.integers(0, 3)):  # mostly working hours at home, where calls can be placed
        home = ZoneInfo(engine.policy.header.timezone)
        now = now.astimezone(home).replace(hour=draw(st.integers(10, 16)))
    record = draw(records(engine.policy, now))
    if draw(st.integers(0, 3)):
        record.pop("timezone", None)
        record.pop("timezones", None)
    record["actor_type"] = draw(
        st.sampled_from(["third_party_collector"] * 6 + ["first_party_creditor", None])
    )
    declared = [f for f in PACK_FLAGS if f in engine.policy.flags]  # flags are a closed vocabulary
    extra = draw(st.lists(st.sampled_from(declared), max_size=2)) if declared else []
    record["flags"] = sorted({*record["flags"], *extra})
    if draw(st.integers(0, 5)) == 0:
        start = now.date() - dt.timedelta(days=draw(st.integers(1, 60)))  # a day back: any zone
        end = draw(st.one_of(st.none(), st.integers(0, 90).map(lambda n: start + dt.timedelta(days=n))))
        record["breathing_space"] = {"type": "standard", "start": start.isoformat(),
                                     "end": end.isoformat() if end else None}  # fmt: skip
    if draw(st.integers(0, 3)):  # mostly the call stage of the ladder, with its first step done
        record["days_overdue"] = draw(st.integers(10, 29))
        first = engine.policy.tiers[0].model
        back = dt.timedelta(days=record["days_overdue"] // 2)
        record["history"].append({"at": (now - back).isoformat(), "action": first.id,
                                  "channel": first.channel_order[0].value, "outcome": "delivered",
                                  "direction": "outbound", "address": None})  # fmt: skip
    # A burst of recent calls, so that daily and weekly counts sit near their limits.
    phone_tiers = [t.model.id for t in engine.policy.tiers if "phone" in t.model.channel_order]
    span = draw(st.integers(1, 8)) * 24 * 60
    for _ in range(draw(st.sampled_from([0, 2, 5, 6, 7, 8, 12]))):
        at = now - dt.timedelta(minutes=draw(st.integers(0, span)))
        event = {
            "at": at.isoformat(),
            "action": draw(st.sampled_from([*phone_tiers, None])),
            "channel": "phone",
            "outcome": draw(st.sampled_from(CALL_OUTCOMES)),
            "direction": draw(st.sampled_from(["outbound"] * 6 + ["inbound"])),
            "address": draw(st.sampled_from(["+1-555-0100", "+1-555-0101"])),
        }
        if draw(st.integers(0, 10)) == 0:
            event["consent_until"] = (at + dt.timedelta(days=draw(st.integers(0, 10)))).isoformat()
        if draw(st.integers(0, 15)) == 0:
            event["misdirected"] = True
        record["history"].append(event)
    if draw(st.booleans()):  # one conversation in the last 8 days
        at = now - dt.timedelta(minutes=draw(st.integers(0, 8 * 24 * 60)))
        direction = draw(st.sampled_from(["inbound", "outbound"]))
        record["history"].append({"at": at.isoformat(), "action": None, "channel": "phone", "address": None,
                                  "outcome": "conversation", "direction": direction})  # fmt: skip
    if draw(st.integers(0, 5)) == 0:
        record["cease_communication_received_at"] = (
            now - dt.timedelta(days=draw(st.integers(0, 30)))
        ).isoformat()
    return record, now


def _decide(engine: Engine, case: tuple[dict[str, Any], dt.datetime]) -> Decision:
    record, now = case
    return engine.decide(record, now=now, trace=False)


def _zones(engine: Engine, record: dict[str, Any]) -> list[ZoneInfo]:
    names = record.get("timezones") or [record.get("timezone") or engine.policy.header.timezone]
    return [ZoneInfo(name) for name in names]


def _home(engine: Engine, record: dict[str, Any]) -> ZoneInfo:
    return ZoneInfo(record.get("timezone") or engine.policy.header.timezone)


def _at(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(event["at"])


def _tags(engine: Engine, action: str | None) -> tuple[str, ...]:
    return next((t.model.tags for t in engine.policy.tiers if t.model.id == action), ())


def _consent_windows(record: dict[str, Any]) -> list[tuple[dt.datetime, dt.datetime]]:
    """(given, ends): ends at `consent_until` or at the first conversation after it was given."""
    talks = sorted(_at(e) for e in record["history"] if e["outcome"] == "conversation")
    windows = []
    for event in record["history"]:
        if event.get("consent_until"):
            start, end = _at(event), dt.datetime.fromisoformat(event["consent_until"])
            end = min([end, *(t for t in talks if t > start)])
            windows.append((start, end))
    return windows


def _in_window(
    moment: dt.datetime, windows: list[tuple[dt.datetime, dt.datetime]], tz: ZoneInfo, days: int
) -> bool:
    """Inside a consent window, at most ``days`` calendar days from the consent's date (day 1)."""
    for start, end in windows:
        last = dt.datetime.combine(start.astimezone(tz).date() + dt.timedelta(days=days), dt.time(), tz)
        if start < moment <= end and moment < last:
            return True
    return False


def _clock_ok(now: dt.datetime, zones: list[ZoneInfo], opens: int, closes: int) -> bool:
    return all(opens * 60 <= (t := now.astimezone(z)).hour * 60 + t.minute < closes * 60 for z in zones)


CONTACT = {"phone", "sms", "email", "visit"}


@given(situations(US))
@SETTINGS
def test_us_reg_f_never_broken(case: tuple[dict[str, Any], dt.datetime]) -> None:
    """US: hours in every zone, 7-in-7 and its exclusions, 7 days after a talk, cease, opt-outs, stay."""
    decision = _decide(US, case)
    if decision.status != "act":
        return
    record, now = case
    tags = _tags(US, decision.action)
    assert "bankruptcy" not in record["flags"]
    assert decision.channel not in record.get("opt_out", [])
    if record["actor_type"] == "first_party_creditor":
        return  # Regulation F binds debt collectors only
    assert "dispute" not in record["flags"]
    cease = "cease_communication" in record["flags"] or "cease_communication_received_at" in record
    if cease and decision.channel != "legal" and decision.channel != "bureau":
        assert "remedy_notice" in tags
    if decision.channel in CONTACT:
        assert _clock_ok(now, _zones(US, record), 8, 21)
    if decision.channel != "phone":
        return
    windows = _consent_windows(record)
    if _in_window(now, windows, _home(US, record), 7):
        return  # a call the consumer asked for is outside both presumptions
    for tz in _zones(US, record):
        today = now.astimezone(tz).date()
        week = [today - dt.timedelta(days=n) for n in range(7)]
        calls = [
            e for e in record["history"]
            if e["channel"] == "phone" and e["direction"] == "outbound" and _at(e) <= now
            and _at(e).astimezone(tz).date() in week
            and e["outcome"] not in ("busy", "not_in_service") and not e.get("misdirected")
            and not _in_window(_at(e), windows, _home(US, record), 7)
        ]  # fmt: skip
        assert len(calls) < 7, f"{len(calls)} counted calls in the 7 days to {today} ({tz})"
        talks = [
            e for e in record["history"]
            if e["channel"] == "phone" and e["outcome"] in CONVERSED and _at(e).astimezone(tz).date() in week
        ]  # fmt: skip
        assert not talks, f"a conversation on {talks[0]['at']} is within 7 days"


@given(situations(UK))
@SETTINGS
def test_uk_conc_never_broken(case: tuple[dict[str, Any], dt.datetime]) -> None:
    """UK: breathing space, dispute, capacity, statute-barred refusal, firm hours, opt-outs."""
    decision = _decide(UK, case)
    if decision.status != "act":
        return
    record, now = case
    tags = _tags(UK, decision.action)
    assert decision.channel not in record.get("opt_out", [])
    today = now.astimezone(_home(UK, record)).date()
    space = record.get("breathing_space")
    in_space = "breathing_space" in record["flags"] or (
        space is not None and dt.date.fromisoformat(space["start"]) <= today
        and (space["end"] is None or today <= dt.date.fromisoformat(space["end"]))
    )  # fmt: skip
    if in_space:
        assert {"required_notice", "debtor_requested"} & set(tags)
    for flag in ("dispute", "mental_capacity_concern", "statute_barred_refusal"):
        if flag in record["flags"]:
            assert "required_notice" in tags
    if "fos_complaint_open" in record["flags"]:
        assert not {"legal_action", "termination"} & set(tags)
    if decision.channel in ("phone", "sms", "visit") and not _in_window(
        now, _consent_windows(record), ZoneInfo("UTC"), 10_000
    ):
        for tz in _zones(UK, record):
            local = now.astimezone(tz)
            assert local.weekday() < 6 and local.date() not in holidays.country_holidays("GB", subdiv="ENG")
        assert _clock_ok(now, _zones(UK, record), 8, 21)


@given(situations(IE))
@SETTINGS
def test_ie_never_broken(case: tuple[dict[str, Any], dt.datetime]) -> None:
    """Ireland: calls and visits 09:00-21:00, never Sundays or public holidays; 3 a calendar month."""
    decision = _decide(IE, case)
    if decision.status != "act":
        return
    record, now = case
    assert decision.channel not in record.get("opt_out", [])
    tz = _home(IE, record)
    if decision.channel in ("phone", "visit") and "contact_time_agreed" not in record["flags"]:
        for zone in _zones(IE, record):
            local = now.astimezone(zone)
            assert local.weekday() != 6 and local.date() not in holidays.country_holidays("IE")
        assert _clock_ok(now, _zones(IE, record), 9, 21)
    if "required_notice" in _tags(IE, decision.action) or decision.channel in ("legal", "bureau"):
        return
    windows = _consent_windows(record)
    if _in_window(now, windows, tz, 10_000):
        return
    month = now.astimezone(tz).date().replace(day=1)
    sent = [
        e for e in record["history"]
        if e["direction"] == "outbound" and e["channel"] in CONTACT | {"letter"}
        and e["outcome"] in ("sent", "delivered", "voicemail", *CONVERSED)
        and month <= _at(e).astimezone(tz).date() and _at(e) <= now
        and not _in_window(_at(e), windows, tz, 10_000)
    ]  # fmt: skip
    assert len(sent) < 3


@given(situations(CN))
@SETTINGS
def test_cn_never_broken(case: tuple[dict[str, Any], dt.datetime]) -> None:
    """CN: quiet hours, 3 connected calls a day, 6 unanswered per number a day, third parties, plans."""
    decision = _decide(CN, case)
    if decision.status != "act":
        return
    record, now = case
    assert decision.channel not in record.get("opt_out", [])
    plan = record.get("payment_plan")
    tags = _tags(CN, decision.action)
    # under an active plan the only contact is the instalment reminder (2011 art. 70 guidance)
    assert not (plan and plan["status"] == "active") or "plan_reminder" in tags
    if decision.channel in CONTACT and "contact_time_agreed" not in record["flags"]:
        assert _clock_ok(now, _zones(CN, record), 8, 22)
    tz = _home(CN, record)
    today = now.astimezone(tz).date()
    if decision.channel == "phone":
        calls = [e for e in record["history"] if e["channel"] == "phone" and e["direction"] == "outbound"
                 and _at(e).astimezone(tz).date() == today]  # fmt: skip
        assert sum(e["outcome"] in CONVERSED for e in calls) < 3
        unanswered = [e for e in calls if e["outcome"] in UNANSWERED]
        per_address: dict[str | None, int] = {}
        for e in unanswered:
            per_address[e["address"]] = per_address.get(e["address"], 0) + 1
        assert not per_address or min(per_address.values()) < 6
    if "third_party" in tags:
        attempts = sorted(
            (e for e in record["history"] if e["channel"] == "phone" and e["direction"] == "outbound"
             and not e.get("misdirected") and "third_party" not in _tags(CN, e["action"])
             and _at(e).astimezone(tz).date() >= today - dt.timedelta(days=record["days_overdue"])),
            key=_at,
        )  # fmt: skip
        failed = {"no_answer", "busy", "failed", "not_in_service", "voicemail", "wrong_party"}
        last_three = [e["outcome"] for e in attempts[-3:]]
        assert (len(last_three) == 3 and set(last_three) <= failed) or (
            attempts and attempts[-1]["outcome"] == "not_in_service"
        )
        assert "third_party_refused" not in record["flags"]
    if decision.channel == "visit" and {"demand", "legal_threat"} & set(tags):
        assert "visit_agreed" in record["flags"]
