"""A subset's facts taken when first read (``_subset._Part``) against the same
arrays taken at once; the batch's facts freed without the cycle collector; events
before ``now`` (``_events.before_now``) with and without events after it; guard
verdicts at ``now`` over a subset against the whole batch's when some events
come after ``now``."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import gc
import weakref
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation._ladder import LadderPlan  # noqa: E402
from escalation.backends.columnar._events import before_now  # noqa: E402
from escalation.backends.columnar._facts import Facts, derive_batch  # noqa: E402
from escalation.backends.columnar._guards import Guards  # noqa: E402
from escalation.backends.columnar._ladder import decide  # noqa: E402
from escalation.backends.columnar._subset import _events_and_owners, events_at, subset  # noqa: E402
from escalation.policy import load_policy  # noqa: E402
from escalation.portfolio.arrow import to_batch  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
_PER_ACCOUNT = ("fallback", "zone_names", "today", "stage", "actions_today")
_PER_TIER = ("tier_done", "tier_last", "tier_counted")


def _records(profile: str, late: bool) -> list[dict[str, object]]:
    records = list(generate(300, 11, profile, NOW))
    for k, record in enumerate(records[::9]):  # some accounts in a second zone
        record["timezones"] = [["Europe/London", "America/New_York"][k % 2]]
    if late:  # a few accounts with a call after now (they go to the reference engine)
        for record in records[5::40]:
            history = copy.deepcopy(record.get("history") or [])
            history.append(
                {"at": (NOW + dt.timedelta(hours=3)).isoformat(), "action": None, "channel": "phone",
                 "direction": "outbound", "outcome": "no_answer", "address": "+1-555-0100"}
            )  # fmt: skip
            record["history"] = history
    return records


def _facts(profile: str, late: bool) -> tuple[object, Facts]:
    policy = load_policy(ROOT / PROFILES[profile].policy)
    batch = to_batch(list(enumerate(_records(profile, late), 1)))
    return policy, derive_batch(batch, policy, NOW)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("share", [0.01, 0.2, 0.7])
def test_every_array_of_a_subset_is_the_batch_s_at_its_rows(profile: str, share: float) -> None:
    _policy, facts = _facts(profile, late=False)
    rng = np.random.default_rng(int(share * 100))
    rows = np.flatnonzero(rng.random(facts.n) < share)
    part = subset(facts, rows)
    assert part is not None
    events, owners = _events_and_owners(facts, rows)
    assert len(events) > 0
    pick = np.flatnonzero(rng.random(len(events)) < 0.5)
    # read at some events before the whole array is taken, then after
    before = {name: events_at(part, name, pick) for name in ("ev_day", "ev_address", "ev_ts")}
    for name, values in before.items():
        assert np.array_equal(values, getattr(facts, name)[events[pick]]), name
    for field in dataclasses.fields(Facts):
        name = field.name
        got = getattr(part, name)
        if name in _PER_ACCOUNT:
            want = getattr(facts, name)[rows]
        elif name in _PER_TIER:
            want = getattr(facts, name)[:, rows]
        elif name == "ev_acc":
            want = owners
        elif name.startswith("ev_"):
            want = getattr(facts, name)[events]
        elif name == "zone_slots":
            assert len(got) == len(facts.zone_slots)
            for mine, theirs in zip(got, facts.zone_slots, strict=True):
                assert list(mine) == list(theirs[rows])
            continue
        elif name == "n":
            assert got == len(rows)
            continue
        elif name == "now_us":
            assert got == facts.now_us
            continue
        else:  # why, columns, cache: built with the subset, not taken lazily
            assert got is not None
            continue
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert list(got.ravel()) == list(want.ravel()), name
    for name in ("ev_day", "ev_address", "ev_ts"):  # the whole array is taken now
        assert np.array_equal(events_at(part, name, pick), getattr(part, name)[pick]), name
    with pytest.raises(AttributeError):
        part.no_such_fact  # type: ignore[attr-defined]  # noqa: B018 - the look-up is the test


def test_a_batch_s_facts_are_freed_when_dropped_without_the_cycle_collector() -> None:
    """Its subsets sit in its cache; they must not point back at it (a cycle kept
    every batch of a dry-run alive until the collector ran: 1 GiB at 1M accounts)."""
    policy, facts = _facts("cn-card", late=False)
    plan = LadderPlan.build(policy)  # type: ignore[arg-type]
    decide(policy, plan, facts)  # type: ignore[arg-type]
    assert any(isinstance(k, tuple) and k[0] == "subset" for k in facts.cache)  # subsets were taken
    gc.collect()
    gc.disable()
    try:
        ref = weakref.ref(facts)
        del facts
        assert ref() is None
    finally:
        gc.enable()


def test_events_before_now_are_none_without_a_later_event_and_a_mask_with_one() -> None:
    _policy, quiet = _facts("cn-card", late=False)
    assert before_now(quiet) is None
    _policy, facts = _facts("cn-card", late=True)
    mask = before_now(facts)
    assert mask is not None and not mask.all()
    assert np.array_equal(mask, facts.ev_ts <= facts.now_us)
    rows = np.arange(0, facts.n, 3)
    part = subset(facts, rows)
    assert part is not None and "events after now" not in part.cache  # worked out over its own events
    assert np.array_equal(before_now(part), part.ev_ts <= part.now_us)
    quiet_part = subset(quiet, rows)
    assert quiet_part is not None and quiet_part.cache["events after now"] is False
    assert before_now(quiet_part) is None


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_verdicts_at_now_over_a_subset_are_the_whole_batch_s_with_later_events(profile: str) -> None:
    policy, facts = _facts(profile, late=True)
    plan = LadderPlan.build(policy)  # type: ignore[arg-type]
    rows = np.flatnonzero(np.random.default_rng(3).random(facts.n) < 0.3)
    whole = Guards(policy, plan, facts)  # type: ignore[arg-type]
    part = subset(facts, rows)
    assert part is not None
    few = Guards(policy, plan, part)  # type: ignore[arg-type]
    checked = 0
    for (_tier, channel), rules in plan.guards_for.items():
        for rule in rules:
            want = whole.verdict(rule, channel)
            got = few.verdict(rule, channel)
            for part_want, part_got in zip(want, got, strict=True):
                assert np.array_equal(part_want[rows], part_got), (rule.model.id, channel)
            checked += 1
    assert checked > 0
