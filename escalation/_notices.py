"""Facts read from the record's notices, call attempts and limitation dates
(helpers of :func:`escalation._facts.derive`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from escalation._calendar import add_years, business_days_after
from escalation.record import Account, HistoryEvent, Outcome

if TYPE_CHECKING:
    from escalation._language import EventFilter
    from escalation.policy import Policy

__all__ = ["notice_facts", "reachability", "time_barred", "validation_period_end"]

# Regulation F 1006.34(b)(5): receipt assumed 5 business days after the notice
# is provided (Saturdays, Sundays and federal holidays excluded), then 30 days.
_VALIDATION_RECEIPT_DAYS = 5
_VALIDATION_PERIOD_DAYS = 30


def validation_period_end(account: Account, tz: ZoneInfo) -> dt.date | None:
    """The last day of the Regulation F validation period (the notice's assumed
    receipt + 30 days), or ``None`` when no validation notice is recorded."""
    if account.validation_notice_sent_at is None:
        return None
    sent = account.validation_notice_sent_at.astimezone(tz).date()
    receipt = business_days_after(sent, _VALIDATION_RECEIPT_DAYS, "US")
    return receipt + dt.timedelta(days=_VALIDATION_PERIOD_DAYS)


# A call attempt that did not reach the debtor (CN 失联: three in a row, or an invalid number).
_UNREACHED = frozenset(
    {
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.FAILED,
        Outcome.NOT_IN_SERVICE,
        Outcome.VOICEMAIL,
        Outcome.WRONG_PARTY,
    }
)


def notice_facts(account: Account, today: dt.date) -> dict[str, Any]:
    """Facts from the notices and requests on the record."""
    disputed, verified = account.dispute_received_at, account.verification_sent_at
    values: dict[str, Any] = {
        # a dispute is open until verification is sent after it
        "dispute_open": disputed is not None and (verified is None or verified < disputed),
        # effective on receipt: the record only carries it once received
        "cease_received": account.cease_communication_received_at is not None
        or "cease_communication" in account.flags,
    }
    space = account.breathing_space
    values["breathing_space_active"] = (
        space is not None and space.start <= today and (space.end is None or today <= space.end)
    )
    values["forbearance_assessed"] = account.forbearance_assessed_at is not None
    reply = account.letter_of_claim_reply
    values["letter_of_claim_reply"] = frozenset(reply.kinds) if reply is not None else frozenset()
    plan = account.payment_plan
    if plan is not None and plan.next_due_date is not None:
        values["plan_days_to_due"] = (plan.next_due_date - today).days
    if account.actor_type is not None:
        values["actor_type"] = account.actor_type.value
    if account.principal is not None:
        values["principal"] = account.principal
    return values


def reachability(attempts: list[HistoryEvent]) -> dict[str, Any]:
    """Consecutive unanswered call attempts (newest back to the last that got
    through) and whether every number tried last came back not in service."""
    streak = 0
    for event in reversed(attempts):
        if event.outcome not in _UNREACHED:
            break
        streak += 1
    latest: dict[str | None, Outcome | None] = {}
    for event in attempts:
        latest[event.address] = event.outcome
    invalid = bool(latest) and all(o is Outcome.NOT_IN_SERVICE for o in latest.values())
    return {"consecutive_failed_attempts": streak, "number_invalid": invalid}


def time_barred(
    account: Account,
    today: dt.date,
    policy: Policy,
    events: Iterable[HistoryEvent] = (),
    tz: ZoneInfo | None = None,
) -> bool | None:
    """Whether the limitation period has run; ``None`` (unknown) when the
    policy sets none or the record lacks every start date.

    A history event matching one of the policy's ``limitation.interrupted_by``
    filters (a delivered demand, a part payment, an acknowledgement) restarts
    the period from its local date — if it happened before the period ran out
    (an expired period is not revived by a later demand). ``events`` are in
    time order."""
    limitation = policy.header.limitation
    if limitation is None:
        return None
    starts = [getattr(account, name) for name in limitation.start]
    known = [d for d in starts if d is not None]
    if not known:
        return None
    years = limitation.by_jurisdiction.get(account.jurisdiction or "", limitation.years)
    start = max(known)
    expiry = add_years(start, years)
    if limitation.interrupted_by and tz is not None:
        tags_of = {t.model.id: t.model.tags for t in policy.tiers}
        for event in events:
            day = event.at.astimezone(tz).date()
            if day > start and day < expiry and _interrupts(limitation.interrupted_by, event, tags_of):
                start, expiry = day, add_years(day, years)
    return today >= expiry


def _interrupts(
    filters: tuple[EventFilter, ...], event: HistoryEvent, tags_of: dict[str, tuple[str, ...]]
) -> bool:
    for flt in filters:
        if flt.direction != "any" and event.direction != flt.direction:
            continue
        if flt.channels and event.channel not in flt.channels:
            continue
        if flt.outcomes and event.outcome not in flt.outcomes:
            continue
        if flt.actions and event.action not in flt.actions:
            continue
        if flt.tags and not set(flt.tags) & set(tags_of.get(event.action or "", ())):
            continue
        if event.misdirected:  # a demand that reached someone else interrupts nothing
            continue
        return True
    return False
