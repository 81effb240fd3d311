"""Engine._checked (the record checks on every decide) rejects every record the
function it replaced rejected, with the same issues (field, message, code, in
order), and passes the rest unchanged: the reference (5c53727's ``_checked``
with its ``flag_issues``, ``fill_channels`` and ``check_at``) is kept here
verbatim. Records vary where the checks look: flags (unknown, misspelt,
padded, several in one string), channels left out, instants and dates after
``now`` in every checked field, ``days_overdue`` against ``overdue_since``."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, load_policy
from escalation._bundled import SHIPPED_POLICIES
from escalation._facts import account_zone
from escalation._validate import _FLAG, _normalised, _shown, check_attributes, raw_flags
from escalation.errors import RecordError, RecordIssue
from escalation.record import Account, Channel, Direction, Outcome, local_date, parse_account

from .strategies import cases

ROOT = Path(__file__).resolve().parent.parent
POLICIES = {name: load_policy(ROOT / f"policies/{name}.yaml") for name in SHIPPED_POLICIES}
ENGINES = {name: Engine(policy) for name, policy in POLICIES.items()}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

# ---------------------------------------------------------------- the reference (5c53727), verbatim

_CHANNEL = attrgetter("channel")
_OUTBOUND = Direction.OUTBOUND


def flag_issues(flags: Iterable[tuple[int, str]], vocabulary: frozenset[str]) -> list[RecordIssue]:
    """Every flag that is not exactly a known or declared flag, named by
    position with the nearest known flag (a misspelt blocking flag must never
    be ignored: it would let the engine act)."""
    issues = []
    known = sorted(vocabulary)
    for index, flag in flags:
        if flag in vocabulary:
            continue
        if "," in flag or ";" in flag:
            message = "holds several flags in one string; give each flag as its own item"
        else:
            kind = "is not a known flag"
            if not _FLAG.fullmatch(flag):
                kind += " (flags are lowercase letters, digits and `_`, exactly as declared)"
            message = _shown(flag) + kind
            near = difflib.get_close_matches(_normalised(flag), known, n=1, cutoff=0.6)
            if near:
                message += f"; did you mean `{near[0]}`?"
        issues.append(RecordIssue(f"flags.{index}", message, code="unknown-flag"))
    return issues


def fill_channels(account: Account, single: Mapping[str, Channel]) -> tuple[Account, list[RecordIssue]]:
    """The account with every outbound event's missing ``channel`` taken from
    its tier (when the tier has one channel), and an issue for each outbound
    event whose channel cannot be known: it must never escape a frequency
    limit. A payment without an action is not a contact and needs none."""
    issues: list[RecordIssue] = []
    if None not in map(_CHANNEL, account.history):
        return account, issues  # the usual record: every event names its channel
    filled = list(account.history)
    changed = False
    for index, event in enumerate(account.history):
        if event.channel is not None or event.direction is not _OUTBOUND:
            continue
        if event.action is not None and event.action in single:
            filled[index] = event.model_copy(update={"channel": single[event.action]})
            changed = True
        elif event.action is None and event.outcome is Outcome.PAYMENT:
            continue
        else:
            why = (
                "it names no tier"
                if event.action is None
                else "its action is not a tier with exactly one channel"
            )
            issues.append(
                RecordIssue(
                    f"history.{index}.channel",
                    f"is missing and cannot be known ({why}); give the channel",
                    code="unknown-channel",
                )
            )
    if not changed:
        return account, issues
    return account.model_copy(update={"history": tuple(filled)}), issues


# Record instants and dates that record past facts: none may lie after `now`.
_INSTANT_FIELDS = (
    "validation_notice_sent_at",
    "dispute_received_at",
    "verification_sent_at",
    "cease_communication_received_at",
    "negative_info_notice_sent_at",
    "forbearance_assessed_at",
)
_DATE_FIELDS = (
    "last_payment_at",
    "charged_off_at",
    "default_notice_served_at",
    "letter_of_claim_at",
    "letter_of_claim_reply.received_at",
    "letter_of_claim_reply.documents_provided_at",
)
# each read in one call (a few attribute reads per decision saved)
_instants_of = attrgetter(*_INSTANT_FIELDS)
_dates_of = attrgetter(*(name for name in _DATE_FIELDS if "." not in name))
_REPLY = "letter_of_claim_reply."
_reply_dates_of = attrgetter(*(name[len(_REPLY) :] for name in _DATE_FIELDS if name.startswith(_REPLY)))
_REPLY_NONE = (None,) * sum(name.startswith(_REPLY) for name in _DATE_FIELDS)
# the reply's dates come last, each name a field of the record or of the reply
assert all("." not in n or n.startswith(_REPLY) for n in _DATE_FIELDS)
assert _DATE_FIELDS[-len(_REPLY_NONE) :] == tuple(n for n in _DATE_FIELDS if n.startswith(_REPLY))


def check_at(
    account: Account, now: dt.datetime, tz: ZoneInfo, stamps: Sequence[float] | None = None
) -> list[RecordIssue]:
    """Checks that need the evaluation instant: nothing dated after ``now``, and
    ``days_overdue`` consistent with ``overdue_since`` (counted in ``tz``).
    ``stamps`` are the history's POSIX timestamps when already known."""
    issues: list[RecordIssue] = []
    now_ts = now.timestamp()
    if stamps is None:
        stamps = [event.at.timestamp() for event in account.history]
    if stamps and max(stamps) > now_ts:
        for index, ts in enumerate(stamps):
            if ts > now_ts:
                issues.append(
                    RecordIssue(f"history.{index}.at", f"is after the evaluation instant {now.isoformat()}")
                )
    today = local_date(now, tz)
    if account.overdue_since is not None:
        if account.overdue_since > today:
            issues.append(RecordIssue("overdue_since", f"is after today ({today.isoformat()})"))
        elif account.days_overdue is not None:
            counted = (today - account.overdue_since).days
            if counted != account.days_overdue:
                issues.append(
                    RecordIssue(
                        "days_overdue",
                        f"is {account.days_overdue} but `overdue_since` "
                        f"{account.overdue_since.isoformat()} gives {counted} on {today.isoformat()}",
                    )
                )
    for name, value in zip(_INSTANT_FIELDS, _instants_of(account), strict=True):
        if value is not None and value > now:
            issues.append(RecordIssue(name, f"is after the evaluation instant {now.isoformat()}"))
    if account.breathing_space is not None and account.breathing_space.start > today:
        # the end is legitimately in the future; the start is a notified fact
        issues.append(RecordIssue("breathing_space.start", f"is after today ({today.isoformat()})"))
    if account.promise_to_pay is not None and account.promise_to_pay.made_at > now:
        issues.append(
            RecordIssue("promise_to_pay.made_at", f"is after the evaluation instant {now.isoformat()}")
        )
    for channel, received in sorted(account.opt_out_at.items()):
        if received > now:
            issues.append(
                RecordIssue(
                    f"opt_out_at.{channel.value}", f"is after the evaluation instant {now.isoformat()}"
                )
            )
    reply = account.letter_of_claim_reply
    dates = _dates_of(account) + (_REPLY_NONE if reply is None else _reply_dates_of(reply))
    for name, found in zip(_DATE_FIELDS, dates, strict=True):
        if found is not None and found > today:
            issues.append(RecordIssue(name, f"is after today ({today.isoformat()})"))
    return issues


