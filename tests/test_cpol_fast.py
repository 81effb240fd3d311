"""The columnar policies stage's narrowed passes held equal to their plain forms:
event-based guard verdicts at now worked out only for the rows asked (over
subsets, asked again and again as the ladder asks), contact hours worked out
once per zone group and distinct instant, set membership from one flattening
of the lists, subsets' event ranges from per-account counts — every guard of
every profile's policy, accounts in several zones included."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation._ladder import LadderPlan  # noqa: E402
from escalation.backends.columnar import _hours  # noqa: E402
from escalation.backends.columnar._conditions import _set_member  # noqa: E402
from escalation.backends.columnar._facts import Facts, derive_batch  # noqa: E402
from escalation.backends.columnar._guards import Guards  # noqa: E402
from escalation.backends.columnar._local import zone_rows  # noqa: E402
from escalation.backends.columnar._subset import DERIVED, _events_and_owners, _events_of, subset  # noqa: E402
from escalation.guards import ContactHoursGuard  # noqa: E402
from escalation.policy import Policy, load_policy  # noqa: E402
from escalation.portfolio.arrow import to_batch  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
HOUR = 3_600_000_000
ZONES = ["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
_BATCHES: dict[tuple[str, int], tuple[Policy, LadderPlan, Facts]] = {}


def _facts(profile: str, minutes: int = 0) -> tuple[Policy, LadderPlan, Facts]:
    """A batch of 400 generated accounts (every fifth in one or two more zones),
    derived ``minutes`` after NOW (the windows are open or shut)."""
    key = (profile, minutes)
    if key not in _BATCHES:
        now = NOW + dt.timedelta(minutes=minutes)
        policy = load_policy(ROOT / PROFILES[profile].policy)
        records = list(generate(400, 11, profile, now))
        for k, record in enumerate(records[::5]):
            record["timezones"] = [ZONES[k % 4], ZONES[(k + 1) % 4]][: 1 + k % 2]
        facts = derive_batch(to_batch(list(enumerate(records, 1))), policy, now)
        _BATCHES[key] = (policy, LadderPlan.build(policy), facts)
    return _BATCHES[key]


def _fresh(facts: Facts) -> Facts:
    """``facts`` with only what ``derive_batch`` filled in its cache (no memo)."""
    return dataclasses.replace(facts, cache={k: v for k, v in facts.cache.items() if k in DERIVED})


def _rows(rng: Any, n: int, share: float) -> Any:
    rows = np.flatnonzero(rng.random(n) < share)
    return rows if len(rows) else np.asarray([int(rng.integers(n))])


class TestAskedVerdicts:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        profile=st.sampled_from(sorted(PROFILES)),
        minutes=st.integers(0, 7 * 24 * 60 - 1),
        seed=st.integers(0, 2**32 - 1),
        shares=st.lists(st.floats(0.002, 0.8), min_size=1, max_size=4),
    )
    def test_verdicts_at_now_over_the_rows_asked_are_the_whole_batch_s(
        self, profile: str, minutes: int, seed: int, shares: list[float]
    ) -> None:
        """Each guard on each channel, asked about several sets of rows in turn
        (overlapping: some rows known from an earlier ask, a few or most of the
        batch), is at those rows what the plain pass over the batch gives."""
        policy, plan, facts = _facts(profile, minutes % (3 * 24 * 60))
        rng = np.random.default_rng(seed)
        plain = Guards(policy, plan, _fresh(facts))
        asked = Guards(policy, plan, _fresh(facts))
        checked = 0
        for share in shares:
            rows = _rows(rng, facts.n, share)
            for (_tier, channel), rules in plan.guards_for.items():
                for rule in rules:
                    want = plain.verdict(rule, channel)
                    got = asked.verdict(rule, channel, rows=rows)
                    for w, g in zip(want, got, strict=True):
                        assert np.array_equal(w[rows], g[rows]), (rule.model.id, channel, len(rows))
                    checked += 1
        assert checked > 0


def _hours_rules(policy: Policy) -> list[ContactHoursGuard]:
    return [g.model for g in policy.guards if isinstance(g.model, ContactHoursGuard)]


class TestHoursOncePerGroup:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(profile=st.sampled_from(sorted(PROFILES)), minutes=st.integers(0, 7 * 24 * 60 - 1))
    def test_at_now_once_per_zone_group_is_the_whole_batch_s(self, profile: str, minutes: int) -> None:
        policy, plan, facts = _facts(profile, minutes % (3 * 24 * 60))
        guards = Guards(policy, plan, _fresh(facts))
        now = np.full(facts.n, facts.now_us, np.int64)
        rules = _hours_rules(policy)
        assert rules
        for g in rules:
            shut = ~guards.window_open(g, now)
            want = guards.next_open(g, now, shut)[0]
            got = _hours.shut_at_now(guards.facts, guards._holiday, g, facts.now_us)
            assert np.array_equal(shut, got[0]) and np.array_equal(want, got[1]), g.id

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        profile=st.sampled_from(sorted(PROFILES)),
        seed=st.integers(0, 2**32 - 1),
        share=st.floats(0.01, 1.0),
        hours=st.lists(st.integers(-24, 24 * 21), min_size=1, max_size=5),
        spread=st.booleans(),
    )
    def test_once_per_distinct_instant_is_each_row_s(
        self, profile: str, seed: int, share: float, hours: list[int], spread: bool
    ) -> None:
        """Instants shared by many accounts (a few hours, or each its own minute)
        over the batch or some rows: shut, next opening and found as the plain pass."""
        policy, plan, facts = _facts(profile)
        rng = np.random.default_rng(seed)
        guards = Guards(policy, plan, _fresh(facts))
        at = facts.now_us + rng.choice(np.asarray(hours, np.int64), facts.n) * HOUR
        if spread:
            at += rng.integers(0, 600, facts.n) * 60_000_000
        rows = _rows(rng, facts.n, share)
        for g in _hours_rules(policy):
            for where, instants in ((None, at), (rows, at[rows])):
                shut = ~guards.window_open(g, instants, where)
                want = (shut, *guards.next_open(g, instants, shut, where))
                got = _hours.shut_and_next(guards.facts, guards._holiday, g, instants, where)
                for w, o in zip(want, got, strict=True):
                    assert np.array_equal(w, o), g.id

    def test_a_zone_view_groups_by_its_own_zones(self) -> None:
        """A zone view of the batch copies its cache: its groups are its own."""
        from escalation.backends.columnar._multizone import slot_view

        _policy, _plan, facts = _facts("cn-card")
        facts = _fresh(facts)
        group, _picked = _hours.zone_groups(facts)
        view = slot_view(facts, 1)
        mine, picked = _hours.zone_groups(view)
        multi = view.cache["multi"]
        for a in range(view.n):  # same group: same own zone and, in several zones, the same others
            b = picked[mine[a]]
            assert view.zone_names[a] == view.zone_names[b] and multi[a] == multi[b]
            assert not multi[a] or all(slot[a] == slot[b] for slot in view.zone_slots)
        assert len(group) == len(mine)


class TestSubsetsAndSets:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        profile=st.sampled_from(sorted(PROFILES)), seed=st.integers(0, 2**32 - 1), share=st.floats(0.0, 1.0)
    )
    def test_a_subset_s_events_are_its_accounts_events(self, profile: str, seed: int, share: float) -> None:
        _policy, _plan, facts = _facts(profile)
        rng = np.random.default_rng(seed)
        rows = np.flatnonzero(rng.random(facts.n) < share)
        chosen = np.zeros(facts.n, bool)
        chosen[rows] = True
        fresh = _fresh(facts)
        number = np.full(facts.n, -1, np.int64)
        number[rows] = np.arange(len(rows))
        want = np.flatnonzero(chosen[facts.ev_acc])
        unsorted = _fresh(facts)
        unsorted.cache["events by account"] = False  # the path for events not sorted by account
        for batch in (fresh, fresh, unsorted):  # counted, then from the batch's cache; selected
            events, owners = _events_and_owners(batch, rows)
            assert np.array_equal(events, want) and np.array_equal(_events_of(batch, rows), want)
            assert np.array_equal(owners, number[facts.ev_acc[want]])
        if len(rows):
            zone_rows(fresh)  # the batch's, taken at the rows by the subset
            part = subset(fresh, rows)
            assert part is not None
            for name, _table, mine in part.cache["zone_rows"]:
                assert np.array_equal(mine, part.zone_names == name)

    def test_set_membership_from_one_flattening_is_the_column_s(self) -> None:
        for profile in sorted(PROFILES):
            policy, _plan, facts = _facts(profile)
            fresh = _fresh(facts)
            column = dataclasses.replace(fresh.columns["flags"], members={})  # nothing remembered yet
            plain = dataclasses.replace(column, members={})
            for item in [*sorted(policy.flags), "no-such-flag", "deceased", "hardship"]:
                assert np.array_equal(_set_member(fresh, column, item), plain.member(item)), item
