"""Planted violations: a synthetic portfolio whose contact histories obey the
policy, except for known contacts that break it — the ground truth the
contact audit is tested against.

Each account starts as :func:`~escalation.portfolio.generate.generate` writes
it. Its history is then *dispatched*: in time order, a contact is kept only
when no hold or guard of the policy blocks it as of its instant (a dialer
that obeys the engine), so the base is clean. A dispute flag is dated first
(``dispute_received_at`` inside the history), so it stops the contacts after
it, not all of them. Then about ``rate`` of the accounts get one *plant*:
the account is made plain (no flags, opt-outs, promises, plans, extra zones),
its history before the plant is cut back to leave the planted windows empty,
and events are appended after it, the last of which breaks one kind of rule:

* ``hours``: a contact at 22:30 local → every ``contact_hours`` guard covering it;
* ``frequency``: ``max`` + 1 counted contacts on one day → on each, the
  frequency guards whose count has reached ``max``;
* ``cooldown``: a conversation, then a call two days later → the cooldown
  guards covering the call;
* ``consent``: an opt-out of the channel, a contact on it → every ``consent``
  guard covering it;
* ``dispute``, ``cease``, ``breathing-space``, ``promise``, ``plan``,
  ``bankruptcy``: that state (dated the day before, or undated), then a
  contact → the first hold and the block guards that read the state;
* ``prerequisite``: an action whose record date is missing → the record-date
  prerequisites covering it.

Expected rules are worked out here from the guards' parameters (windows,
limits, filters) and the states their conditions read — not by asking the
audit. Only the base is cleaned with the engine's own checks."""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any

from escalation._calendar import is_holiday
from escalation.guards import (
    BlockGuard,
    ConsentGuard,
    ContactHoursGuard,
    CooldownGuard,
    FrequencyGuard,
    PrerequisiteGuard,
    applies,
)
from escalation.policy import EventFilter, GuardRule, Policy, Tier
from escalation.record import Channel

__all__ = ["Planter"]

_LEGAL_TAGS = {
    "legal_threat",
    "legal_action",
    "criminal_referral",
    "credit_report",
    "third_party",
    "termination",
}
_PLAIN = ("flags", "opt_out", "promise_to_pay", "payment_plan", "timezones", "breathing_space")
_DATES = (
    "dispute_received_at",
    "verification_sent_at",
    "cease_communication_received_at",
    "negative_info_notice_sent_at",
    "default_notice_served_at",
    "letter_of_claim_at",
)
DAY = dt.timedelta(days=1)


def _reads(condition: Any, facts: set[str], flag: str | None) -> bool:
    if condition is None:
        return False
    if condition.facts & facts:
        return True
    return flag is not None and re.search(rf"'{flag}'", condition.canonical) is not None


# state plants: name → (facts, flag) a hold or block guard reads to stop contact
_STATES: dict[str, tuple[set[str], str | None]] = {
    "dispute": ({"dispute_open"}, "dispute"),
    "cease": ({"cease_received"}, "cease_communication"),
    "breathing-space": ({"breathing_space_active"}, "breathing_space"),
    "promise": ({"promise_active"}, None),
    "plan": ({"plan_active"}, None),
    "bankruptcy": (set(), "bankruptcy"),
}


