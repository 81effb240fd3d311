"""``escalation simulate calibrate``: fit a response model's rates from a
portfolio's past events.

Every outbound action in the records' histories is attributed to the rule of
the base model that answers it (the first rule matching its tier and channel
whatever the segment and days overdue). For each rule with at least
``min_events`` actions, the fit replaces:

* the contact outcome distribution (a ``promise_to_pay`` outcome counts as a
  ``conversation`` that ended in a promise; ``payment`` and ``dispute`` as an
  answer that reached the customer);
* the promise rate (promises per conversation) and the kept rate (promises
  followed by a payment within the promise's days plus 3);
* the payment and dispute rates (per reached contact, a payment or dispute
  event within 3 days, before the next action).

Costs, amounts, self-cure and book parameters are kept from the base model
(histories do not carry them). Each fitted figure's basis says what it was
fitted from; rules with too few events keep their base figures and basis."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from escalation.errors import RecordError, UsageError
from escalation.policy import Policy
from escalation.record import Account, HistoryEvent, Outcome, parse_account
from escalation.simulate.model import REACHED, Rate, ResponseModel, ResponseRule

__all__ = ["Fit", "calibrate", "dump_model"]

_WINDOW = dt.timedelta(days=3)
_SAMPLED = {"payment", "promise_to_pay", "dispute"}


@dataclass
class _Counts:
    actions: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    conversations: int = 0
    promises: int = 0
    kept: int = 0
    reached: int = 0
    payments: int = 0
    disputes: int = 0


@dataclass(frozen=True)
class Fit:
    """The fitted model, the events per rule, and how many records were read and skipped."""

    model: ResponseModel
    events: dict[str, int]
    records: int
    skipped: int


def _channel(event: HistoryEvent, policy: Policy) -> str | None:
    if event.channel is not None:
        return event.channel.value
    tier = next((t for t in policy.tiers if t.model.id == event.action), None)
    if tier is None or len(tier.model.channel_order) != 1:
        return None
    return tier.model.channel_order[0].value


def _count(account: Account, policy: Policy, base: ResponseModel, counts: dict[str, _Counts]) -> None:
    tags = {t.model.id: frozenset(t.model.tags) for t in policy.tiers}
    events = sorted(account.history, key=lambda e: e.at)
    actions = [e for e in events if e.action in tags and e.direction.value == "outbound"]
    for k, event in enumerate(actions):
        channel = _channel(event, policy)
        rule = base.default_rule(channel, str(event.action), tags[str(event.action)]) if channel else None
        if rule is None or event.outcome is None:
            continue
        c = counts.setdefault(rule.id, _Counts())
        c.actions += 1
        outcome = event.outcome.value
        spoken = "conversation" if channel in ("phone", "visit") else "delivered"
        shown = spoken if outcome in _SAMPLED else outcome
        c.outcomes[shown] += 1
        if shown == "conversation":
            c.conversations += 1
        if outcome == "promise_to_pay":
            c.promises += 1
            days = rule.promise.days if rule.promise else 7
            end = event.at + dt.timedelta(days=days) + _WINDOW
            c.kept += any(
                p.outcome and p.outcome.value == "payment" and event.at < p.at <= end for p in events
            )
            continue
        if shown not in REACHED:
            continue
        c.reached += 1
        following = actions[k + 1].at if k + 1 < len(actions) else None
        end = min(event.at + _WINDOW, following) if following else event.at + _WINDOW
        after = [e.outcome.value for e in events if e.outcome and event.at <= e.at <= end and e is not event]
        c.payments += outcome == "payment" or "payment" in after
        c.disputes += outcome == "dispute" or "dispute" in after


def _fitted(rule: ResponseRule, c: _Counts, source: str) -> ResponseRule:
    total = sum(c.outcomes.values())
    basis = f"fitted from {c.actions} actions in {source} (escalation simulate calibrate)"
    update: dict[str, Any] = {
        "outcomes": rule.outcomes.model_copy(
            update={"p": {Outcome(k): n / total for k, n in sorted(c.outcomes.items())}, "basis": basis}
        )
    }
    if c.conversations and rule.promise is not None:
        kept = c.kept / c.promises if c.promises else rule.promise.kept
        text = f"fitted: {c.promises} promises in {c.conversations} conversations, {c.kept} kept"
        update["promise"] = rule.promise.model_copy(
            update={"p": c.promises / c.conversations, "kept": kept, "basis": text}
        )  # fmt: skip
    if c.reached:
        for name, hits in (("payment", c.payments), ("dispute", c.disputes)):
            update[name] = Rate(p=hits / c.reached, basis=f"fitted: {hits} in {c.reached} reached contacts")
    return rule.model_copy(update=update)


def calibrate(policy: Policy, portfolio: str | Path, base: ResponseModel, *, min_events: int = 30) -> Fit:
    """Fit ``base``'s rates from the histories of ``portfolio`` (see the module docstring)."""
    from escalation.portfolio.io import read_portfolio

    counts: dict[str, _Counts] = {}
    records = skipped = 0
    for item in read_portfolio(portfolio):
        records += 1
        if item.record is None:
            skipped += 1
            continue
        try:
            account = parse_account(item.record)
        except RecordError:
            skipped += 1
            continue
        _count(account, policy, base, counts)
    if not counts:
        raise UsageError(f"{portfolio}: no history event answers a rule of the model; nothing to fit")
    source = Path(portfolio).name
    rules = tuple(
        _fitted(r, counts[r.id], source) if r.id in counts and counts[r.id].actions >= min_events else r
        for r in base.rules
    )
    header = base.model.model_copy(update={"id": f"{base.model.id}-fitted"[:64]})
    model = ResponseModel.model_validate(
        base.model_copy(update={"rules": rules, "model": header}).model_dump()
    )
    return Fit(model, {k: v.actions for k, v in sorted(counts.items())}, records, skipped)


def dump_model(model: ResponseModel) -> str:
    """A response model as YAML text (loads back with the strict loader)."""
    data = model.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
