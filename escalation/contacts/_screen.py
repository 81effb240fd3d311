"""The screen of the fast contact audit (see :mod:`escalation.contacts._fast`):
one account's events as the screen sees them, the facts of a contact's
instant it knows exactly, and per-guard checks that say "certainly does not
block" or "might" (then the reference decides).

Each check is sound by construction: it reads only what the reference reads
or a superset of it (every earlier event on the counted channels bounds a
frequency count from above), and anything else raises
:class:`NeedsReference`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, cast
from zoneinfo import ZoneInfo

from escalation._calendar import is_holiday
from escalation._language import WEEKDAYS
from escalation.contacts._asof import _flags_at
from escalation.contacts._check import ContactAuditor, _Timeline
from escalation.guards import (
    BlockGuard,
    ConsentGuard,
    ContactHoursGuard,
    CooldownGuard,
    FrequencyGuard,
    InconvenientGuard,
)
from escalation.policy import GuardRule
from escalation.policy._expr import Compiled
from escalation.record import Account, Channel, Direction, PlanStatus, zone

__all__ = ["AccountView", "FactsAt", "NeedsReference", "Screen", "holds", "state_clean", "time_screen"]

_DAY = dt.timedelta(days=1)
_OUTBOUND = Direction.OUTBOUND
_ACTIVE = PlanStatus.ACTIVE
# Facts read from the record alone, the same at every instant (as_of keeps them).
_STATIC = ("currency", "balance", "amount_overdue", "segment", "product", "jurisdiction")


class NeedsReference(Exception):
    """The screen cannot tell cheaply: the reference decides this contact."""


class AccountView:
    """One account's contacts as the screen sees them: events in time order,
    their local times in every zone, the record's undated facts, and what the
    facts of a contact's instant depend on (see :meth:`state`)."""

    __slots__ = (
        "_local",
        "account",
        "bounds",
        "consent_from",
        "constant",
        "memo",
        "places",
        "static",
        "timeline",
        "zones",
    )

    def __init__(self, account: Account, auditor: ContactAuditor, exported: dt.datetime) -> None:
        policy = auditor.policy
        self.account = account
        self.timeline = _Timeline(account, policy, exported)
        tz = self.timeline.tz
        # as in derive: the account's own zone first, then the extra ones, deduplicated
        self.zones: tuple[ZoneInfo, ...] = tuple(dict.fromkeys((tz, *(zone(n) for n in account.timezones))))
        self._local: list[list[dt.datetime] | None] = [None] * len(self.zones)
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
        # whether an event of a `place` or `recall` tier (the only events that
        # place an account with an agency, see placement_facts) is on record
        placing = {t.model.id for t in policy.tiers if t.model.kind != "contact"}
        self.places = any(e.action in placing for e in account.history) if placing else False
        # The instants at which a fact the screen reads can change: the dated fields
        # :func:`as_of` places in time, and a promise's `made_at`
        promise = account.promise_to_pay
        instants = (
            account.dispute_received_at,
            account.verification_sent_at,
            account.cease_communication_received_at,
            account.validation_notice_sent_at,
            promise.made_at if promise is not None else None,
        )
        self.bounds = tuple(i.timestamp() for i in instants if i is not None)
        #: nothing the screen reads changes between the account's contacts (the day aside)
        self.constant = not self.bounds and self.consent_from is None
        self.memo: dict[Any, Any] = {}  # the auditor's, per state of the facts

    def local(self, zone_index: int) -> list[dt.datetime]:
        """Every event's local time in ``zones[zone_index]``, in time order."""
        found = self._local[zone_index]
        if found is None:
            tz = self.zones[zone_index]
            found = self._local[zone_index] = [e.at.astimezone(tz) for e in self.timeline.ordered]
        return found

    def state(self, ts: float, prior: int) -> Any:
        """What the facts the screen reads depend on at instant ``ts`` (with
        ``prior`` earlier events), the local day aside (see ``FactsAt.used_day``):
        which dated fields stand, and whether a consent was given before."""
        if not self.bounds and self.consent_from is None:
            return None
        return (
            tuple(b <= ts for b in self.bounds),
            self.consent_from is not None and self.consent_from < prior,
        )


