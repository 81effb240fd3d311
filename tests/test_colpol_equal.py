"""The columnar policies stage's shared and narrowed passes held equal to their
plain forms: conditions memoised per batch, contact-hours windows and
reopening over the rows asked, multi-zone searches remembered, candidate and
baseline deciding one batch together (verdicts shared) — and the decisions
equal to the reference engine's, on generated accounts of every profile with
accounts in several zones, offers and promises."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation import Engine  # noqa: E402
from escalation._ladder import LadderPlan  # noqa: E402
from escalation.backends.columnar import (  # noqa: E402
    ColumnarPolicy,
    _hours,
    decide_table,
)
from escalation.backends.columnar._conditions import truth  # noqa: E402
from escalation.backends.columnar._facts import Facts, derive_batch  # noqa: E402
from escalation.backends.columnar._guards import Guards  # noqa: E402
from escalation.backends.columnar._multizone import next_open_multi  # noqa: E402
from escalation.backends.columnar._subset import DERIVED  # noqa: E402
from escalation.guards import ContactHoursGuard  # noqa: E402
from escalation.policy import Policy, load_policy  # noqa: E402
from escalation.portfolio.arrow import to_batch  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402
from escalation.portfolio.writer import decision_row  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
START = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)  # a Friday: the week spans a weekend
KEYS = ("status", "action", "channel", "severity", "next_eligible_at", "hold", "blocked_guards")
ZONES = ["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
HOUR = 3_600_000_000
_BATCHES: dict[str, tuple[Policy, LadderPlan, Facts]] = {}


def _records(profile: str, count: int, seed: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Generated accounts, every fifth one also in one or two other zones."""
    records = list(generate(count, seed, profile, now))
    for k, record in enumerate(records[::5]):
        record["timezones"] = [ZONES[k % 4], ZONES[(k + 1) % 4]][: 1 + k % 2]
    return records


def _facts(profile: str) -> tuple[Policy, LadderPlan, Facts]:
    if profile not in _BATCHES:
        policy = load_policy(ROOT / PROFILES[profile].policy)
        facts = derive_batch(to_batch(list(enumerate(_records(profile, 300, 5, NOW), 1))), policy, NOW)
        _BATCHES[profile] = (policy, LadderPlan.build(policy), facts)
    return _BATCHES[profile]


def _fresh(facts: Facts) -> Facts:
    """``facts`` with only what ``derive_batch`` filled in its cache (no memo)."""
    return dataclasses.replace(facts, cache={k: v for k, v in facts.cache.items() if k in DERIVED})


def _with_guard(text: str, calls: int) -> str:
    """Policy text with a weekly cap of ``calls`` phone calls (a guard many accounts meet)."""
    guard = (
        "guards:\n  - id: colpol-weekly-calls\n    kind: frequency\n    channels: [phone]\n"
        f"    max: {calls}\n    window: 7d\n    count: {{channels: [phone]}}\n"
        "    authority: policy\n    reason: a test cap\n    cite: a test\n"
    )
    return text.replace("guards:\n", guard, 1)


def _pair(policy_path: Path, tmp: Path) -> tuple[Policy, Policy]:
    """The policy with a weekly cap of 2 calls, and a variant with the cap at 1,
    its first tier threshold a day later and, where it has them, its own legal
    hours an hour later and its notice period a day shorter: guards with the
    same ids as the first's but other definitions."""
    text = policy_path.read_text()
    (tmp / "original.yaml").write_text(_with_guard(text, 2))
    text = re.sub(r"days_overdue >= (\d+)", lambda m: f"days_overdue >= {int(m.group(1)) + 1}", text, count=1)
    text = text.replace('from: "09:00"', 'from: "10:00"').replace("at_least: 7d", "at_least: 6d", 1)
    (tmp / "variant.yaml").write_text(_with_guard(text, 1))  # (shipped packs are found by name)
    return load_policy(tmp / "original.yaml"), load_policy(tmp / "variant.yaml")