def reference_checked(engine: Engine, record: Account | dict[str, Any], now: dt.datetime) -> Account:
    """Engine._checked as 5c53727 wrote it (``self`` → ``engine``)."""
    self = engine
    account = parse_account(record)
    issues = flag_issues(raw_flags(record, account), self._flags)
    account, missing = fill_channels(account, self._single)
    issues.extend(missing)
    if account.currency != self._currency:
        issues.append(
            RecordIssue(
                "currency",
                f"is `{account.currency}` but policy `{self._policy.id}` "
                f"works in `{self._policy.header.currency}`",
            )
        )
    if account.attributes:
        issues.extend(check_attributes(account, self._policy.header.attributes, self._policy.id))
    stamps = [e.at.timestamp() for e in account.history]
    issues.extend(check_at(account, now, account_zone(account, self._policy), stamps))
    if issues:
        raise RecordError(issues, account_id=account.id)
    return account


# ---------------------------------------------------------------- the properties

FLAGS = [
    "dispute", " dispute ", "Dispute", "hardship,dispute", "disput", "zz_custom", "ｄｉｓｐｕｔｅ",
    "dis\u200bpute", "legal hold", "a" * 70, "vulnerable", "fraud;x",
]  # fmt: skip
INSTANT_FIELDS = [
    "validation_notice_sent_at", "dispute_received_at", "verification_sent_at",
    "cease_communication_received_at", "negative_info_notice_sent_at", "forbearance_assessed_at",
]  # fmt: skip
DATE_FIELDS = ["last_payment_at", "charged_off_at", "default_notice_served_at", "letter_of_claim_at"]