class FactsAt:
    """The facts of one contact's instant that the screen knows exactly; any
    other fact raises :class:`NeedsReference`. Read by the compiled
    conditions through ``get`` (missing facts are ``default``, as in derive)."""

    __slots__ = ("_flags", "acc", "at", "day", "prior", "used_day")

    def __init__(self, acc: AccountView, at: dt.datetime, prior: int, day: dt.date) -> None:
        self.acc, self.at, self.prior, self.day = acc, at, prior, day
        self._flags: frozenset[str] | None = None
        #: whether a fact read depends on the local day (then so does what it settles)
        self.used_day = False

    def flags(self) -> frozenset[str]:
        if self._flags is None:
            self.used_day |= self.acc.account.breathing_space is not None
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
        raise NeedsReference(name)


def _dispute_open(f: FactsAt, default: Any) -> Any:
    account, at = f.acc.account, f.at
    disputed = account.dispute_received_at
    if disputed is None or disputed > at:
        return False
    verified = account.verification_sent_at
    if verified is not None and verified > at:
        verified = None
    return verified is None or verified < disputed


def _cease_received(f: FactsAt, default: Any) -> Any:
    cease = f.acc.account.cease_communication_received_at
    return (cease is not None and cease <= f.at) or "cease_communication" in f.flags()


def _breathing_space(f: FactsAt, default: Any) -> Any:
    space = f.acc.account.breathing_space
    f.used_day = True
    # as_of drops a moratorium not yet begun; one begun is active until its end
    return space is not None and space.start <= f.day and (space.end is None or f.day <= space.end)


def _plan_days(f: FactsAt, default: Any) -> Any:
    plan = f.acc.account.payment_plan
    if plan is None or plan.next_due_date is None:
        return default
    f.used_day = True
    return (plan.next_due_date - f.day).days


def _promise_active(f: FactsAt, default: Any) -> Any:
    promise = f.acc.account.promise_to_pay
    if promise is None or promise.made_at > f.at:
        return False  # no promise on record at that instant
    raise NeedsReference("promise_active")


def _consent_day(f: FactsAt, default: Any) -> Any:
    start = f.acc.consent_from
    if start is None or start >= f.prior:
        return default  # no consent given before the contact: no window is open
    raise NeedsReference("consent_day")


def _validation(f: FactsAt, default: Any) -> Any:
    sent = f.acc.account.validation_notice_sent_at
    if sent is None or sent > f.at:
        return default  # no validation notice yet: no validation period
    raise NeedsReference("in_validation_period")


def _placed(f: FactsAt, default: Any) -> Any:
    if f.acc.places:
        raise NeedsReference("placed")
    return False  # no event that could place the account: never placed


def _while_placed(f: FactsAt, default: Any) -> Any:
    if f.acc.places:
        raise NeedsReference("placed_with")
    return default  # set only while placed


