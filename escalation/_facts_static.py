"""What fact derivation prepares once: each policy's tier lookups (once per
policy) and each record's event timestamps (once per decision, shared by
validation and the facts)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, TypeAdapter

from escalation.record import Account, Outcome

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["event_stamps", "policy_static"]


def event_stamps(account: Account) -> tuple[float, ...]:
    """The POSIX timestamp of each history event, in record order: converted
    once per decision (validation and facts both read them)."""
    history = account.history
    if not history:
        return ()
    seconds = _seconds_writer()
    if seconds is not None:
        stamps = seconds([e.at for e in history], mode="json")
        if min(map(abs, stamps)) >= _NEAR_EPOCH:
            return tuple(stamps)
    return tuple([e.at.timestamp() for e in history])


# pydantic writes instants as POSIX seconds (`ser_json_temporal`) for a whole list
# in one call, about twice as fast as `timestamp()` per event (each calls the
# tzinfo). It computes whole seconds + microseconds / 1e6: two roundings, which
# equal `timestamp()`'s one (exact microseconds / 10**6) wherever the seconds
# are >= 2**21 away from 1970 (the first rounding's error is then far below
# the distance from any rounding boundary of the sum); nearer, `timestamp()`.
_NEAR_EPOCH = float(2**21)
# instants (seconds, microseconds, offset minutes) where adding the time of day
# as a float first gives another sum: the check below refuses such a writer
_CHECKED = (
    (3_369_262, 281_005, 0),
    (4_652_948, 996_423, 480),
    (5_336_938, 247_829, -330),
    (1_700_000_000, 516_129, 345),
    (-1_000_000_000, 1, 0),
)


@functools.cache
def _seconds_writer() -> Callable[..., list[float]] | None:
    """pydantic's POSIX-seconds writer for lists of instants, when it gives
    exactly ``timestamp()`` on the checked instants (else None: an older
    pydantic without the option, or another formula)."""
    try:
        adapter = TypeAdapter(list[dt.datetime], config=ConfigDict(ser_json_temporal="seconds"))
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        zones = [dt.timezone(dt.timedelta(minutes=m)) for _s, _us, m in _CHECKED]
        sample = [
            (epoch + dt.timedelta(seconds=s, microseconds=us)).astimezone(tz)
            for (s, us, _m), tz in zip(_CHECKED, zones, strict=True)
        ]
        writer: Callable[..., list[float]] = adapter.serializer.to_python
        if writer(sample, mode="json") != [i.timestamp() for i in sample]:
            return None  # pragma: no cover - depends on the installed pydantic
    except Exception:  # pragma: no cover - pydantic without `ser_json_temporal`
        return None
    return writer


@dataclass(frozen=True, slots=True)
class _PolicyStatic:
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


_STATIC: dict[int, _PolicyStatic] = {}


def policy_static(policy: Policy) -> _PolicyStatic:
    """The tier lookups :func:`escalation._facts.derive` needs, built once per policy."""
    found = _STATIC.get(id(policy))
    if found is not None and found.policy is policy:  # the entry holds the policy: its id is not reused
        return found
    tiers = [t.model for t in policy.tiers]
    counting = {t.id: frozenset(t.counting_outcomes) for t in tiers}
    found = _PolicyStatic(
        policy=policy,
        tier_ids=tuple(t.id for t in tiers),
        tier_set=frozenset(t.id for t in tiers),
        counting=counting,
        pending_counts={t.id: Outcome.SENT in counting[t.id] for t in tiers},
        third_party=frozenset(t.id for t in tiers if "third_party" in t.tags),
        tier_keys=tuple((t.id, f"done.{t.id}", f"attempts.{t.id}", f"days_since.{t.id}") for t in tiers),
        stages=tuple((t.model.id, t.severity) for t in reversed(policy.tiers) if not t.model.ongoing),
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