@st.composite
def checked_cases(draw: st.DrawFn) -> tuple[str, dict[str, Any], dt.datetime]:
    """A shipped policy's case with something for every check to find, or not."""
    name = draw(st.sampled_from(SHIPPED_POLICIES))
    record, now = draw(cases(POLICIES[name]))
    if draw(st.integers(0, 2)) == 0:
        return name, record, now  # as generated: most pass
    near = st.integers(-2, 2)  # around `now` (seconds) or today (days): either side of the line
    if draw(st.booleans()):
        record["flags"] = draw(st.lists(st.sampled_from(FLAGS), max_size=3))
    for event in record["history"]:
        if draw(st.integers(0, 5)) == 0:
            event.pop("channel")  # taken from the tier, or named as unknowable
        if draw(st.integers(0, 20)) == 0:
            event["at"] = (now + dt.timedelta(seconds=draw(near))).isoformat()
    today = now.date()
    for field in INSTANT_FIELDS:
        if draw(st.integers(0, 6)) == 0:
            record[field] = (now + dt.timedelta(seconds=draw(near))).isoformat()
    for field in DATE_FIELDS:
        if draw(st.integers(0, 6)) == 0:
            record[field] = (today + dt.timedelta(days=draw(near))).isoformat()
    if draw(st.integers(0, 6)) == 0:
        reply = {"received_at": (today + dt.timedelta(days=draw(near))).isoformat(), "kinds": ["reply_form"]}
        if draw(st.booleans()):
            reply["documents_provided_at"] = (today + dt.timedelta(days=draw(near))).isoformat()
        record["letter_of_claim_reply"] = reply
    if draw(st.integers(0, 6)) == 0:
        record["opt_out"] = ["sms", "email"]
        record["opt_out_at"] = {
            c: (now + dt.timedelta(seconds=draw(near))).isoformat() for c in ("sms", "email")
        }
    if draw(st.integers(0, 6)) == 0:
        record["breathing_space"] = {
            "type": "standard",
            "start": (today + dt.timedelta(days=draw(near))).isoformat(),
        }
    if draw(st.integers(0, 6)) == 0:
        record["promise_to_pay"] = {
            "amount": record["amount_overdue"],
            "due_date": today.isoformat(),
            "made_at": (now + dt.timedelta(seconds=draw(near))).isoformat(),
        }
    if draw(st.integers(0, 6)) == 0:
        record["overdue_since"] = (today - dt.timedelta(days=record["days_overdue"] + draw(near))).isoformat()
    if draw(st.integers(0, 8)) == 0:
        record["currency"] = draw(st.sampled_from(["USD", "EUR", "GBP", "CNY"]))
    if draw(st.integers(0, 8)) == 0:
        record["attributes"] = {
            draw(st.sampled_from(["score", "scor", "risk"])): draw(st.sampled_from([1, "a", True]))
        }
    return name, record, now


def _new(engine: Engine, record: Account | dict[str, Any], now: dt.datetime) -> Account:
    return engine._checked(record, now)[0]


def _result(check: Any, *args: Any) -> tuple[Any, ...]:
    try:
        account = check(*args)
    except RecordError as exc:
        return ("refused", [(i.field, i.message, i.code) for i in exc.issues], exc.account_id)
    return ("passed", account.model_dump(mode="json"))


class TestChecked:
    @SETTINGS
    @given(case=checked_cases(), as_account=st.booleans())
    def test_the_same_records_pass_and_fail_with_the_same_issues(
        self, case: tuple[str, dict[str, Any], dt.datetime], as_account: bool
    ) -> None:
        """_checked accepts what the reference accepts (the same account) and
        refuses what it refuses (the same issues, in order, the same id)."""
        name, record, now = case
        engine = ENGINES[name]
        if as_account:
            try:
                given_record: Account | dict[str, Any] = parse_account(record)
            except RecordError:
                given_record = record
        else:
            given_record = record
        expected = _result(reference_checked, engine, given_record, now)
        assert expected == _result(_new, engine, given_record, now)
        assert expected == _result(_new, engine, given_record, now)  # the memo's turn

    @pytest.mark.parametrize("flags", [[], ["dispute"], [" dispute "], ["Dispute", "dispute"], ["x,y"]])
    def test_flags_given_or_not(self, flags: list[str]) -> None:
        """A record with no flags has none to check; any given flag is checked as before."""
        engine = ENGINES["consumer-credit-cn"]
        now = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
        record = {"id": "F-1", "currency": "CNY", "amount_overdue": "1.00", "balance": "2.00"}
        record.update(days_overdue=3, flags=flags)
        for given_record in (record, parse_account(record)):
            expected = _result(reference_checked, engine, given_record, now)
            assert expected == _result(_new, engine, given_record, now)
