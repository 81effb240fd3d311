"""Record checks that need the policy: the flag vocabulary and the channel of
history events that omit it. Called from :meth:`Engine.validate`, the one
validation path, so every guard and fact sees the same, complete record."""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from escalation._account_memo import memo_of
from escalation._facts_static import local_now
from escalation.errors import RecordIssue
from escalation.record import Account, Channel, Direction, Outcome

__all__ = ["check_at", "check_attributes", "fill_channels", "flag_issues", "raw_flags", "single_channels"]

_FLAG = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SHOWN = re.compile(r"[A-Za-z0-9_ .,;:-]{1,32}")
# Characters that make two flags look alike: zero-width, joiners, bidi marks, BOM.
_INVISIBLE = dict.fromkeys(
    [
        0,
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        0x2060,
        0xFEFF,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ],
)


def raw_flags(record: Account | dict[str, Any], account: Account) -> list[tuple[int, str]]:
    """The record's flags as given, with their positions (``flags.N``): from
    the input list when there is one (before any normalisation), else sorted."""
    if isinstance(record, dict):
        given = record.get("flags")
        if isinstance(given, list | tuple) and all(isinstance(f, str) for f in given):
            return list(enumerate(given))
    return list(enumerate(sorted(account.flags)))


def _normalised(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).translate(_INVISIBLE)
    return re.sub(r"[\s\-]+", "_", text.strip()).casefold()


def _shown(value: str) -> str:
    return f"`{value}` " if _SHOWN.fullmatch(value) else ""


def flag_issues(flags: Iterable[tuple[int, str]], vocabulary: frozenset[str]) -> list[RecordIssue]:
    """Every flag that is not exactly a known or declared flag, named by
    position with the nearest known flag (a misspelt blocking flag must never
    be ignored: it would let the engine act)."""
    issues = []
    known: list[str] | None = None  # sorted only for a flag that needs a hint
    for index, flag in flags:
        if flag in vocabulary:
            continue
        if known is None:
            known = sorted(vocabulary)
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


def single_channels(tiers: Iterable[tuple[str, tuple[Channel, ...]]]) -> dict[str, Channel]:
    """Tier id → its channel, for tiers that have exactly one."""
    return {tier: channels[0] for tier, channels in tiers if len(channels) == 1}


_CHANNEL = attrgetter("channel")
_OUTBOUND = Direction.OUTBOUND  # bound once: attribute access on an Enum class is slow


def fill_channels(account: Account, single: Mapping[str, Channel]) -> tuple[Account, list[RecordIssue]]:
    """The account with every outbound event's missing ``channel`` taken from
    its tier (when the tier has one channel), and an issue for each outbound
    event whose channel cannot be known: it must never escape a frequency
    limit. A payment without an action is not a contact and needs none."""
    issues: list[RecordIssue] = []
    memo = memo_of(account)
    if memo.channels is None:
        memo.channels = None not in map(_CHANNEL, memo.history)
    if memo.channels:
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
_NO_INSTANTS, _NO_DATES = (None,) * len(_INSTANT_FIELDS), (None,) * len(_DATE_FIELDS)
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
    clock = local_now(now, tz)  # the same instant and zone as the facts': computed once
    now_ts = clock.now_ts
    if stamps is None:
        stamps = [event.at.timestamp() for event in account.history]
    if stamps and max(stamps) > now_ts:
        for index, ts in enumerate(stamps):
            if ts > now_ts:
                issues.append(
                    RecordIssue(f"history.{index}.at", f"is after the evaluation instant {now.isoformat()}")
                )
    today = clock.today
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
    instants = _instants_of(account)
    if instants != _NO_INSTANTS:  # most records carry none of them
        for name, value in zip(_INSTANT_FIELDS, instants, strict=True):
            if value is not None and value > now:
                issues.append(RecordIssue(name, f"is after the evaluation instant {now.isoformat()}"))
    if account.breathing_space is not None and account.breathing_space.start > today:
        # the end is legitimately in the future; the start is a notified fact
        issues.append(RecordIssue("breathing_space.start", f"is after today ({today.isoformat()})"))
    if account.promise_to_pay is not None and account.promise_to_pay.made_at > now:
        issues.append(
            RecordIssue("promise_to_pay.made_at", f"is after the evaluation instant {now.isoformat()}")
        )
    if account.opt_out_at:
        for channel, received in sorted(account.opt_out_at.items()):
            if received > now:
                issues.append(
                    RecordIssue(
                        f"opt_out_at.{channel.value}", f"is after the evaluation instant {now.isoformat()}"
                    )
                )
    reply = account.letter_of_claim_reply
    dates = _dates_of(account) + (_REPLY_NONE if reply is None else _reply_dates_of(reply))
    if dates != _NO_DATES:
        for name, found in zip(_DATE_FIELDS, dates, strict=True):
            if found is not None and found > today:
                issues.append(RecordIssue(name, f"is after today ({today.isoformat()})"))
    return issues


def check_attributes(account: Account, declared: Mapping[str, object], policy_id: str) -> list[RecordIssue]:
    """Every attribute of the record is declared by the policy (``policy.attributes``)
    with the value's type: ``number``, ``string``, ``boolean`` or ``{enum: [...]}``."""
    issues: list[RecordIssue] = []
    for name, value in sorted(account.attributes.items()):
        where = f"attributes.{name}"
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            issues.append(RecordIssue(where, f"is not declared by policy `{policy_id}`{hint}"))
            continue
        kind = declared[name]
        enum: tuple[str, ...] | None = getattr(kind, "enum", None)
        if enum is not None:
            if not isinstance(value, str) or value not in enum:
                choices = ", ".join(f"`{v}`" for v in enum)
                issues.append(RecordIssue(where, f"must be one of {choices}"))
            continue
        ok = {
            "number": isinstance(value, int | Decimal) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
        }.get(str(kind), False)
        if not ok:
            issues.append(RecordIssue(where, f"must be a {kind}"))
    return issues
