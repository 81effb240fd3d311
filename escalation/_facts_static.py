"""What fact derivation prepares once: each policy's tier lookups and the facts
its conditions read (once per policy), each account's event timestamps (once
per `Account` object, shared by validation and the facts), and the evaluation
instant in an account's zone (once per instant and zone: a batch decides every
account at one instant)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from escalation._account_memo import memo_of
from escalation._calendar import start_of_day
from escalation.record import Account, Outcome

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["LocalNow", "PolicyStatic", "day_start", "event_stamps", "in_order", "local_now", "policy_static"]


def event_stamps(account: Account) -> tuple[float, ...]:
    """The POSIX timestamp of each history event, in record order: converted
    once per account (validation and facts both read them, and a dry-run
    checks and decides one account three times)."""
    memo = memo_of(account)
    stamps = memo.stamps
    if stamps is None:
        stamps = memo.stamps = tuple([e.at.timestamp() for e in memo.history])
    return stamps


def in_order(account: Account, stamps: tuple[float, ...]) -> bool:
    """Whether ``stamps`` (:func:`event_stamps` of ``account``) are oldest
    first, as histories usually are (once per account)."""
    memo = memo_of(account)
    if memo.stamps is not stamps:  # not the account's own (a caller's): not kept
        return sorted(stamps) == list(stamps)
    ordered = memo.ordered
    if ordered is None:
        ordered = memo.ordered = sorted(stamps) == list(stamps)
    return ordered


class LocalNow(NamedTuple):
    """The evaluation instant as an account's zone sees it."""

    local: dt.datetime  # `now` in the zone
    today: dt.date  # its local date
    now_ts: float  # `now.timestamp()`
    today_ts: float  # the timestamp of the first instant of `today` in the zone


# zone → (the last instant asked about, what it is there): the entry holds that
# instant, so its identity is never another datetime's
_LOCAL: dict[ZoneInfo, tuple[dt.datetime, LocalNow]] = {}
_STARTS: dict[tuple[dt.date, ZoneInfo], tuple[dt.datetime, float]] = {}


def local_now(now: dt.datetime, tz: ZoneInfo) -> LocalNow:
    """``now`` in ``tz``, computed once per instant object and zone."""
    hit = _LOCAL.get(tz)
    if hit is not None and hit[0] is now:
        return hit[1]
    local = now.astimezone(tz)
    today = local.date()
    found = LocalNow(local, today, now.timestamp(), day_start(today, tz)[1])
    if len(_LOCAL) >= 256:  # zones are few; bounded all the same
        _LOCAL.clear()
    _LOCAL[tz] = (now, found)
    return found


def day_start(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, float]:
    """:func:`~escalation._calendar.start_of_day` of ``day`` in ``tz`` and its
    timestamp (kept: the accounts of a batch share a few days)."""
    key = (day, tz)
    found = _STARTS.get(key)
    if found is None:
        start = start_of_day(day, tz)
        if len(_STARTS) >= 4096:
            _STARTS.clear()
        found = _STARTS[key] = (start, start.timestamp())
    return found


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
    # the same names by family: `done.` and `attempts.` in tier order, `days_since.` by tier
    done_keys: tuple[str, ...]
    attempts_keys: tuple[str, ...]
    days_keys: dict[str, str]
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
        done_keys=tuple(f"done.{t.id}" for t in tiers),
        attempts_keys=tuple(f"attempts.{t.id}" for t in tiers),
        days_keys={t.id: f"days_since.{t.id}" for t in tiers},
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
