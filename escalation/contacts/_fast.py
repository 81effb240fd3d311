"""The fast contact audit: a sound screen in front of the reference check.

Most contacts break no rule. For each one, a cheap screen answers, hold by
hold and guard by guard, "certainly does not block" — or "might": then the
contact is re-evaluated by the reference
(:meth:`~escalation.contacts.ContactAuditor.check_event`'s per-contact
``derive``, holds and guards), which alone writes violations. The findings
are therefore the reference's by construction, provided the screen never
says "clean" for a contact the reference would report; each screen below
says why it cannot (and ``tests/test_audit_contacts_fast.py`` compares both
paths on generated portfolios with planted violations of every kind).

The screen reads only what is cheap and exactly known at the contact's
instant: the record's undated state, its dated fields placed in time (as
:func:`~escalation.contacts._asof.as_of` places them), the contact's local
time in every zone, and counts of earlier events by channel. A condition
that reads any other fact (``promise_active`` with a promise on record,
``consent_day`` after a consent was given, ``time_barred``, …) sends the
contact to the reference."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from escalation._calendar import start_of_day
from escalation.contacts._asof import _flags_at
from escalation.contacts._check import ContactAuditor, Violation, _Timeline
from escalation.guards import (
    BlockGuard,
    ConsentGuard,
    ContactHoursGuard,
    CooldownGuard,
    FrequencyGuard,
    InconvenientGuard,
    window_open,
)
from escalation.policy import GuardRule
from escalation.policy._expr import Compiled
from escalation.record import Account, Channel, Direction, PlanStatus, zone

__all__ = ["FastAuditor"]

_DAY = dt.timedelta(days=1)
_OUTBOUND = Direction.OUTBOUND
_ACTIVE = PlanStatus.ACTIVE
# Facts read from the record alone, the same at every instant (as_of keeps them).
_STATIC = ("currency", "balance", "amount_overdue", "segment", "product", "jurisdiction")


class _NeedsReference(Exception):
    """The screen cannot tell cheaply: the reference decides this contact."""


class _Account:
    """One account's contacts as the screen sees them: events in time order,
    zones, the record's undated facts."""

    __slots__ = ("account", "consent_from", "static", "timeline", "zones")

    def __init__(self, account: Account, auditor: ContactAuditor, exported: dt.datetime) -> None:
        policy = auditor.policy
        self.account = account
        self.timeline = _Timeline(account, policy, exported)
        tz = self.timeline.tz
        # as in derive: the account's own zone first, then the extra ones, deduplicated
        self.zones: tuple[ZoneInfo, ...] = tuple(dict.fromkeys((tz, *(zone(n) for n in account.timezones))))
        static: dict[str, Any] = {
            "opt_out": frozenset(c.value for c in account.opt_out),
            "plan_active": account.payment_plan is not None and account.payment_plan.status is _ACTIVE,
            "letter_of_claim_reply": frozenset(account.letter_of_claim_reply.kinds)
            if account.letter_of_claim_reply is not None
            else frozenset(),
        }
        for name in _STATIC:
            value = getattr(account, name)
            if value is not None:
                static[name] = value
        if account.actor_type is not None:
            static["actor_type"] = account.actor_type.value
        if account.principal is not None:
            static["principal"] = account.principal
        for name, value in account.attributes.items():
            static[f"attributes.{name}"] = value
        self.static = static
        # the position (in time order) of the first event that gives consent to be contacted
        self.consent_from = next(
            (k for k, e in enumerate(self.timeline.ordered) if e.consent_until is not None), None
        )


class _Facts:
    """The facts of one contact's instant that the screen knows exactly; any
    other fact raises :class:`_NeedsReference`. Read by the compiled
    conditions through ``get`` (missing facts are ``default``, as in derive)."""

    __slots__ = ("_flags", "acc", "at", "day", "prior")

    def __init__(self, acc: _Account, at: dt.datetime, prior: int) -> None:
        self.acc, self.at, self.prior = acc, at, prior
        self.day = at.astimezone(acc.timeline.tz).date()
        self._flags: frozenset[str] | None = None

    def flags(self) -> frozenset[str]:
        if self._flags is None:
            self._flags = _flags_at(self.acc.account, self.at, self.day)
        return self._flags

    def get(self, name: str, default: Any = None) -> Any:
        static = self.acc.static
        if name in static:
            return static[name]
        getter = _DYNAMIC.get(name)
        if getter is not None:
            return getter(self, default)
        if name in _KNOWN_ABSENT or name.startswith("attributes."):
            return default
        raise _NeedsReference(name)


