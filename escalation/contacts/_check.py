"""Re-evaluating one account's contacts: for each outbound event in the
period, the policy's holds and the guards covering that event's tier and
channel, as of the event's instant on the history before it.

The engine's own pieces do the judging (:func:`escalation._facts.derive`,
:func:`escalation._holds.first_hold`, :func:`escalation.guards.check_guard`),
so a contact is reported exactly when ``decide()`` at that instant would not
have permitted that tier on that channel because of a hold or a guard."""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from escalation._facts import account_zone, derive
from escalation._facts_static import json_value
from escalation._holds import first_hold
from escalation._ladder import LadderPlan
from escalation._reasons import fill
from escalation._trace import Recorder
from escalation.backends import make_conditions
from escalation.contacts._asof import as_of
from escalation.errors import EscalationError, EvaluationError, RecordError, RecordIssue
from escalation.guards import EventMatcher, FrequencyGuard, GuardVerdict, applies, check_guard
from escalation.policy import GuardRule, HoldRule, Policy, Tier
from escalation.record import Account, Channel, Direction, HistoryEvent

__all__ = ["Breach", "ContactAuditor", "Violation", "breach_class"]

#: The class of a breach: the law (or a regulator's binding rules),
#: industry self-regulation, or the lender's own policy.
Breach = Literal["legal", "self-regulatory", "policy"]

# Holds that protect a legal state (a dispute, insolvency, a moratorium, a
# cease request, a death): a contact during one is a legal breach.
_LEGAL_FLAGS = re.compile(r"'(dispute|bankruptcy|breathing_space|cease_communication|deceased)'")
_LEGAL_FACTS = frozenset({"dispute_open", "cease_received", "breathing_space_active"})
_OUTBOUND = Direction.OUTBOUND


def breach_class(rule: GuardRule | HoldRule, policy: Policy) -> Breach:
    """Legal, self-regulatory or policy: see "Legal and policy breaches" in
    ``docs/audit.md``. A guard's ``authority`` decides (``law``/``regulator``
    → legal, ``self-regulation`` → self-regulatory, ``policy`` → policy), except
    that a guard the policy itself declares is always policy. A hold is legal
    when its condition reads a protected state, policy otherwise (a promise
    to pay, a payment plan)."""
    if isinstance(rule, HoldRule):
        if _LEGAL_FLAGS.search(rule.when.canonical) or rule.when.facts & _LEGAL_FACTS:
            return "legal"
        return "policy"
    if rule.source == policy.id:
        return "policy"
    authority = rule.model.authority
    if authority in ("law", "regulator"):
        return "legal"
    if authority == "self-regulation":
        return "self-regulatory"
    return "policy"