_DYNAMIC: dict[str, Callable[[FactsAt, Any], Any]] = {
    "placed": _placed,
    "placed_with": _while_placed,
    "days_placed": _while_placed,
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


def holds(condition: Compiled, f: FactsAt) -> bool:
    """Whether ``condition`` is true on the facts ``f`` (the compiled closures
    read facts only through ``get``, which ``FactsAt`` answers or refuses)."""
    return condition.truth(cast("Mapping[str, Any]", f)) is True


# A guard screen: True when the guard certainly does not block the contact at
# position `p` (in time order), which has `prior` earlier events, on `channel`.
Screen = Callable[[AccountView, int, int, Channel], bool]


def _zone_indices(days_in: str, acc: AccountView) -> range:
    return range(1) if days_in == "account" else range(len(acc.zones))


def _count_from(acc: AccountView, zi: int, first: int, prior: int, keep: Callable[[Any], bool]) -> int:
    """Events before the contact whose local day (in zone ``zi``) is on or after
    the day ordinal ``first`` and that ``keep`` accepts."""
    local = acc.local(zi)
    ordered = acc.timeline.ordered
    n = 0
    for k in range(prior - 1, -1, -1):  # newest first: stop at the window's first day
        if local[k].toordinal() < first:
            break
        if keep(ordered[k]):
            n += 1
    return n


def _hours(guard: ContactHoursGuard) -> Screen:
    opens, closes = _minutes(guard.from_), _minutes(guard.to)
    weekdays = frozenset(i for i, name in enumerate(WEEKDAYS) if name in guard.days)
    holidays = guard.holidays

    def screen(acc: AccountView, p: int, prior: int, channel: Channel) -> bool:
        # the window must be open in every zone (as `window_open`)
        for zi in range(len(acc.zones)):
            local = (acc._local[zi] or acc.local(zi))[p]
            if local.weekday() not in weekdays:
                return False
            if holidays is not None and is_holiday(holidays, local.date()):
                return False
            if not opens <= local.hour * 60 + local.minute < closes:
                return False
        return True

    return screen


def _frequency(guard: FrequencyGuard) -> Screen:
    flt = guard.count
    month = guard.window == "calendar_month"
    span = 0 if isinstance(guard.window, str) else guard.window - 1
    direction = flt.direction
    keeps: dict[Channel, Callable[[Any], bool]] = {}

    def keeper(channel: Channel) -> Callable[[Any], bool]:
        channels = flt.channels or guard.channels or (channel,)

        def keep(e: Any) -> bool:
            return e.channel in channels and (direction == "any" or e.direction == direction)

        return keep

    def screen(acc: AccountView, p: int, prior: int, channel: Channel) -> bool:
        # Counting every earlier event in the window on the counted channels (and
        # direction), whatever the filter's other criteria and whichever number,
        # bounds the guard's count from above: below `max`, it cannot block.
        if guard.max == 0:
            return False
        keep = keeps.get(channel)
        if keep is None:
            keep = keeps[channel] = keeper(channel)
        for zi in _zone_indices(guard.days_in, acc):
            day = acc.local(zi)[p].date()
            first = day.replace(day=1).toordinal() if month else day.toordinal() - span
            if _count_from(acc, zi, first, prior, keep) >= guard.max:
                return False
        return True

    return screen


def _cooldown(guard: CooldownGuard) -> Screen:
    flt = guard.after
    span = guard.wait - 1

    def keep(e: Any) -> bool:
        # necessary conditions of a match: an event failing one cannot start the wait
        return (
            (flt.direction == "any" or e.direction == flt.direction)
            and (not flt.channels or e.channel in flt.channels)
            and (not flt.outcomes or e.outcome in flt.outcomes)
            and (not flt.actions or e.action in flt.actions)
        )

    def screen(acc: AccountView, p: int, prior: int, channel: Channel) -> bool:
        # any matching event on the wait's days blocks; none that could match: clean
        for zi in _zone_indices(guard.days_in, acc):
            first = acc.local(zi)[p].toordinal() - span
            if _count_from(acc, zi, first, prior, keep):
                return False
        return True

    return screen


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def time_screen(rule: GuardRule) -> Screen | None:
    """The per-contact screen of a guard judged on times and counts, if it is one."""
    model = rule.model
    if isinstance(model, ContactHoursGuard):
        return _hours(model)
    if isinstance(model, FrequencyGuard):
        return _frequency(model)
    if isinstance(model, CooldownGuard):
        return _cooldown(model)
    return None


def state_clean(rule: GuardRule, acc: AccountView, f: FactsAt, channel: Channel) -> bool:
    """For a guard judged on the facts alone (block, consent, inconvenient):
    True when it certainly does not block. Prerequisites and opt-out
    confirmations are left to the reference."""
    model = rule.model
    if isinstance(model, BlockGuard):
        return not holds(rule.conditions["when"], f)
    if isinstance(model, ConsentGuard) and not model.confirm_on:
        return channel.value not in acc.static["opt_out"]
    if isinstance(model, InconvenientGuard):
        return not (acc.account.inconvenient_times or acc.account.inconvenient_places)
    return False
