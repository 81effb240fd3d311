"""Decision ids and history timestamps, kept once per account
(escalation/_account_memo.py), equal their definitions on every call: the
canonical text is ``reference_canonical``'s (first call and memo hit), the id
is the hash of it written the way 5c53727 wrote it, and the timestamps are
each event's ``timestamp()``. The memo never outlives its account, never
serves another history, and follows the dicts a caller can change in place."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, load_policy, parse_account
from escalation import _account_memo as memo
from escalation._canonical import canonical, reference_canonical
from escalation._facts_static import event_stamps
from escalation.decision import decision_id
from escalation.errors import RecordError
from escalation.record import Account

ROOT = Path(__file__).resolve().parent.parent
CN = load_policy(ROOT / "policies/consumer-credit-cn.yaml")
ENGINE = Engine(CN)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
ZONES = [
    "UTC", "Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "America/New_York",
    "Europe/Dublin", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Kiritimati",
    "America/Sao_Paulo", "Africa/Monrovia",
]  # fmt: skip
AWKWARD = [
    '"', "\\", "\x00", "\x1f", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\n", "\t", "é", "中文",
    "\U0001f600", '"action":null,', ',"misdirected":false', "null", "}", "{", '\\"', "</script>",
]  # fmt: skip
TEXT = st.lists(st.sampled_from([*AWKWARD, "a", "Z", "0", " "]), min_size=1, max_size=6).map(
    lambda parts: "x" + "".join(parts) + "y"
)
SHORT = TEXT.filter(lambda text: len(text) <= 64)  # the record's limit on most text fields


def reference_id(fingerprint: str, account: Account, now: dt.datetime) -> str:
    """decision_id as 5c53727 wrote it, over the reference canonical text."""
    instant = now.astimezone(dt.UTC).isoformat()
    text = f"{fingerprint}\n{instant}\n{reference_canonical(account)}"
    return "dec_" + hashlib.sha256(text.encode()).hexdigest()[:32]


@st.composite
def instants(draw: st.DrawFn) -> dt.datetime | str:
    """Instants at the calendar's edges and anywhere between, in zones with
    odd offsets (LMT seconds in 1900, half and quarter hours, DST folds)."""
    base = draw(
        st.sampled_from(
            [
                dt.datetime(1900, 1, 3, tzinfo=dt.UTC),  # ±1 day, any zone: still in the calendar
                dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC),
                dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC),
                dt.datetime(2199, 12, 29, 9, tzinfo=dt.UTC),
            ]
        )
    )
    at = base + dt.timedelta(
        seconds=draw(st.integers(-86_400, 86_400)),
        microseconds=draw(st.sampled_from([0, 1, 120_000, 999_999])),
    )
    at = at.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))
    form = draw(st.integers(0, 2))
    if form == 0:
        return at  # a Python datetime with its zone
    offset = at.utcoffset() or dt.timedelta(0)
    if form == 1 and offset.seconds % 60 == 0:  # pydantic reads no offset in seconds (LMT) from text
        return at.isoformat()  # text: a fixed offset
    return at.astimezone(dt.timezone(offset))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A history event: usually a tier action, else any optional field set."""
    event: dict[str, Any] = {"at": draw(instants())}
    if draw(st.integers(0, 2)) == 0:
        event.update(action="sms_reminder", channel="sms", outcome="delivered", address="+86 100")
        if draw(st.booleans()):
            event["address"] = draw(TEXT)
        return event
    for name in ("action", "address", "actor", "offer"):
        if draw(st.booleans()):
            event[name] = draw(SHORT)
    if draw(st.booleans()):
        event["outcome"] = draw(st.sampled_from(["sent", "payment", "conversation", "no_answer"]))
        event["channel"] = draw(st.sampled_from(["sms", "phone", "letter", "agency"]))
    if draw(st.booleans()):
        event["direction"] = draw(st.sampled_from(["inbound", "outbound"]))
    if draw(st.booleans()):
        event["misdirected"] = draw(st.booleans())
    if draw(st.booleans()):
        event["amount"] = draw(st.sampled_from(["0", "0.00", "12.50", "1E+3", "100", "0.1"]))
    if draw(st.integers(0, 5)) == 0:
        event["consent_until"] = draw(instants())
    return event


