"""Facts read from the record's notices, call attempts and limitation dates
(helpers of :func:`escalation._facts.derive`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from escalation._calendar import add_years
from escalation.record import Account, HistoryEvent, Outcome

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["notice_facts", "reachability", "time_barred"]

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


def time_barred(account: Account, today: dt.date, policy: Policy) -> bool | None:
    """Whether the limitation period has run; ``None`` (unknown) when the
    policy sets none or the record lacks every start date."""
    limitation = policy.header.limitation
    if limitation is None:
        return None
    starts = [getattr(account, name) for name in limitation.start]
    known = [d for d in starts if d is not None]
    if not known:
        return None
    years = limitation.by_jurisdiction.get(account.jurisdiction or "", limitation.years)
    return today >= add_years(max(known), years)
