"""What fact derivation prepares once: each policy's tier lookups and the facts
its conditions read (once per policy), and each account's event timestamps
(once per `Account` object, shared by validation and the facts)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from escalation._account_memo import memo_of
from escalation.record import Account, Outcome

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["PolicyStatic", "event_stamps", "policy_static"]


def event_stamps(account: Account) -> tuple[float, ...]:
    """The POSIX timestamp of each history event, in record order: converted
    once per account (validation and facts both read them, and a dry-run
    checks and decides one account three times)."""
    memo = memo_of(account)
    stamps = memo.stamps
    if stamps is None:
        stamps = memo.stamps = tuple([e.at.timestamp() for e in memo.history])
    return stamps


@dataclass(frozen=True, slots=True)
class PolicyStatic:
    """What :func:`derive` needs of a policy, computed once per policy."""

    policy: Policy
    tier_ids: tuple[str, ...]
    tier_set: frozenset[str]
    counting: dict[str, frozenset[Outcome]]
    pending_counts: dict[str, bool]
    third_party: frozenset[str]
    # each tier with the names of its `done.`, `attempts.` and `days_since.` facts
    tier_keys: tuple[tuple[str, str, str, str], ...]
    # the non-ongoing tiers with their severities, most severe (last in the policy) first
    stages: tuple[tuple[str, int], ...]
    # the agency tiers (`place`, `recall`): the agency each places the account with (a recall: None)
    placing: dict[str, str | None]
    # every fact a condition of the policy names (tiers, holds, guards, offers): nothing
    # else reads the optional families `derive(..., read_only=True)` leaves out
    read: frozenset[str]
    # whether a condition reads a per-channel contact window (`contacts_7d.*`, `contacts_30d.*`)
    reads_contacts: bool


_STATIC: dict[int, PolicyStatic] = {}


def policy_static(policy: Policy) -> PolicyStatic:
    """The tier lookups :func:`escalation._facts.derive` needs, built once per policy."""
    found = _STATIC.get(id(policy))
    if found is not None and found.policy is policy:  # the entry holds the policy: its id is not reused
        return found
    from escalation.backends import named_conditions  # (it imports the facts' module)

    tiers = [t.model for t in policy.tiers]
    counting = {t.id: frozenset(t.counting_outcomes) for t in tiers}
    read = frozenset(name for c in named_conditions(policy).values() for name in c.facts)
    found = PolicyStatic(
        policy=policy,
        tier_ids=tuple(t.id for t in tiers),
        tier_set=frozenset(t.id for t in tiers),
        counting=counting,
        pending_counts={t.id: Outcome.SENT in counting[t.id] for t in tiers},
        third_party=frozenset(t.id for t in tiers if "third_party" in t.tags),
        tier_keys=tuple((t.id, f"done.{t.id}", f"attempts.{t.id}", f"days_since.{t.id}") for t in tiers),
        stages=tuple((t.model.id, t.severity) for t in reversed(policy.tiers) if not t.model.ongoing),
        placing={t.id: t.agency if t.kind == "place" else None for t in tiers if t.kind != "contact"},
        read=read,
        reads_contacts=any(name.startswith(("contacts_7d.", "contacts_30d.")) for name in read),
    )
    if len(_STATIC) >= 256:  # policies are few; a long-lived process reloading them stays bounded
        _STATIC.clear()
    _STATIC[id(policy)] = found
    return found


def json_value(value: Any) -> Any:
    """A fact value in a deterministic JSON-safe form (for traces)."""
    if value is None or value.__class__ in (int, str, bool):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted(str(v) for v in value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
