"""What a fresh decision prepares before its evaluation equals its definition:
the canonical record text (every field of the record, written directly or by
pydantic) is ``reference_canonical``'s, the evaluation instant in an account's
zone and the start of a local day are what ``astimezone``, ``timestamp()`` and
``start_of_day`` give (first call and kept), and a history's order is what
sorting its timestamps says."""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from escalation import parse_account
from escalation._calendar import start_of_day
from escalation._canonical import canonical, reference_canonical
from escalation._facts_static import day_start, event_stamps, in_order, local_now
from escalation.engine import check_now
from escalation.errors import RecordError, UsageError
from escalation.record import Account, ActorType, Channel, in_range

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
ZONES = [
    "UTC", "Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "America/New_York",
    "Europe/Dublin", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Kiritimati",
]  # fmt: skip
# text JSON writers escape differently if at all, and text that looks like the writer's own keys
AWKWARD = [
    '"', "\\", "\x00", "\x1f", "\x7f", "\x85", "\u2028", "\ufeff", "\n", "\t", "é", "中文", "\U0001f600",
    '"history":[', ',"id":"', "null", "}", "{", "</script>",
]  # fmt: skip
TEXT = st.lists(st.sampled_from([*AWKWARD, "a", "Z", "0", " "]), min_size=1, max_size=5).map(
    lambda parts: "x" + "".join(parts) + "y"
)
CURRENCIES = {"CNY": 2, "JPY": 0, "KWD": 3}
BASE = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@st.composite
def instants(draw: st.DrawFn) -> str | dt.datetime:
    """An instant before BASE, as text with a fixed offset or as a datetime in a zone."""
    at = BASE - dt.timedelta(
        seconds=draw(st.integers(0, 3 * 365 * 86_400)), microseconds=draw(st.sampled_from([0, 1, 999_999]))
    )
    at = at.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))
    return at.isoformat() if draw(st.booleans()) else at


def days(low: int = 0, high: int = 2_000) -> st.SearchStrategy[dt.date]:
    """A date up to ``high`` days before BASE."""
    return st.integers(low, high).map(lambda n: BASE.date() - dt.timedelta(days=n))