def _dispute_open(f: _Facts, default: Any) -> Any:
    account, at = f.acc.account, f.at
    disputed = account.dispute_received_at
    if disputed is None or disputed > at:
        return False
    verified = account.verification_sent_at
    if verified is not None and verified > at:
        verified = None
    return verified is None or verified < disputed


def _cease_received(f: _Facts, default: Any) -> Any:
    cease = f.acc.account.cease_communication_received_at
    return (cease is not None and cease <= f.at) or "cease_communication" in f.flags()


def _breathing_space(f: _Facts, default: Any) -> Any:
    space = f.acc.account.breathing_space
    # as_of drops a moratorium not yet begun; one begun is active until its end
    return space is not None and space.start <= f.day and (space.end is None or f.day <= space.end)


def _plan_days(f: _Facts, default: Any) -> Any:
    plan = f.acc.account.payment_plan
    if plan is None or plan.next_due_date is None:
        return default
    return (plan.next_due_date - f.day).days


def _promise_active(f: _Facts, default: Any) -> Any:
    promise = f.acc.account.promise_to_pay
    if promise is None or promise.made_at > f.at:
        return False  # no promise on record at that instant
    raise _NeedsReference("promise_active")


def _consent_day(f: _Facts, default: Any) -> Any:
    start = f.acc.consent_from
    if start is None or start >= f.prior:
        return default  # no consent given before the contact: no window is open
    raise _NeedsReference("consent_day")


def _validation(f: _Facts, default: Any) -> Any:
    sent = f.acc.account.validation_notice_sent_at
    if sent is None or sent > f.at:
        return default  # no validation notice yet: no validation period
    raise _NeedsReference("in_validation_period")


_DYNAMIC: dict[str, Callable[[_Facts, Any], Any]] = {
    "flags": lambda f, default: f.flags(),
    "dispute_open": _dispute_open,
    "cease_received": _cease_received,
    "breathing_space_active": _breathing_space,
    "plan_days_to_due": _plan_days,
    "promise_active": _promise_active,
    "consent_day": _consent_day,
    "in_validation_period": _validation,
}
# Facts derive sets only when the record has them (missing otherwise), handled above.
_KNOWN_ABSENT = frozenset({"actor_type", "principal", *_STATIC})


# A guard screen: True when the guard certainly does not block the contact.
Screen = Callable[[_Account, _Facts, Channel], bool]


def _window_starts(days_back: Callable[[dt.date], dt.date], acc: _Account, f: _Facts, zones: bool) -> list[float]:
    """For each zone counted, the POSIX start of the first local day of the window."""
    out = []
    for tz in acc.zones if zones else (acc.timeline.tz,):
        day = f.at.astimezone(tz).date()
        out.append(start_of_day(days_back(day), tz).timestamp())
    return out


def _count_since(acc: _Account, since: float, prior: int, keep: Callable[[Any], bool]) -> int:
    """Events before the contact (its first ``prior`` events in time order), at or
    after ``since``, that ``keep`` accepts."""
    timeline = acc.timeline
    first = bisect.bisect_left(timeline.stamps, since, 0, prior)
    return sum(1 for e in timeline.ordered[first:prior] if keep(e))


def _frequency(rule: GuardRule, guard: FrequencyGuard) -> Screen:
    flt = guard.count
    if guard.window == "calendar_month":
        back: Callable[[dt.date], dt.date] = lambda day: day.replace(day=1)  # noqa: E731
    else:
        span = (guard.window - 1) * _DAY
        back = lambda day: day - span  # noqa: E731
    every_zone = guard.days_in != "account"

    def screen(acc: _Account, f: _Facts, channel: Channel) -> bool:
        # Counting every earlier event in the window on the counted channels (and
        # direction), whatever the filter's other criteria and whichever number,
        # bounds the guard's count from above: below `max`, it cannot block.
        if guard.max == 0:
            return False
        channels = flt.channels or guard.channels or (channel,)
        direction = flt.direction

        def keep(e: Any) -> bool:
            return e.channel in channels and (direction == "any" or e.direction == direction)

        return all(
            _count_since(acc, since, f.prior, keep) < guard.max
            for since in _window_starts(back, acc, f, every_zone)
        )

    return screen


