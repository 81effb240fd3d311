"""The fast contact audit: a sound screen in front of the reference check.

Most contacts break no rule. For each one, a cheap screen answers, hold by
hold and guard by guard, "certainly does not block" — or "might": then the
contact is re-evaluated by the reference (:class:`ContactAuditor`'s
per-contact ``derive``, holds and guards), which alone judges it. The
findings are the reference's by construction, provided the screen never
clears a contact the reference would report (each check in
:mod:`escalation.contacts._screen` says why it cannot;
``tests/test_audit_contacts_fast.py`` compares both paths on generated
portfolios with planted violations of every kind, on every shipped policy).

What the facts settle is worked out once per *state* of an account — which
of its dated fields (dispute, verification, cease, validation notice,
promise) stand at the contact's instant, whether a consent was given before
it, and the local day when a fact read depends on it — and for a contact of
that tier on that channel. Only times and counts (contact hours, frequency
windows, cooldowns) are checked contact by contact.

A contact blocked only by the state — a hold without an end date, a
``block`` guard or an opt-out, whose reason and figures read nothing but
that state — is judged by the reference once per state; the account's
other contacts in that state get the same violations with their own event,
instant, outcome and actor (when their times and counts are clear)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from escalation._reasons import _PLACEHOLDER
from escalation.contacts._check import ContactAuditor, Violation
from escalation.contacts._screen import (
    AccountView,
    FactsAt,
    NeedsReference,
    Screen,
    holds,
    state_clean,
    time_screen,
)
from escalation.guards import BlockGuard, ConsentGuard
from escalation.policy import GuardRule, HoldRule
from escalation.record import Account, Channel, Direction

__all__ = ["FastAuditor"]

_OUTBOUND = Direction.OUTBOUND


@dataclass(slots=True)
class _Settled:
    """What the facts of one state settle for contacts of one tier on one channel."""

    refer: bool  # a rule may block and cannot be judged from the state: the reference judges
    screens: tuple[Screen, ...] = ()  # time and count checks left for each contact
    blocking: tuple[str, ...] = ()  # ids of the rules the state alone blocks on, in report order
    templates: tuple[Violation, ...] | None = None  # their violations, as the reference wrote them


_REFER = _Settled(refer=True)


class FastAuditor:
    """:meth:`ContactAuditor.audit` with the same results, screening each
    contact first (see the module docstring)."""

    def __init__(self, reference: ContactAuditor) -> None:
        self.reference = reference
        self._holds: tuple[HoldRule, ...] = tuple(reference.policy.holds)
        self._time: dict[int, Screen | None] = {id(r): time_screen(r) for r in reference.policy.guards}
        #: contacts judged by the reference, and contacts given a violation it wrote for their state
        self.referred = self.reused = 0

    def audit(
        self, account: Account, start: dt.datetime, end: dt.datetime, exported: dt.datetime
    ) -> tuple[dict[str, int], list[Violation]]:
        """As :meth:`ContactAuditor.audit` (same contacts, violations, errors)."""
        try:
            acc = AccountView(account, self.reference, exported)
        except (ArithmeticError, LookupError, TypeError, ValueError):
            # e.g. a zone that cannot be loaded: the reference judges (and fails) as it would
            return self.reference.audit(account, start, end, exported)
        timeline = acc.timeline
        history = account.history
        start_ts, end_ts = start.timestamp(), end.timestamp()
        stamps = timeline.stamps
        local = acc.local(0)
        channel_of = self.reference._channel
        contacts: dict[str, int] = {}
        found: list[Violation] = []
        prior = 0
        for p, index in enumerate(timeline.order):
            ts = stamps[p]
            if p and ts != stamps[p - 1]:
                prior = p  # the events strictly before this instant
            event = history[index]
            if event.direction is not _OUTBOUND or not start_ts <= ts < end_ts:
                continue
            actor = event.actor or timeline.actor
            contacts[actor] = contacts.get(actor, 0) + 1
            channel = event.channel or channel_of(account, index)  # raises as the reference does
            settled = self._settled(acc, p, prior, event.action, channel, local[p].date())
            clear = not settled.refer
            try:
                for screen in settled.screens:
                    if clear and not screen(acc, p, prior, channel):
                        clear = False
            except (ArithmeticError, LookupError, TypeError, ValueError):
                clear = False  # the reference judges (and turns the failure into an error row)
            if not clear:
                self.referred += 1
                found.extend(self.reference._check(account, index, timeline))
            elif settled.blocking:
                found.extend(self._blocked(acc, settled, p, index, actor))
        return contacts, found

    def _blocked(
        self, acc: AccountView, settled: _Settled, p: int, index: int, actor: str
    ) -> list[Violation]:
        """The violations of a contact blocked by its state alone."""
        if settled.templates is None:
            self.referred += 1
            found = self.reference._check(acc.account, index, acc.timeline)
            if tuple(v.id for v in found) == settled.blocking:
                settled.templates = tuple(found)
            return found
        self.reused += 1
        event = acc.timeline.ordered[p]
        return [
            replace(
                t,
                event_index=index,
                at=acc.local(0)[p],
                outcome=event.outcome.value if event.outcome is not None else None,
                actor=actor,
                figures=dict(t.figures),
            )
            for t in settled.templates
        ]

    def _settled(
        self, acc: AccountView, p: int, prior: int, action: str | None, channel: Channel, day: dt.date
    ) -> _Settled:
        state = None if acc.constant else acc.state(acc.timeline.stamps[p], prior)
        key = (state, action, channel)
        memo = acc.memo
        found = memo.get(key)
        if found is None:
            facts = FactsAt(acc, acc.timeline.ordered[p].at, prior, day)
            settled = self._settle(acc, facts, action, channel)
            if not facts.used_day:
                memo[key] = settled
                return settled
            memo[key] = "by day"
            memo[(*key, day)] = settled
            return settled
        if found == "by day":
            by_day = memo.get((*key, day))
            if by_day is None:
                by_day = memo[(*key, day)] = self._settle(
                    acc, FactsAt(acc, acc.timeline.ordered[p].at, prior, day), action, channel
                )
            return by_day
        return found  # type: ignore[no-any-return]

    def _settle(self, acc: AccountView, f: FactsAt, action: str | None, channel: Channel) -> _Settled:
        """What the facts ``f`` settle for a contact of ``action`` on ``channel``."""
        blocking: list[str] = []
        left: list[Screen] = []
        try:
            for hold in self._holds:
                if holds(hold.when, f):
                    if not _settled_hold(hold, f):
                        return _REFER
                    blocking.append(hold.model.id)
                    break  # the first hold that applies is the one reported
            for rule in self.reference.guards_for(action, channel):
                if rule.unless is not None and holds(rule.unless, f):
                    continue  # lifted, exactly as the reference lifts it
                screen = self._time[id(rule)]
                if screen is not None:
                    left.append(screen)
                elif not state_clean(rule, acc, f, channel):
                    if not _settled_guard(rule, f):
                        return _REFER
                    blocking.append(rule.model.id)
        except (NeedsReference, ArithmeticError, TypeError, ValueError):
            return _REFER  # the reference decides (and raises, if it must)
        return _Settled(refer=False, screens=tuple(left), blocking=tuple(blocking))


_ABSENT = object()


def _reads_state(names: Any, f: FactsAt, present: bool = False) -> bool:
    """Whether every fact in ``names`` is known from the state (and, with
    ``present``, recorded: a missing fact in a reason falls back to a record date)."""
    for name in names:
        value = f.get(name, _ABSENT)
        if present and value is _ABSENT:
            return False
    return True


def _settled_hold(hold: HoldRule, f: FactsAt) -> bool:
    """Whether the hold's violation reads nothing but the state: no end date
    (its expiry is per contact), figures and reason from facts the state fixes."""
    if hold.model.until is not None:
        return False
    return _reads_state(hold.when.fact_order, f) and _reads_state(
        _PLACEHOLDER.findall(hold.model.reason), f, present=True
    )


def _settled_guard(rule: GuardRule, f: FactsAt) -> bool:
    """Whether the guard's violation reads nothing but the state: a ``block``
    guard (figures: the facts of its condition) or an opt-out (figures: the
    record's opt-outs); its reason is its own fixed text."""
    if isinstance(rule.model, BlockGuard):
        return _reads_state(rule.conditions["when"].facts, f)
    return isinstance(rule.model, ConsentGuard) and not rule.model.confirm_on