@st.composite
def full_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record with any of its optional fields (often all of them), non-ASCII
    text, several zones and offsets, amounts in currencies of 0, 2 and 3 places."""
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    quantum = Decimal(1).scaleb(-CURRENCIES[currency])
    money = st.integers(0, 10**9).map(lambda units: str(Decimal(units) * quantum))
    overdue, balance = sorted([Decimal(draw(money)), Decimal(draw(money))])
    history = [
        {"at": draw(instants()), "action": draw(TEXT), "channel": "sms", "outcome": "delivered"}
        for _ in range(draw(st.integers(0, 3)))
    ]
    record: dict[str, Any] = {
        "id": draw(TEXT),
        "currency": currency,
        "amount_overdue": str(overdue),
        "balance": str(balance),
        "history": history,
    }
    served = draw(days(100, 900))
    opt_out = draw(st.lists(st.sampled_from([c.value for c in Channel]), max_size=4, unique=True))
    optional: dict[str, Any] = {
        "days_overdue": st.integers(0, 36_500),
        "overdue_since": days(),
        "due_date": days(),
        "timezone": st.sampled_from(ZONES),
        "timezones": st.lists(st.sampled_from(ZONES), max_size=4, unique=True),
        "jurisdiction": TEXT,
        "product": TEXT,
        "segment": TEXT,
        "flags": st.lists(st.sampled_from(["dispute", "hardship", "zz_custom", "é_flag"]), max_size=4),
        "opt_out": st.just(opt_out),
        "opt_out_at": st.dictionaries(st.sampled_from(opt_out or ["sms"]), instants(), max_size=len(opt_out)),
        "promise_to_pay": st.fixed_dictionaries({"amount": money, "due_date": days(), "made_at": instants()}),
        "payment_plan": st.fixed_dictionaries(
            {"status": st.sampled_from(["active", "broken", "completed"])},
            optional={"next_due_date": days(), "offer": TEXT},
        ),
        "last_payment_at": days(),
        "charged_off_at": days(),
        "actor_type": st.sampled_from([a.value for a in ActorType]),
        "principal": st.one_of(
            money, st.sampled_from(["1E+3", "0.10", "7.0", "0E-8", "12345678901234567.891"])
        ),
        "validation_notice_sent_at": instants(),
        "dispute_received_at": instants(),
        "verification_sent_at": instants(),
        "cease_communication_received_at": instants(),
        "negative_info_notice_sent_at": instants(),
        "forbearance_assessed_at": instants(),
        "default_notice_served_at": st.just(served),
        "default_notice_remedy_date": st.just(served + dt.timedelta(days=14)),
        "letter_of_claim_at": days(),
        "letter_of_claim_reply": st.fixed_dictionaries(
            {"received_at": days(), "kinds": st.just(["reply_form", "seeking_advice"])}
        ),
        "inconvenient_times": st.lists(
            st.fixed_dictionaries(
                {"from": st.just("09:00"), "to": st.just("17:30")}, optional={"days": st.just(["mon"])}
            ),
            max_size=2,
        ),
        "inconvenient_places": st.lists(
            st.fixed_dictionaries(
                {"place": st.sampled_from(["home", "work"]), "channels": st.just(["phone"])}
            ),
            max_size=2,
        ),
        "breathing_space": st.fixed_dictionaries({"type": st.just("standard"), "start": days(10, 60)}),
        "attributes": st.dictionaries(
            TEXT.filter(lambda t: len(t) <= 64),
            st.one_of(TEXT, st.booleans(), st.integers(-(10**30), 10**30), st.just(Decimal("1E+3"))),
            max_size=3,
        ),
    }
    everything = draw(st.booleans())
    for name, strategy in optional.items():
        if everything or draw(st.booleans()):
            value = draw(strategy)
            record[name] = value.isoformat() if isinstance(value, dt.date) else value
    if "days_overdue" not in record and "overdue_since" not in record and "due_date" not in record:
        record["days_overdue"] = 3
    if "default_notice_served_at" not in record:
        record.pop("default_notice_remedy_date", None)
    if "opt_out" not in record:
        record.pop("opt_out_at", None)
    return record


def _account(record: dict[str, Any]) -> Account:
    try:
        return parse_account(record)
    except RecordError:
        assume(False)  # e.g. an instant pushed out of the calendar by its zone
        raise


class TestCanonicalRecord:
    @SETTINGS
    @given(record=full_records())
    def test_every_field_is_written_as_the_reference_writes_it(self, record: dict[str, Any]) -> None:
        """Records with any optional field: the reference text, first call and kept."""
        account = _account(record)
        expected = reference_canonical(account)
        assert expected == canonical(account)
        assert expected == canonical(account)

    @SETTINGS
    @given(record=full_records(), data=st.data())
    def test_values_of_another_type_are_written_by_pydantic(
        self, record: dict[str, Any], data: st.DataObject
    ) -> None:
        """A copy whose fields hold other types than validation gives (a set, a
        list, a bool, a datetime for a date) is still the reference text."""
        account = _account(record)
        odd = {
            "flags": set(account.flags),
            "opt_out": frozenset(c.value for c in account.opt_out),
            "timezones": list(account.timezones),
            "days_overdue": data.draw(st.sampled_from([True, False, None, 0])),
            "last_payment_at": dt.datetime(2026, 1, 2, 3, tzinfo=dt.UTC),
            "actor_type": "debt_buyer",
            "product": None,
        }
        names = data.draw(st.lists(st.sampled_from(sorted(odd)), min_size=1, unique=True))
        copied = account.model_copy(update={name: odd[name] for name in names})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydantic warns about the unexpected types it still writes
            assert reference_canonical(copied) == canonical(copied)


class TestLocalNow:
    @SETTINGS
    @given(
        seconds=st.integers(-10 * 365 * 86_400, 10 * 365 * 86_400),
        micro=st.sampled_from([0, 1, 999_999]),
        zone=st.sampled_from(ZONES),
        given_in=st.sampled_from(ZONES),
    )
    def test_the_instant_in_a_zone_is_its_definition(
        self, seconds: int, micro: int, zone: str, given_in: str
    ) -> None:
        """local_now and day_start equal astimezone, timestamp() and start_of_day,
        first call and kept, and an equal instant given as another object too."""
        tz = ZoneInfo(zone)
        now = (BASE + dt.timedelta(seconds=seconds, microseconds=micro)).astimezone(ZoneInfo(given_in))
        local = now.astimezone(tz)
        start = start_of_day(local.date(), tz)
        expected = (local, local.date(), now.timestamp(), start.timestamp())
        assert expected == tuple(local_now(now, tz))
        assert expected == tuple(local_now(now, tz))
        other = now.astimezone(dt.UTC)
        assert expected[1:] == tuple(local_now(other, tz))[1:]
        assert local_now(other, tz).local == local  # the same instant (its fields: the zone's)
        assert (start, start.timestamp()) == day_start(local.date(), tz)
        assert (start, start.timestamp()) == day_start(local.date(), tz)

    def test_a_day_without_midnight_starts_as_start_of_day_says(self) -> None:
        """DST at midnight (Havana, Santiago): the kept start is start_of_day's."""
        for zone, day in (("America/Havana", dt.date(2026, 3, 8)), ("America/Santiago", dt.date(2026, 9, 6))):
            tz = ZoneInfo(zone)
            start = start_of_day(day, tz)
            assert (start, start.timestamp()) == day_start(day, tz)