class TestTruths:
    def test_memoised_truths_are_the_plain_ones(self) -> None:
        """Every condition of every profile's policy, asked after all the others
        (memo hits), is the same pair of masks as worked out on a fresh batch."""
        checked = 0
        for profile in sorted(PROFILES):
            policy, _plan, facts = _facts(profile)
            trees = [h.when.tree for h in policy.holds] + [t.when.tree for t in policy.tiers]
            trees += [c.tree for g in policy.guards for c in g.conditions.values()]
            trees += [g.unless.tree for g in policy.guards if g.unless is not None]
            trees += [o.when.tree for o in policy.offers]
            for tree in trees:
                truth(tree, facts)
            for tree in trees:
                want = truth(tree, _fresh(facts))
                got = truth(tree, facts)
                assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1]), repr(tree)
                checked += 1
        assert checked > 50


def _hours_rules(policy: Policy) -> list[Any]:
    return [g for g in policy.guards if isinstance(g.model, ContactHoursGuard)]


class TestHours:
    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        profile=st.sampled_from(sorted(PROFILES)),
        seed=st.integers(0, 2**32 - 1),
        share=st.floats(0.005, 0.7),
        hours=st.lists(st.integers(0, 24 * 21), min_size=1, max_size=4),
    )
    def test_windows_over_rows_are_the_whole_batch_s(
        self, profile: str, seed: int, share: float, hours: list[int]
    ) -> None:
        """Window open, next opening and reopening worked over some rows are the
        whole batch's read at those rows (multi-zone accounts included)."""
        policy, plan, facts = _facts(profile)
        rng = np.random.default_rng(seed)
        rows = np.flatnonzero(rng.random(facts.n) < share)
        if not len(rows):
            rows = np.asarray([int(rng.integers(facts.n))])
        at = facts.now_us + rng.choice(np.asarray(hours, np.int64), facts.n) * HOUR
        at += rng.integers(0, 60, facts.n) * 60_000_000
        guards = Guards(policy, plan, _fresh(facts))
        rules = _hours_rules(policy)
        assert rules
        for rule in rules:
            g = rule.model
            whole_open = guards.window_open(g, at)
            assert np.array_equal(whole_open[rows], guards.window_open(g, at[rows], rows))
            shut = ~whole_open
            whole_next = guards.next_open(g, at, shut)
            part_next = guards.next_open(g, at[rows], shut[rows], rows)
            for want, got in zip(whole_next, part_next, strict=True):
                assert np.array_equal(want[rows], got)
        known = rng.random(facts.n) < 0.8
        whole = guards.reopen(tuple(rules), at, known)
        part = guards.reopen(tuple(rules), at[rows], known[rows], rows)
        for want, got in zip(whole, part, strict=True):
            assert np.array_equal(want[rows], got)

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        profile=st.sampled_from(sorted(PROFILES)),
        seed=st.integers(0, 2**32 - 1),
        hours=st.lists(st.integers(0, 24 * 21), min_size=1, max_size=3),
    )
    def test_remembered_multi_zone_searches_are_the_search(
        self, profile: str, seed: int, hours: list[int]
    ) -> None:
        """The multi-zone search asked once per (zones, instant) and remembered
        across calls gives each account what the search over it gives."""
        policy, plan, facts = _facts(profile)
        rng = np.random.default_rng(seed)
        multi = facts.cache["multi_rows"]
        assert len(multi)
        at = facts.now_us + rng.choice(np.asarray(hours, np.int64), len(multi)) * HOUR  # repeated instants
        guards = Guards(policy, plan, facts)
        for rule in _hours_rules(policy):
            want = next_open_multi(facts, rule.model, multi, at, guards._holiday)
            for _ in range(2):  # searched, then remembered
                got = _hours._next_open_multi(facts, guards._holiday, rule.model, multi, at)
                assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])


def _tables(result: Any) -> list[list[dict[str, Any]]]:
    return [table.to_pylist() for table in result.tables]