@dataclass(frozen=True, slots=True)
class Violation:
    """One contact a hold or a guard would have blocked at the instant it was made."""

    account_id: str
    event_index: int  # position in the record's ``history``, 0-based
    at: dt.datetime  # the contact's instant, in the account's zone
    action: str | None
    channel: str
    outcome: str | None
    actor: str
    rule: Literal["hold", "guard"]
    id: str  # the hold's or the guard's id
    kind: str  # the guard kind, or ``hold``
    breach: Breach
    authority: str | None
    source: str  # the rule pack's id, or the policy's for its own holds and guards
    cite: str | None
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``violations.jsonl`` row."""
        return {
            "account_id": self.account_id,
            "event_index": self.event_index,
            "at": self.at.isoformat(),
            "action": self.action,
            "channel": self.channel,
            "outcome": self.outcome,
            "actor": self.actor,
            "rule": self.rule,
            "id": self.id,
            "kind": self.kind,
            "breach": self.breach,
            "authority": self.authority,
            "source": self.source,
            "cite": self.cite,
            "reason": self.reason,
            "figures": self.figures,
        }


class ContactAuditor:
    """Audits the contacts of accounts under one policy (immutable tables,
    per-account state on the stack)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._plan = LadderPlan.build(policy)
        self._conditions = make_conditions(policy, "native")
        self._tiers: dict[str, Tier] = {t.model.id: t.model for t in policy.tiers}
        # check_guard's verdict does not depend on the tier (see its docstring):
        # an event of no tier is checked under any tier, with channel-only guards.
        self._any_tier = policy.tiers[0].model
        self._guards: dict[tuple[str | None, Channel], tuple[GuardRule, ...]] = {}
        self._classes: dict[int, Breach] = {id(g): breach_class(g, policy) for g in policy.guards}
        self._classes.update({id(h): breach_class(h, policy) for h in policy.holds})

    def guards_for(self, action: str | None, channel: Channel) -> tuple[GuardRule, ...]:
        """The guards covering a contact of tier ``action`` on ``channel``; for
        an action that is no tier of the policy, the guards that select by
        channel alone (no ``tags`` or ``actions``)."""
        key = (action if action in self._tiers else None, channel)
        found = self._guards.get(key)
        if found is None:
            tier = self._tiers.get(action or "")
            if tier is not None:
                found = tuple(g for g in self.policy.guards if applies(g, tier, channel))
            else:
                found = tuple(
                    g
                    for g in self.policy.guards
                    if not g.model.tags
                    and not g.model.actions
                    and (not g.model.channels or channel in g.model.channels)
                )
            self._guards[key] = found
        return found

    def _channel(self, account: Account, index: int) -> Channel:
        event = account.history[index]
        if event.channel is not None:
            return event.channel
        tier = self._tiers.get(event.action or "")
        if tier is not None and len(tier.channel_order) == 1:
            return tier.channel_order[0]
        raise RecordError(
            [
                RecordIssue(
                    f"history.{index}.channel", "is missing and the event's action names no single channel"
                )
            ],
            account_id=account.id,
        )

    def audit(
        self, account: Account, start: dt.datetime, end: dt.datetime, exported: dt.datetime
    ) -> tuple[dict[str, int], list[Violation]]:
        """The outbound contacts of ``account`` in [``start``, ``end``) (counted
        by actor) and the violations among them. Raises :class:`RecordError` for
        an event whose channel cannot be known, :class:`EvaluationError` when a
        condition cannot be evaluated (fail closed: the account becomes an error row)."""
        history = account.history
        timeline = _Timeline(account, self.policy, exported)
        start_ts, end_ts = start.timestamp(), end.timestamp()
        contacts: dict[str, int] = {}
        found: list[Violation] = []
        for index in timeline.order:
            event = history[index]
            if event.direction is not _OUTBOUND or not start_ts <= event.at.timestamp() < end_ts:
                continue
            actor = event.actor or timeline.actor
            contacts[actor] = contacts.get(actor, 0) + 1
            found.extend(self._check(account, index, timeline))
        return contacts, found

    def check_event(self, account: Account, index: int, exported: dt.datetime) -> list[Violation]:
        """The violations of one outbound event, ``history[index]`` (the
        generator's dispatcher asks this before it keeps a contact)."""
        return self._check(account, index, _Timeline(account, self.policy, exported))

    def _check(self, account: Account, index: int, timeline: _Timeline) -> list[Violation]:
        policy = self.policy
        event = account.history[index]
        channel = self._channel(account, index)
        prior = timeline.ordered[: bisect.bisect_left(timeline.stamps, event.at.timestamp())]
        then = as_of(account, event.at, prior, timeline.tz, timeline.export_day)
        found: list[Violation] = []
        base: dict[str, Any] = {
            "account_id": account.id,
            "event_index": index,
            "at": event.at.astimezone(timeline.tz),
            "action": event.action,
            "channel": channel.value,
            "outcome": event.outcome.value if event.outcome is not None else None,
            "actor": event.actor or timeline.actor,
        }
        try:
            sit = derive(then, event.at, policy)
            truth = self._conditions.truth_for(sit)
            held = first_hold(policy.holds, sit, truth, Recorder(False))
            if held is not None:
                hold = next(h for h in policy.holds if h.model.id == held.hold)
                figures: dict[str, Any] = {
                    name: json_value(sit.values.get(name)) for name in hold.when.fact_order
                }
                figures["until"] = held.until.isoformat() if held.until else None
                found.append(
                    Violation(
                        **base,
                        rule="hold",
                        id=held.hold,
                        kind="hold",
                        breach=self._classes[id(hold)],
                        authority=None,
                        source=policy.id,
                        cite=hold.model.cite,
                        reason=fill(hold.model.reason, sit),
                        figures=figures,
                    )
                )
            matcher = EventMatcher(sit, self._plan.tags_of)
            tier = self._tiers.get(event.action or "", self._any_tier)
            for rule in self.guards_for(event.action, channel):
                if (
                    isinstance(rule.model, FrequencyGuard)
                    and rule.model.per == "address"
                    and _other_numbers(rule.model, then, event, channel)
                ):
                    verdict = self._own_address(rule, then, event, tier, channel)
                else:
                    verdict = check_guard(rule, sit, tier, channel, event.at, truth, matcher)
                if not verdict.blocked:
                    continue
                model = rule.model
                figures = {k: json_value(v) for k, v in verdict.facts.items()}
                if verdict.note:
                    figures["note"] = verdict.note
                found.append(
                    Violation(
                        **base,
                        rule="guard",
                        id=model.id,
                        kind=rule.kind.name,
                        breach=self._classes[id(rule)],
                        authority=model.authority,
                        source=rule.source,
                        cite=model.cite,
                        reason=model.reason,
                        figures=figures,
                    )
                )
        except EscalationError:
            raise
        except (ArithmeticError, TypeError, ValueError) as exc:  # fail closed
            raise EvaluationError(f"account `{account.id}`, history.{index}: {exc}") from exc
        return found

    def _own_address(
        self, rule: GuardRule, then: Account, event: HistoryEvent, tier: Tier, channel: Channel
    ) -> GuardVerdict:
        """A per-address limit, for the address the contact went to: the engine
        asks whether *some* number is still free; a contact made is judged on
        its own number, so the other numbers' events are left out of the count."""
        model = rule.model
        assert isinstance(model, FrequencyGuard)
        counted = set(model.count.channels or model.channels or (channel,))
        own = tuple(e for e in then.history if e.channel not in counted or e.address == event.address)
        sit = derive(then.model_copy(update={"history": own}), event.at, self.policy)
        truth = self._conditions.truth_for(sit)
        return check_guard(rule, sit, tier, channel, event.at, truth, EventMatcher(sit, self._plan.tags_of))


def _other_numbers(model: FrequencyGuard, then: Account, event: HistoryEvent, channel: Channel) -> bool:
    """Whether the history before the contact used another number on a counted channel."""
    counted = model.count.channels or model.channels or (channel,)
    return any(e.address != event.address for e in then.history if e.channel in counted)


class _Timeline:
    """One account's events in time order (ties in record order), with what
    every event of it needs: the zone, the export day, the default actor."""

    __slots__ = ("actor", "export_day", "order", "ordered", "stamps", "tz")

    def __init__(self, account: Account, policy: Policy, exported: dt.datetime) -> None:
        history = account.history
        self.tz = account_zone(account, policy)
        stamps = [e.at.timestamp() for e in history]
        # a stable sort of the indices by instant: ties stay in record order
        self.order = sorted(range(len(history)), key=stamps.__getitem__)
        self.ordered = tuple(history[i] for i in self.order)
        self.stamps = [stamps[i] for i in self.order]
        self.export_day = exported.astimezone(self.tz).date()
        self.actor = account.actor_type.value if account.actor_type is not None else "(not recorded)"