class TestHistoryOrder:
    @SETTINGS
    @given(offsets=st.lists(st.integers(0, 10**6), max_size=8))
    def test_in_order_is_whether_sorting_changes_the_stamps(self, offsets: list[int]) -> None:
        """in_order: the account's own stamps (kept) and a caller's (not kept)."""
        history = [
            {"at": (BASE - dt.timedelta(seconds=s)).isoformat(), "channel": "sms", "action": "x"}
            for s in offsets
        ]
        account = parse_account(
            {
                "id": "O-1",
                "currency": "CNY",
                "amount_overdue": "1.00",
                "balance": "1.00",
                "days_overdue": 1,
                "history": history,
            }
        )
        stamps = event_stamps(account)
        expected = sorted(stamps) == list(stamps)
        assert expected == in_order(account, stamps)
        assert expected == in_order(account, stamps)
        reordered = tuple(sorted(stamps, reverse=True))
        assert (sorted(reordered) == list(reordered)) == in_order(account, reordered)


class Extended(Account):
    """An application's own record type, with a field of its own."""

    branch: str = "main"


class TestSubclass:
    def test_a_subclass_with_its_own_field_is_written_whole(self) -> None:
        """An Account subclass's extra field is in the text, as the reference writes it."""
        record = {
            "id": "S-1",
            "currency": "CNY",
            "amount_overdue": "1.00",
            "balance": "2.00",
            "days_overdue": 4,
        }
        account = Extended.model_validate(dict(record, branch="north"))
        assert reference_canonical(account) == canonical(account)
        assert '"branch":"north"' in canonical(account)


def _reference_check_now(now: object) -> None:
    """check_now as it was before it kept the last instant it passed."""
    if not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise UsageError("`now` must be a timezone-aware datetime")
    if not in_range(now):
        raise UsageError("`now` is outside the supported range 1900-01-01..2199-12-31")


NOWS = [
    None,
    "2026-01-01T00:00:00+00:00",
    dt.datetime(2026, 1, 1),
    dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1899, 12, 31, 23, tzinfo=dt.UTC),
    dt.datetime(2199, 12, 31, 23, tzinfo=dt.UTC),
    dt.datetime(2200, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")),
    dt.datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/London")),
    dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
]


class TestCheckNow:
    @SETTINGS
    @given(sequence=st.lists(st.sampled_from(range(len(NOWS))), min_size=1, max_size=12))
    def test_it_raises_exactly_when_the_reference_does(self, sequence: list[int]) -> None:
        """Any order of good and bad instants, each object again and again: the reference's verdicts."""
        for index in sequence:
            now = NOWS[index]
            expected: str | None = None
            try:
                _reference_check_now(now)
            except UsageError as exc:
                expected = str(exc)
            try:
                check_now(now)
                got = None
            except UsageError as exc:
                got = str(exc)
            assert expected == got