class TestPolicies:
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        profile=st.sampled_from(sorted(PROFILES)),
        minutes=st.integers(0, 7 * 24 * 60 - 1),
        seed=st.integers(0, 1000),
    )
    def test_candidate_and_baseline_together_are_each_alone(
        self, tmp_path_factory: pytest.TempPathFactory, profile: str, minutes: int, seed: int
    ) -> None:
        """Two policies deciding one batch (facts, conditions and verdicts shared
        where equal) give the decision tables each gives alone — the variant's
        guards share ids with the original's but not definitions."""
        now = START + dt.timedelta(minutes=minutes)
        original, variant = _pair(ROOT / PROFILES[profile].policy, tmp_path_factory.mktemp("pair"))
        batch = to_batch(list(enumerate(_records(profile, 150, seed, now), 1)))
        both = decide_table(batch, [ColumnarPolicy(original), ColumnarPolicy(variant)], now=now, dicts=False)
        alone = [decide_table(batch, [ColumnarPolicy(p)], now=now, dicts=False) for p in (original, variant)]
        assert _tables(both) == [_tables(alone[0])[0], _tables(alone[1])[0]]
        assert both.vectorised >= 0.5 * len(batch)

    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        profile=st.sampled_from(sorted(PROFILES)),
        minutes=st.integers(0, 7 * 24 * 60 - 1),
        seed=st.integers(0, 1000),
        variant=st.booleans(),
    )
    def test_columnar_agrees_with_the_reference_engine(
        self, tmp_path_factory: pytest.TempPathFactory, profile: str, minutes: int, seed: int, variant: bool
    ) -> None:
        """Each policy's decisions, from a batch decided with another policy
        beside it, are the reference engine's on every row (accounts in several
        zones, offers, promises) — zero differing decisions."""
        now = START + dt.timedelta(minutes=minutes)
        shipped = load_policy(ROOT / PROFILES[profile].policy)
        policies = [shipped, _pair(ROOT / PROFILES[profile].policy, tmp_path_factory.mktemp("pair"))[1]]
        if variant:
            policies.reverse()
        records = _records(profile, 150, seed, now)
        result = decide_table(
            to_batch(list(enumerate(records, 1))), [ColumnarPolicy(p) for p in policies], now=now
        )
        differing = []
        for p, policy in enumerate(policies):
            engine = Engine(policy)
            for i, record in enumerate(records):
                got = result.decisions[p][i]
                try:
                    ref: dict[str, Any] | None = decision_row(engine.decide(record, now=now, trace=False))
                except Exception:  # a record the reference engine refuses: an error row on both paths
                    ref = None
                if (ref is None) != (got is None) or (
                    ref is not None and got is not None and any(ref[k] != got[k] for k in KEYS)
                ):
                    differing.append((p, record.get("id"), ref, got))
        assert differing[:3] == []
        assert result.vectorised >= 0.5 * len(records), result.fallback_reasons


def test_a_window_opening_is_never_read_for_another_guard() -> None:
    """The openings memo is keyed by guard id: an entry left by a guard that is gone
    (its id now another guard's, as in a process that loads policies again and
    again) must not answer for the new guard."""
    from escalation.backends.columnar import _multizone

    def hours(start: str) -> ContactHoursGuard:
        return ContactHoursGuard.model_validate(
            {"id": "hours", "kind": "contact_hours", "from": start, "to": "21:00", "reason": "r", "cite": "c"}
        )

    early, late = hours("08:00"), hours("10:00")
    day = (dt.date(2026, 11, 23) - dt.date(1970, 1, 1)).days
    assert _multizone.opening(early, "Asia/Shanghai", day) != _multizone.opening(late, "Asia/Shanghai", day)
    # the early guard's entry filed under the late guard's id: what an id reuse looks like
    _multizone._openings[(id(late), "Europe/London", day)] = (
        early,
        *_multizone.opening(early, "Europe/London", day),
    )
    us, _open = _multizone.opening(late, "Europe/London", day)
    ten = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)  # London is on UTC in November
    assert us == (ten - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