def _cooldown(rule: GuardRule, guard: CooldownGuard) -> Screen:
    flt = guard.after
    span = (guard.wait - 1) * _DAY
    every_zone = guard.days_in != "account"

    def keep(e: Any) -> bool:
        # necessary conditions of a match: an event failing one cannot start the wait
        return (
            (flt.direction == "any" or e.direction == flt.direction)
            and (not flt.channels or e.channel in flt.channels)
            and (not flt.outcomes or e.outcome in flt.outcomes)
            and (not flt.actions or e.action in flt.actions)
        )

    def screen(acc: _Account, f: _Facts, channel: Channel) -> bool:
        # any matching event on the wait's days blocks; none that could match: clean
        return all(
            _count_since(acc, since, f.prior, keep) == 0
            for since in _window_starts(lambda day: day - span, acc, f, every_zone)
        )

    return screen


def _screen_for(rule: GuardRule) -> Screen:
    """The screen of one guard (``unless`` is handled by the caller)."""
    model = rule.model
    if isinstance(model, ContactHoursGuard):
        hours = model
        return lambda acc, f, channel: window_open(hours, f.at, acc.zones)
    if isinstance(model, FrequencyGuard):
        return _frequency(rule, model)
    if isinstance(model, CooldownGuard):
        return _cooldown(rule, model)
    if isinstance(model, BlockGuard):
        when = rule.conditions["when"]
        return lambda acc, f, channel: when.truth(f) is not True
    if isinstance(model, ConsentGuard) and not model.confirm_on:
        return lambda acc, f, channel: channel.value not in acc.static["opt_out"]
    if isinstance(model, InconvenientGuard):
        return lambda acc, f, channel: not (acc.account.inconvenient_times or acc.account.inconvenient_places)
    return lambda acc, f, channel: False  # prerequisites, opt-out confirmations: the reference judges


class FastAuditor:
    """:meth:`ContactAuditor.audit` with the same results, screening each
    contact first (see the module docstring)."""

    def __init__(self, reference: ContactAuditor) -> None:
        self.reference = reference
        self._holds: tuple[Compiled, ...] = tuple(h.when for h in reference.policy.holds)
        self._screens: dict[int, Screen] = {}
        self._unless: dict[int, Compiled | None] = {}
        for rule in reference.policy.guards:
            self._screens[id(rule)] = _screen_for(rule)
            self._unless[id(rule)] = rule.unless
        self._by_contact: dict[tuple[str | None, Channel], tuple[tuple[Compiled | None, Screen], ...]] = {}
        #: contacts the screen passed to the reference (for the benchmark)
        self.referred = 0

    def _guards(self, action: str | None, channel: Channel) -> tuple[tuple[Compiled | None, Screen], ...]:
        key = (action, channel)
        found = self._by_contact.get(key)
        if found is None:
            rules = self.reference.guards_for(action, channel)
            found = self._by_contact[key] = tuple((self._unless[id(r)], self._screens[id(r)]) for r in rules)
        return found

    def audit(
        self, account: Account, start: dt.datetime, end: dt.datetime, exported: dt.datetime
    ) -> tuple[dict[str, int], list[Violation]]:
        """As :meth:`ContactAuditor.audit` (same contacts, violations, errors)."""
        acc = _Account(account, self.reference, exported)
        timeline = acc.timeline
        history = account.history
        start_ts, end_ts = start.timestamp(), end.timestamp()
        stamps = timeline.stamps
        contacts: dict[str, int] = {}
        found: list[Violation] = []
        for index in timeline.order:
            event = history[index]
            if event.direction is not _OUTBOUND:
                continue
            ts = event.at.timestamp()
            if not start_ts <= ts < end_ts:
                continue
            actor = event.actor or timeline.actor
            contacts[actor] = contacts.get(actor, 0) + 1
            channel = self.reference._channel(account, index)  # raises as the reference does
            if not self._clean(acc, _Facts(acc, event.at, bisect.bisect_left(stamps, ts)), event.action, channel):
                self.referred += 1
                found.extend(self.reference._check(account, index, timeline))
        return contacts, found

    def _clean(self, acc: _Account, f: _Facts, action: str | None, channel: Channel) -> bool:
        """True when no hold and no guard covering the contact can block it."""
        try:
            for when in self._holds:
                if when.truth(f) is True:
                    return False
            for unless, screen in self._guards(action, channel):
                if unless is not None and unless.truth(f) is True:
                    continue  # lifted, exactly as the reference lifts it
                if not screen(acc, f, channel):
                    return False
        except (_NeedsReference, ArithmeticError, TypeError, ValueError):
            return False  # the reference decides (and raises, if it must)
        return True