@st.composite
def accounts(draw: st.DrawFn) -> Account:
    """Valid accounts with awkward text and instants, empty to long histories."""
    history = draw(st.lists(events(), max_size=8))
    if history and draw(st.integers(0, 4)) == 0:
        history = history * draw(st.integers(5, 40))  # long: up to a few hundred events
    record: dict[str, Any] = {
        "id": draw(TEXT),
        "currency": "CNY",
        "amount_overdue": "10.00",
        "balance": str(draw(st.sampled_from([Decimal("10.00"), Decimal("123456789.99")]))),
        "days_overdue": draw(st.integers(0, 36_500)),
        "history": history,
    }
    optional = {
        "timezone": st.sampled_from(ZONES[1:]),
        "timezones": st.lists(st.sampled_from(ZONES[1:]), max_size=4, unique=True),
        "flags": st.lists(st.sampled_from(["dispute", "hardship", "zz_custom"]), max_size=3),
        "opt_out": st.lists(st.sampled_from(["sms", "phone", "email"]), max_size=3, unique=True),
        "segment": SHORT,
        "attributes": st.dictionaries(SHORT, st.one_of(TEXT, st.booleans(), st.integers(-5, 5)), max_size=3),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            record[name] = draw(strategy)
    try:
        return parse_account(record)
    except RecordError:  # e.g. an instant pushed out of the calendar by its zone
        return parse_account(dict(record, history=history[:0]))


NOW = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


class TestCanonical:
    @SETTINGS
    @given(account=accounts())
    def test_the_text_and_id_are_the_definitions_on_every_call(self, account: Account) -> None:
        """First call (memo filled) and second (memo read): the reference text and id."""
        expected = reference_canonical(account)
        assert expected == canonical(account)
        assert expected == canonical(account)
        now = dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        assert reference_id(CN.fingerprint, account, now) == decision_id(CN.fingerprint, account, now)
        assert reference_id("other", account, NOW) == decision_id("other", account, NOW)

    @SETTINGS
    @given(account=accounts())
    def test_timestamps_are_each_events(self, account: Account) -> None:
        """event_stamps is each event's timestamp(), on the first call and from the memo."""
        expected = tuple(event.at.timestamp() for event in account.history)
        assert expected == event_stamps(account)
        assert expected == event_stamps(account)

    @SETTINGS
    @given(account=accounts(), other=accounts())
    def test_a_copy_with_another_history_is_written_afresh(self, account: Account, other: Account) -> None:
        """model_copy(update=history) — what fill_channels does — never reads the original's memo."""
        canonical(account), event_stamps(account)
        copied = account.model_copy(update={"history": other.history})
        assert reference_canonical(copied) == canonical(copied)
        assert tuple(e.at.timestamp() for e in other.history) == event_stamps(copied)

    def test_a_dict_changed_in_place_is_written_as_it_now_is(self) -> None:
        """`attributes` and `opt_out_at` can be changed in place: the text follows them."""
        account = parse_account(_record(3))
        first = canonical(account)
        assert reference_canonical(account) == first
        account.attributes["tier"] = True  # the frozen model's dict is still a dict
        assert reference_canonical(account) == canonical(account) != first
        account.attributes["tier"] = 1  # equal to True, written differently
        assert reference_canonical(account) == canonical(account)
        account.attributes.clear()
        assert first == canonical(account)


class TestMemo:
    def test_an_entry_leaves_with_its_account(self) -> None:
        """The memo holds no account alive and keeps nothing after it is collected."""
        kept = [parse_account(_record(5, ident=f"M-{i}")) for i in range(50)]
        for account in kept:
            canonical(account), event_stamps(account)
        entries = {id(account): memo.memo_of(account) for account in kept}
        assert all(memo._MEMOS[key] is entry for key, entry in entries.items())
        # filled: the record's text (a record without attributes keeps that, not its history's too)
        assert all(entry.record is not None and entry.stamps is not None for entry in entries.values())
        del kept, account
        gc.collect()
        assert [] == [key for key, entry in entries.items() if memo._MEMOS.get(key) is entry]

    def test_equal_accounts_do_not_share_an_entry(self) -> None:
        """Two equal accounts are two entries (keyed by identity, not equality)."""
        one, two = parse_account(_record(2)), parse_account(_record(2))
        assert one == two
        assert memo.memo_of(one) is not memo.memo_of(two)
        assert memo.memo_of(one) is memo.memo_of(one)

    def test_threads_deciding_one_account_agree(self) -> None:
        """Threads deciding the same accounts at once get the reference ids."""
        accounts = [parse_account(_record(30, ident=f"T-{i}")) for i in range(40)]
        now = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
        expected = [reference_id(CN.fingerprint, a, now) for a in accounts]
        results: list[list[str]] = []
        barrier = threading.Barrier(6)

        def work() -> None:
            barrier.wait()
            results.append([ENGINE.decide(a, now=now, trace=False).id for a in accounts])

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [expected] * 6 == results


def _record(events: int, ident: str = "A-1") -> dict[str, Any]:
    start = dt.datetime(2026, 10, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    history = [
        {
            "at": (start + dt.timedelta(hours=13 * k)).isoformat(),
            "action": "sms_reminder",
            "channel": "sms",
            "outcome": "delivered",
            "address": "+86-100",
        }
        for k in range(events)
    ]
    return {
        "id": ident,
        "currency": "CNY",
        "amount_overdue": "100.00",
        "balance": "900.00",
        "days_overdue": 20,
        "timezone": "Asia/Shanghai",
        "history": history,
    }
