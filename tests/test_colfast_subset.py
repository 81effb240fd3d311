"""Guard verdicts over a subset of a batch's accounts (the deferred tiers' fast
path, ``_subset.subset``) against the same verdicts over the whole batch, read
at the subset's rows: any rows, any instants, every guard of every profile."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation._ladder import LadderPlan  # noqa: E402
from escalation.backends.columnar._facts import Facts, derive_batch  # noqa: E402
from escalation.backends.columnar._guards import Guards  # noqa: E402
from escalation.backends.columnar._subset import DERIVED, subset  # noqa: E402
from escalation.policy import load_policy  # noqa: E402
from escalation.portfolio.arrow import to_batch  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
_BATCHES: dict[str, tuple[object, LadderPlan, Facts]] = {}


def _facts(profile: str) -> tuple[object, LadderPlan, Facts]:
    if profile not in _BATCHES:
        policy = load_policy(ROOT / PROFILES[profile].policy)
        records = list(generate(300, 5, profile, NOW))
        for k, record in enumerate(records[::7]):  # some accounts in a second zone
            record["timezones"] = [["Europe/London", "America/New_York", "Asia/Kolkata"][k % 3]]
        facts = derive_batch(to_batch(list(enumerate(records, 1))), policy, NOW)
        _BATCHES[profile] = (policy, LadderPlan.build(policy), facts)
    return _BATCHES[profile]


def test_a_subset_takes_every_part_of_the_facts() -> None:
    """The fields and derived cache entries ``subset`` knows are all there are
    (a new one must be taken at the rows there too)."""
    _policy, _plan, facts = _facts("cn-card")
    assert set(facts.cache) == DERIVED
    handled = {
        "n", "now_us", "fallback", "why", "columns", "zone_names", "today", "tier_done", "tier_last",
        "tier_counted", "stage", "actions_today", "ev_acc", "ev_ts", "ev_action", "ev_channel",
        "ev_outcome", "ev_outbound", "ev_address", "ev_in_cycle", "ev_day", "cache", "zone_slots",
    }  # fmt: skip
    assert {f.name for f in dataclasses.fields(Facts)} == handled


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.sampled_from(sorted(PROFILES)),
    seed=st.integers(0, 2**32 - 1),
    share=st.floats(0.005, 0.6),
    hours=st.lists(st.integers(0, 24 * 40), min_size=1, max_size=3),
)
def test_verdicts_over_a_subset_are_the_whole_batch_s(
    profile: str, seed: int, share: float, hours: list[int]
) -> None:
    policy, plan, facts = _facts(profile)
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(rng.random(facts.n) < share)
    if not len(rows):
        rows = np.asarray([int(rng.integers(facts.n))])
    # each account its own instant: now, or some hours later
    at = facts.now_us + rng.choice(np.asarray(hours, np.int64), facts.n) * 3_600_000_000
    whole = Guards(policy, plan, facts)  # type: ignore[arg-type]
    sub = subset(facts, rows)
    assert sub is not None
    few = Guards(policy, plan, sub)  # type: ignore[arg-type]
    checked = 0
    for (_tier, channel), rules in plan.guards_for.items():
        for rule in rules:
            want = whole.verdict(rule, channel, at)
            got = few.verdict(rule, channel, at[rows])
            for part_want, part_got in zip(want, got, strict=True):
                assert np.array_equal(part_want[rows], part_got), (rule.model.id, channel)
            checked += 1
    assert checked > 0