class Planter:
    """Plants one violation of a kind the policy has into a record (see the module)."""

    def __init__(self, policy: Policy, rng: random.Random, at: dt.datetime) -> None:
        self.policy = policy
        self.rng = rng
        self.at = at
        self.guards = policy.guards
        tiers = [t.model for t in policy.tiers]
        self.plain = next(t for t in tiers if not set(t.tags) & _LEGAL_TAGS)
        self.holidays = sorted(
            {
                g.model.holidays
                for g in self.guards
                if isinstance(g.model, ContactHoursGuard) and g.model.holidays
            }
        )
        self.kinds = self._kinds(tiers)

    def _tier_for(
        self, tiers: list[Tier], rule: GuardRule, channels: tuple[Channel, ...] = ()
    ) -> tuple[Tier, Channel] | None:
        """The mildest plain tier (then any tier) and channel the guard covers."""
        ordered = sorted(tiers, key=lambda t: bool(set(t.tags) & _LEGAL_TAGS))
        for tier in ordered:
            for ch in tier.channel_order:
                if (not channels or ch in channels) and applies(rule, tier, ch):
                    return tier, ch
        return None

    def _kinds(self, tiers: list[Tier]) -> list[tuple[str, Any]]:
        kinds: list[tuple[str, Any]] = []
        for rule in self.guards:
            model = rule.model
            found: tuple[Tier, Channel] | None = None
            if isinstance(model, ContactHoursGuard):
                found, name = self._tier_for(tiers, rule), "hours"
            elif isinstance(model, FrequencyGuard) and 0 < model.max < 20:
                found, name = self._tier_for(tiers, rule, model.count.channels), "frequency"
            elif isinstance(model, CooldownGuard):
                found, name = self._tier_for(tiers, rule, model.after.channels), "cooldown"
            elif (
                isinstance(model, PrerequisiteGuard)
                and model.record_date is not None
                and model.unless is None
            ):
                found, name = self._tier_for(tiers, rule), "prerequisite"
            if found is not None:
                kinds.append((name, (rule, *found)))
        if any(isinstance(g.model, ConsentGuard) for g in self.guards):
            kinds.append(("consent", None))
        for state, (facts, flag) in _STATES.items():
            if any(_reads(h.when, facts, flag) for h in self.policy.holds) or any(
                isinstance(g.model, BlockGuard) and _reads(g.when, facts, flag) for g in self.guards
            ):
                kinds.append((state, None))
        return kinds

    # ------------------------------------------------------------- time
    def _day(self, tz: Any) -> dt.date:
        """A working day (no holiday of the policy's calendars) a few days before ``at``,
        with the three days before it in the same calendar month."""
        day = self.at.astimezone(tz).date() - (2 + self.rng.randint(0, 6)) * DAY
        while (
            day.weekday() >= 5
            or any(is_holiday(code, day) for code in self.holidays)
            or (day - 3 * DAY).month != day.month
        ):
            day -= DAY
        return day

    @staticmethod
    def _instant(day: dt.date, hour: int, minute: int, tz: Any) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), tz)

    # ------------------------------------------------------------- expected
    def _hours_expected(self, tier: Tier, channel: Channel, local: dt.datetime) -> list[str]:
        out = []
        minute = local.hour * 60 + local.minute
        for rule in self.guards:
            model = rule.model
            if isinstance(model, ContactHoursGuard) and applies(rule, tier, channel):
                start = int(model.from_[:2]) * 60 + int(model.from_[3:])
                end = int(model.to[:2]) * 60 + int(model.to[3:])
                weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
                holiday = model.holidays is not None and is_holiday(model.holidays, local.date())
                if not start <= minute < end or weekday not in model.days or holiday:
                    out.append(model.id)
        return out

    def _counted(self, flt: EventFilter, channel: Channel, outcome: str) -> bool:
        if flt.channels and channel not in flt.channels:
            return False
        if flt.outcomes and outcome not in flt.outcomes:
            return False
        return flt.direction in ("any", "outbound")

    def _frequency_expected(self, tier: Tier, channel: Channel, outcome: str, before: int) -> list[str]:
        out = []
        for rule in self.guards:
            model = rule.model
            if isinstance(model, FrequencyGuard) and applies(rule, tier, channel):
                counted = before if self._counted(model.count, channel, outcome) else 0
                if counted >= model.max:
                    out.append(model.id)
        return out

    def _state_expected(self, name: str, tier: Tier, channel: Channel) -> list[str]:
        facts, flag = _STATES[name]
        out = []
        hold = next((h for h in self.policy.holds if _reads(h.when, facts, flag)), None)
        if hold is not None:
            out.append(hold.model.id)
        for rule in self.guards:
            if (
                isinstance(rule.model, BlockGuard)
                and _reads(rule.when, facts, flag)
                and applies(rule, tier, channel)
            ):
                out.append(rule.model.id)
        return out

    # ------------------------------------------------------------- plant
    def plant(
        self, record: dict[str, Any], tz: Any
    ) -> tuple[list[dict[str, Any]], list[tuple[int, str]], str]:
        """Make ``record`` plain, cut its history back and append a plant;
        returns the appended events, (offset among them, expected rule) pairs
        and the plant's name."""
        name, arg = self.kinds[self.rng.randrange(len(self.kinds))]
        for key in (*_PLAIN, *_DATES):
            record.pop(key, None)
        day = self._day(tz)
        cutoff = self._instant(min(day.replace(day=1), day - 10 * DAY), 0, 0, tz)
        record["history"] = [
            e for e in record.get("history", []) if dt.datetime.fromisoformat(e["at"]) < cutoff
        ]
        tier, channel = self.plain, self.plain.channel_order[0]
        address = "+00-000-plant"
        events: list[dict[str, Any]] = []
        expected: list[tuple[int, str]] = []

        def add(when: dt.datetime, t: Tier, ch: Channel, outcome: str, rules: list[str]) -> None:
            event: dict[str, Any] = {
                "at": when.isoformat(),
                "action": t.id,
                "channel": ch.value,
                "outcome": outcome,
            }
            if ch is Channel.PHONE:
                event["address"] = address
            if self.rng.random() < 0.5:
                event["actor"] = self.rng.choice(["agency-north", "agency-south"])
            expected.extend((len(events), r) for r in rules)
            events.append(event)

        if name == "hours":
            _, tier, channel = arg
            when = self._instant(day, 22, 30, tz)
            add(
                when,
                tier,
                channel,
                "sent" if channel is not Channel.PHONE else "no_answer",
                self._hours_expected(tier, channel, when),
            )
        elif name == "frequency":
            rule, tier, channel = arg
            model = rule.model
            outcome = (
                str(model.count.outcomes[0].value)
                if model.count.outcomes
                else "no_answer"
                if channel is Channel.PHONE
                else "delivered"
            )
            for n in range(model.max + 1):
                when = self._instant(day, 10 + n // 3, (n % 3) * 20, tz)
                add(when, tier, channel, outcome, self._frequency_expected(tier, channel, outcome, n))
        elif name == "cooldown":
            rule, tier, channel = arg
            add(self._instant(day - 2 * DAY, 10, 0, tz), tier, channel, "conversation", [])
            later = [
                r.model.id
                for r in self.guards
                if isinstance(r.model, CooldownGuard) and applies(r, tier, channel)
            ]
            add(self._instant(day, 10, 0, tz), tier, channel, "no_answer", later)
        elif name == "prerequisite":
            rule, tier, channel = arg
            rules = [
                r.model.id
                for r in self.guards
                if isinstance(r.model, PrerequisiteGuard)
                and r.model.record_date is not None
                and applies(r, tier, channel)
            ]
            add(self._instant(day, 10, 0, tz), tier, channel, "sent", rules)
        elif name == "consent":
            record["opt_out"] = [channel.value]
            rules = [
                r.model.id
                for r in self.guards
                if isinstance(r.model, ConsentGuard) and applies(r, tier, channel)
            ]
            add(
                self._instant(day, 10, 0, tz),
                tier,
                channel,
                "delivered" if channel is not Channel.PHONE else "no_answer",
                rules,
            )
        else:
            since = self._instant(day - DAY, 11, 0, tz)
            if name == "dispute":
                record["dispute_received_at"] = since.isoformat()
            elif name == "cease":
                record["cease_communication_received_at"] = since.isoformat()
            elif name == "breathing-space":
                record["breathing_space"] = {
                    "type": "standard",
                    "start": (day - DAY).isoformat(),
                    "end": (day + 60 * DAY).isoformat(),
                }
            elif name == "promise":
                # earlier promises in the history could count as broken and lift the
                # hold (`broken_promises < 2`): the planted one is the account's only promise
                for event in record.get("history", []):
                    if event.get("outcome") == "promise_to_pay":
                        event["outcome"] = "conversation"
                record["promise_to_pay"] = {
                    "amount": record["amount_overdue"],
                    "due_date": (day + 5 * DAY).isoformat(),
                    "made_at": since.isoformat(),
                }
            elif name == "plan":
                record["payment_plan"] = {"status": "active", "next_due_date": (day + 10 * DAY).isoformat()}
            else:
                record["flags"] = [name]
            add(
                self._instant(day, 10, 0, tz),
                tier,
                channel,
                "delivered" if channel is not Channel.PHONE else "no_answer",
                self._state_expected(name, tier, channel),
            )
        return events, expected, name
