"""A second policy that differs from one already decided on the batch only in
its holds' and tiers' conditions (a dry-run's candidate and baseline, most
often): an account on which every such condition is alike under both gets
the same ladder outcome, so only the accounts where one differs are decided
again, over their facts alone (:func:`._subset.subset`).

What the ladder reads of a policy besides those conditions — holds and tiers
but their ``when``, the header, the guards and which tier and channel each
guards (with their conditions), the tags — must be equal for two policies to
be twins (:func:`ladder_key`); conditions are compared by their trees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from escalation.backends.columnar._asked import seed_known
from escalation.backends.columnar._conditions import _key, truth
from escalation.backends.columnar._events import VerdictMemo, signature
from escalation.backends.columnar._subset import subset

if TYPE_CHECKING:
    from escalation._ladder import LadderPlan
    from escalation.backends.columnar._facts import Facts
    from escalation.backends.columnar._ladder import Outcome
    from escalation.policy import Policy
    from escalation.policy._tree import _Node

__all__ = ["decide_twin", "ladder_key"]

_HEADER_ASIDE = {"id", "version", "description"}  # read by no ladder step
# per policy object (kept with it, so its id is not reused): its ladder key
_KEYS: dict[int, tuple[Policy, str]] = {}


def ladder_key(policy: Policy, plan: LadderPlan) -> str:
    """Everything the columnar ladder reads of ``policy`` but its holds' and tiers' conditions."""
    found = _KEYS.get(id(policy))
    if found is not None and found[0] is policy:
        return found[1]
    if len(_KEYS) > 1000:  # (policies loaded one after another: keep it bounded)
        _KEYS.clear()
    parts = [
        policy.header.model_dump_json(exclude=_HEADER_ASIDE),
        repr(policy.flags),
        *(h.model.model_dump_json(exclude={"when"}) for h in policy.holds),
        *(t.model.model_dump_json(exclude={"when"}) for t in policy.tiers),
        *(signature(g) for g in policy.guards),
        *(
            f"{tier}|{channel}|{[signature(r) for r in rules]}"
            for (tier, channel), rules in sorted(plan.guards_for.items(), key=lambda kv: repr(kv[0]))
        ),
        repr(sorted(plan.tags_of.items())),
    ]
    key = "\n".join(parts)
    _KEYS[id(policy)] = (policy, key)
    return key


def _trees(policy: Policy) -> list[_Node]:
    return [h.when.tree for h in policy.holds] + [t.when.tree for t in policy.tiers]


def _copy(out: Outcome) -> Outcome:
    return replace(
        out,
        covered=out.covered.copy(),
        status=out.status.copy(),
        action=out.action.copy(),
        channel=out.channel.copy(),
        severity=out.severity.copy(),
        hold=out.hold.copy(),
        next_eligible_at=out.next_eligible_at.copy(),
        blocked={gid: mask.copy() for gid, mask in out.blocked.items()},
        why=out.why.copy(),
    )


Decide = Callable[["Policy", "LadderPlan", "Facts"], "Outcome"]


def decide_twin(policy: Policy, plan: LadderPlan, facts: Facts, decide: Decide) -> Outcome:
    """``decide(policy, plan, facts)``, with the outcome of the first policy
    decided on ``facts`` with the same :func:`ladder_key` reused for every
    account whose hold and tier conditions are alike under both."""
    key = ("ladder outcome", ladder_key(policy, plan))
    kept: tuple[Policy, Outcome] | None = facts.cache.get(key)
    if kept is None:
        out = decide(policy, plan, facts)
        facts.cache[key] = (policy, _copy(out))  # (the caller may change `out`: offers)
        return out
    first, before = kept
    differ = np.zeros(facts.n, bool)
    for mine, theirs in zip(_trees(policy), _trees(first), strict=True):
        if mine is not theirs and _key(mine) != _key(theirs):
            differ |= truth(mine, facts)[0] != truth(theirs, facts)[0]
    rows = np.flatnonzero(differ)
    out = _copy(before)
    if not len(rows):
        return out
    part = subset(facts, rows) if len(rows) * 4 < facts.n else None
    if part is None:
        return decide(policy, plan, facts)
    _seed(part, facts, rows)
    seed_known(part, facts, rows)
    _merge(out, decide(policy, plan, part), rows)
    return out


def _seed(part: Facts, facts: Facts, rows: np.ndarray) -> None:
    """Give ``part`` (the facts of ``rows``) what was worked out over the whole
    batch and reads nothing of other rows: conditions' truths and verdicts at
    now, taken at the rows (their memos are keyed alike: ``_conditions.truth``,
    ``_events.VerdictMemo``)."""
    truths: dict[str, tuple[np.ndarray, np.ndarray]] | None = facts.cache.get("truths")
    if truths is not None and "truths" not in part.cache:
        part.cache["truths"] = {key: (yes[rows], no[rows]) for key, (yes, no) in truths.items()}
    for key, memo in list(facts.cache.items()):
        if isinstance(key, tuple) and key and key[0] == "shared" and isinstance(memo, VerdictMemo):
            mine = VerdictMemo.of(part, key[1])
            for which, (blocked, until, unsure) in memo.now.items():
                mine.now.setdefault(which, (blocked[rows], until[rows], unsure[rows]))


def _merge(out: Outcome, part: Outcome, rows: np.ndarray) -> None:
    """Write ``part`` (the outcome of the accounts ``rows``) into ``out`` at those rows."""
    for name in ("covered", "severity", "why"):
        column: Any = getattr(out, name)
        column[rows] = getattr(part, name)
    for name in ("status", "action", "channel", "hold", "next_eligible_at"):
        getattr(out, name).assign(rows, getattr(part, name))
    for gid in set(out.blocked) | set(part.blocked):
        mask = out.blocked.get(gid)
        if mask is None:
            mask = out.blocked[gid] = np.zeros(len(out.covered), bool)
        theirs = part.blocked.get(gid)
        mask[rows] = theirs if theirs is not None else False
