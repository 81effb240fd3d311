"""An account record as it stood at a past instant: the history strictly
before it, and only the record's facts already true then.

A record is exported at one instant (``at``); the contact audit asks about
instants before that. Dated facts are placed in time: a dispute received, a
cease request, a validation notice, a promise made or a Breathing Space begun
*after* the contact did not exist when it was made, and is dropped; one
before it stands (and sets its flag). Undated state — other flags, opt-outs,
the payment plan — says how the account is at export, not since when: it is
taken to have stood for the whole period (the strict reading: a contact the
record's state forbids is reported, and :func:`undated_state` names that
state so the audit can count the accounts that carry it)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from escalation.record import Account, HistoryEvent

__all__ = ["as_of", "undated_state"]

# Instants and dates a record carries for past facts (see record.check_at).
_INSTANTS = (
    "validation_notice_sent_at",
    "dispute_received_at",
    "verification_sent_at",
    "cease_communication_received_at",
    "negative_info_notice_sent_at",
)
_DATES = ("last_payment_at", "charged_off_at", "default_notice_served_at", "letter_of_claim_at")
# Flags a dated field places in time: the flag stands from that date, not before.
_DATED_FLAGS = {
    "dispute": "dispute_received_at",
    "cease_communication": "cease_communication_received_at",
    "breathing_space": "breathing_space",
}


def _flags_at(account: Account, instant: dt.datetime, day: dt.date) -> frozenset[str]:
    """Undated flags as they stand; flags a dated field places, as of ``instant``."""
    flags = {f for f in account.flags if f not in _DATED_FLAGS or _recorded(account, _DATED_FLAGS[f]) is None}
    disputed, verified = account.dispute_received_at, account.verification_sent_at
    if (
        disputed is not None
        and disputed <= instant
        and not (verified is not None and disputed <= verified <= instant)
    ):
        flags.add("dispute")
    cease = account.cease_communication_received_at
    if cease is not None and cease <= instant:
        flags.add("cease_communication")
    space = account.breathing_space
    if space is not None and space.start <= day and (space.end is None or day <= space.end):
        flags.add("breathing_space")
    return frozenset(flags)


def undated_state(account: Account) -> list[str]:
    """The record's state that carries no date (flags not placed by a dated
    field, opt-outs, the payment plan): the audit applies it to every contact."""
    out = [
        f"flags.{flag}"
        for flag in sorted(account.flags)
        if flag not in _DATED_FLAGS or _recorded(account, _DATED_FLAGS[flag]) is None
    ]
    out.extend(f"opt_out.{channel.value}" for channel in sorted(account.opt_out))
    if account.payment_plan is not None:
        out.append("payment_plan")
    return out


def _recorded(account: Account, name: str) -> Any:
    return getattr(account, name)


def as_of(
    account: Account,
    instant: dt.datetime,
    prior: tuple[HistoryEvent, ...],
    tz: ZoneInfo,
    exported: dt.date,
) -> Account:
    """``account`` as it stood at ``instant`` (its history replaced by
    ``prior``, the events strictly before it). ``exported`` is the local date
    the record was exported on: a bare ``days_overdue`` was counted then, so it
    becomes the ``overdue_since`` it implies."""
    day = instant.astimezone(tz).date()
    update: dict[str, Any] = {"history": prior}
    for name in _INSTANTS:
        value = getattr(account, name)
        if value is not None and value > instant:
            update[name] = None
    for name in _DATES:
        value = getattr(account, name)
        if value is not None and value > day:
            update[name] = None
    promise = account.promise_to_pay
    if promise is not None and promise.made_at > instant:
        update["promise_to_pay"] = None
    space = account.breathing_space
    if space is not None and space.start > day:
        update["breathing_space"] = None
    update["flags"] = _flags_at(account, instant, day)
    if account.days_overdue is not None:
        if account.overdue_since is None:
            update["overdue_since"] = exported - dt.timedelta(days=account.days_overdue)
        update["days_overdue"] = None
    return account.model_copy(update=update)
