"""The ladder's fast paths (issue 12) held equal to the code they replaced.

The replaced functions are kept verbatim at the end of this module (from
5c53727: ``_ladder.evaluate`` with its helpers, ``_holds.first_hold``,
``_trace.entry`` and ``Recorder``): every shipped policy's suite cases and
hypothesis-generated accounts must get byte-identical decisions (the whole
JSON: trace, reason, blocked, id...) from the engine and from the reference,
with and without a trace, in both locales, on both evaluators; each
specialised guard checker must give ``check_guard``'s verdict; the planned
holds ``first_hold``'s outcome and trace."""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, EscalationError
from escalation import _reasons as fmt
from escalation._calendar import start_of_day
from escalation._facts import Situation, derive
from escalation._facts_static import json_value
from escalation._holds import HoldOutcome, _hold_until, first_hold_planned
from escalation._ladder_plan import ChannelPlan, LadderPlan, TierPlan
from escalation._language import EventFilter
from escalation._trace import Recorder as FastRecorder
from escalation._trace import entry as fast_entry
from escalation._trace import json_facts
from escalation.backends.rete import rete_unavailable_reason
from escalation.decision import BlockedAction, Decision, EngineInfo, TraceEntry, construct, decision_id
from escalation.guards import EventMatcher, GuardVerdict, check_guard, next_open
from escalation.guards._base import predicate, scanner
from escalation.offers.evaluate import after_ladder
from escalation.placement import agency_of
from escalation.policy import ContactHoursGuard, HoldRule, TierRule
from escalation.policy._closures import _PY_CMP
from escalation.policy._closures import _fact_cmp as fast_fact_cmp
from escalation.policy._tree import MISSING, Facts, TruthFn
from escalation.policy._yaml import load_yaml
from escalation.reasons import Locale, guard_detail, render
from escalation.reasons.parts import (
    ActParts,
    AfterBelow,
    DayFull,
    HeldBack,
    HoldParts,
    Interval,
    NoneParts,
    OfferParts,
    Parts,
    Pending,
    WaitParts,
)
from escalation.record import Channel

from .conftest import SHIPPED
from .strategies import cases
from .test_ladder_fast import filters

ROOT = Path(__file__).resolve().parent.parent
ENGINES = {p.stem: Engine.from_file(p) for p in SHIPPED}
REFERENCE_POLICY = ROOT / "examples" / "cn-lawyer-letter-45.yaml"  # a candidate: other thresholds
RETE = rete_unavailable_reason() is None
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
LOCALES: tuple[Locale, ...] = ("en", "zh-CN")


def suite_cases(path: Path) -> list[tuple[dict[str, Any], dt.datetime]]:
    suite = path.with_name(path.stem + "_test.yaml")
    data = load_yaml(suite.read_bytes(), str(suite)).data
    return [
        ({**data.get("defaults", {}), **case["account"]}, dt.datetime.fromisoformat(case["now"]))
        for case in data.get("cases", [])
    ]


def reference_decide(
    engine: Engine, record: dict[str, Any], now: dt.datetime, trace: bool, locale: Locale
) -> Decision:
    """What ``Engine.decide`` returned before: the same facts and conditions,
    decided by the reference ladder below."""
    account, stamps = engine._checked(record, now)
    sit = derive(account, now, engine.policy, stamps)
    truth = engine._conditions.truth_for(sit)
    return evaluate(engine._plan, sit, truth, engine._info, trace, locale)


def assert_same(engine: Engine, record: dict[str, Any], now: dt.datetime) -> Decision | None:
    """Every mode decides byte-identically on the fast path and the reference;
    a record one refuses the other refuses too."""
    first = None
    for trace in (True, False):
        for locale in LOCALES:
            try:
                got = engine.decide(record, now=now, trace=trace, locale=locale)
            except EscalationError as exc:
                with pytest.raises(type(exc)):
                    reference_decide(engine, record, now, trace, locale)
                return None
            expected = reference_decide(engine, record, now, trace, locale)
            assert got.to_json() == expected.to_json()
            first = first or got
    return first


# --------------------------------------------------------------- whole decisions


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_suite_cases_decide_as_the_reference(path: Path) -> None:
    engine = ENGINES[path.stem]
    found = suite_cases(path)
    assert found
    statuses = {d.status for record, now in found if (d := assert_same(engine, record, now)) is not None}
    assert {"act", "hold", "wait", "none"} <= statuses, statuses


@pytest.mark.skipif(not RETE, reason="rete backend unavailable")
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_suite_cases_decide_as_the_reference_on_rete(path: Path) -> None:
    # the rete evaluator answers conditions through `truth(name)`: the ladder's other path
    engine = Engine.from_file(path, backend="rete")
    for record, now in suite_cases(path)[:40]:
        assert_same(engine, record, now)


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(ENGINES)))
def test_generated_accounts_decide_as_the_reference(data: st.DataObject, which: str) -> None:
    engine = ENGINES[which]
    record, now = data.draw(cases(engine.policy))
    assert_same(engine, record, now)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_candidate_policy_decides_as_the_reference(data: st.DataObject) -> None:
    engine = Engine.from_file(REFERENCE_POLICY)
    record, now = data.draw(cases(engine.policy))
    assert_same(engine, record, now)


# --------------------------------------------------------------- parts


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(ENGINES)), later=st.integers(-48, 40 * 24))
def test_specialised_guards_give_check_guards_verdict(data: st.DataObject, which: str, later: int) -> None:
    engine = ENGINES[which]
    plan = engine._plan
    record, now = data.draw(cases(engine.policy))
    try:
        account, stamps = engine._checked(record, now)
    except EscalationError:
        return
    sit = derive(account, now, engine.policy, stamps)
    truth = engine._conditions.truth_for(sit)
    at = now + dt.timedelta(hours=later)
    compared = 0
    for tp in plan.descending:
        for cp in tp.channels:
            for rule, (_key, check) in zip(cp.guards, cp.checks, strict=True):
                for trace in (None, False):  # figures wanted (default) or not
                    cache = {} if trace is None else {"trace": trace}
                    ref_sit = dataclasses.replace(sit, cache=dict(cache))
                    fast_sit = dataclasses.replace(sit, cache=dict(cache))
                    expected = check_guard(
                        rule, ref_sit, tp.model, cp.channel, at, truth, EventMatcher(ref_sit, plan.tags_of)
                    )
                    got = check(fast_sit, cp.channel, at, truth, EventMatcher(fast_sit, plan.tags_of))
                    assert got == expected, (rule.model.id, cp.channel)
                    compared += 1
    assert compared > 0


def test_plan_numbers_each_guard_and_channel_once() -> None:
    for engine in ENGINES.values():
        seen: dict[int, tuple[int, Channel]] = {}
        for tp in engine._plan.descending:
            for cp in tp.channels:
                assert len(cp.checks) == len(cp.guards)
                for rule, (key, _check) in zip(cp.guards, cp.checks, strict=True):
                    assert seen.setdefault(key, (id(rule), cp.channel)) == (id(rule), cp.channel)


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(ENGINES)), trace=st.booleans())
def test_planned_holds_hold_as_first_hold(data: st.DataObject, which: str, trace: bool) -> None:
    engine = ENGINES[which]
    record, now = data.draw(cases(engine.policy))
    try:
        account, stamps = engine._checked(record, now)
    except EscalationError:
        return
    sit = derive(account, now, engine.policy, stamps)
    truth = engine._conditions.truth_for(sit)
    ref_trace = Recorder(trace)
    expected = first_hold(engine.policy.holds, sit, truth, ref_trace)
    for answer in (None, truth):  # the closures directly (native), or through `truth`
        fast_trace = FastRecorder(trace)
        got = first_hold_planned(engine._plan.holds, sit, answer, fast_trace)
        assert got == expected
        assert [e.model_dump() for e in fast_trace.entries] == [e.model_dump() for e in ref_trace.entries]


@given(
    rule=st.text(max_size=8),
    matched=st.booleans(),
    facts=st.dictionaries(st.text(max_size=4), st.integers() | st.none() | st.text(max_size=4), max_size=3),
    action=st.none() | st.text(max_size=4),
    channel=st.none() | st.sampled_from([c.value for c in Channel]),
    note=st.none() | st.text(max_size=8),
)
def test_fast_entries_are_constructs(
    rule: str, matched: bool, facts: dict[str, Any], action: str | None, channel: str | None, note: str | None
) -> None:
    got = fast_entry(rule, matched, facts, action, channel, note)
    expected = entry(rule, matched, facts, action, channel, note)
    assert got == expected
    assert got.model_dump_json() == expected.model_dump_json()
    assert got.model_fields_set == expected.model_fields_set
    assert got.model_fields_set is not fast_entry(rule, matched, facts).model_fields_set  # not shared
    assert (got.__pydantic_extra__, got.__pydantic_private__) == (None, None)


_COMPARABLE = st.one_of(
    st.integers(-5, 5),
    st.decimals(min_value=-5, max_value=5, places=2),
    st.sampled_from([dt.date(2026, 1, 1), dt.date(2026, 6, 1)]),
    st.sampled_from(["a", "b", ""]),
    st.booleans(),
)


@given(
    op=st.sampled_from(sorted(_PY_CMP)),
    constant=_COMPARABLE,
    value=st.none() | _COMPARABLE,
)
def test_written_out_comparisons_answer_as_the_operator_closure(op: str, constant: Any, value: Any) -> None:
    facts = {} if value is None else {"x": value}  # None: the fact is unknown
    fast, reference = fast_fact_cmp("x", op, constant), _fact_cmp("x", _PY_CMP[op], constant)
    try:
        expected: object = reference(facts)
    except TypeError:  # a date against a number: both raise alike
        with pytest.raises(TypeError):
            fast(facts)
        return
    got = fast(facts)
    assert type(got) is type(expected)
    assert got == expected


@SETTINGS
@given(
    data=st.data(), which=st.sampled_from(sorted(ENGINES)), back=st.integers(0, 60), days=st.integers(0, 90)
)
def test_scanned_selections_are_the_predicates(data: st.DataObject, which: str, back: int, days: int) -> None:
    engine = ENGINES[which]
    plan = engine._plan
    record, now = data.draw(cases(engine.policy))
    try:
        account, stamps = engine._checked(record, now)
    except EscalationError:
        return
    sit = derive(account, now, engine.policy, stamps)
    tiers = [t.model.id for t in engine.policy.tiers]
    tags = sorted({tag for t in engine.policy.tiers for tag in t.model.tags})
    flt = data.draw(filters(tiers, tags))
    exclude = tuple(data.draw(st.lists(filters(tiers, tags), max_size=2)))
    defaults = tuple(data.draw(st.lists(st.sampled_from(list(Channel)), max_size=2, unique=True)))
    before = now - dt.timedelta(days=back)
    since = before - dt.timedelta(days=days)
    for window in ((None, None), (before, None), (before, since), (None, since)):
        fast_sit = dataclasses.replace(sit, cache={})
        ref_sit = dataclasses.replace(sit, cache={})
        got = EventMatcher(fast_sit, plan.tags_of).select(flt, exclude, defaults, *window)
        expected = select(EventMatcher(ref_sit, plan.tags_of), flt, exclude, defaults, *window)
        assert got == expected
    events = sit.events
    scan = scanner(flt, defaults, plan.tags_of)
    matcher = EventMatcher(sit, plan.tags_of)
    match = predicate(flt, defaults, plan.tags_of)
    assert scan(events, 0, len(events), matcher) == [
        i for i in range(len(events)) if match(events[i], matcher)
    ]


# =============================================================================
# The reference: the code the fast paths replaced, verbatim from 5c53727.
# =============================================================================

Truth = Callable[[str], bool]
_DAY = dt.timedelta(days=1)
_UNSET = object()


def entry(
    rule: str,
    matched: bool,
    facts: dict[str, Any],
    action: str | None = None,
    channel: str | None = None,
    note: str | None = None,
) -> TraceEntry:
    """A :class:`TraceEntry` from values the engine knows to be valid (positional:
    the ladder and holds make some twenty per traced decision)."""
    return construct(
        TraceEntry, rule=rule, matched=matched, facts=facts, action=action, channel=channel, note=note
    )


class Recorder:
    """Collects trace entries, or nothing at all when the caller wants no trace
    (bulk dry-runs): then neither entries nor their figures are built."""

    __slots__ = ("_json", "_shared", "entries", "on")

    def __init__(self, on: bool) -> None:
        self.on = on
        self.entries: list[TraceEntry] = []
        # the figures dict of each fact-name tuple read so far in this decision,
        # and each fact's JSON form (a set of flags is sorted once, not per rule)
        self._shared: dict[tuple[str, ...], dict[str, object]] = {}
        self._json: dict[str, object] = {}

    def add(
        self,
        *,
        rule: str,
        matched: bool,
        facts: dict[str, object],
        action: str | None = None,
        channel: str | None = None,
        note: str | None = None,
    ) -> None:
        if self.on:
            self.entries.append(entry(rule, matched, facts, action, channel, note))

    def facts(self, names: tuple[str, ...], sit: Situation) -> dict[str, object]:
        """The named facts in JSON form; rules naming the same facts (the same
        sorted tuple) in one decision share one dict."""
        if not self.on:
            return {}
        shared = self._shared.get(names)
        if shared is None:
            known, values = self._json, sit.values
            shared = self._shared[names] = {}
            for name in names:
                value = known.get(name, _UNSET)
                if value is _UNSET:
                    value = known[name] = json_value(values.get(name))
                shared[name] = value
        return shared


def first_hold(
    holds: Iterable[HoldRule], sit: Situation, truth: Truth, trace: Recorder
) -> HoldOutcome | None:
    """The first hold that applies at ``sit.now`` (each one evaluated is traced)."""
    on = trace.on  # without a trace, no figures are gathered and nothing is added
    add = trace.entries.append
    for hold in holds:
        rule = f"hold:{hold.model.id}"
        if not truth(rule):
            if on:
                add(entry(rule, False, trace.facts(hold.when.fact_order, sit)))
            continue
        until = _hold_until(hold, sit)
        if until is not None and until <= sit.now:
            if on:
                note = f"expired at {fmt.instant(until, sit)}"
                add(entry(rule, False, trace.facts(hold.when.fact_order, sit), note=note))
            continue
        until_local = until.astimezone(sit.tz) if until else None
        if on:
            note = (
                f"holds until {until_local.isoformat()}" if until_local else "holds until an event lifts it"
            )
            add(entry(rule, True, trace.facts(hold.when.fact_order, sit), note=note))
        return HoldOutcome(hold, until_local)
    return None


def _reopen(moment: dt.datetime, hours: tuple[ContactHoursGuard, ...], sit: Situation) -> dt.datetime | None:
    """Move ``moment`` forward into every applicable contact-hours window."""
    if not hours:
        return moment  # no window to move into: the loop below would return it unchanged
    current: dt.datetime | None = moment
    for _ in range(8):
        assert current is not None
        later = current
        for guard in hours:
            opened = next_open(guard, current, sit.zones)
            if opened is None:
                return None
            later = max(later, opened)
        if later == current:
            return current
        current = later
    return current


@dataclass(slots=True)
class _Channel:
    plan: ChannelPlan
    verdicts: list[GuardVerdict]
    blocks: list[GuardVerdict]
    time: dt.datetime | None  # when this channel is permitted (None: only an event lifts it)

    @property
    def channel(self) -> Channel:
        return self.plan.channel


def _blocked(plan: LadderPlan, tier: TierRule, ch: _Channel, sit: Situation) -> list[BlockedAction]:
    """The channel's blocks, each ``until`` moved to when contact is actually
    allowed (a frequency window reopens at midnight; the call at 08:00)."""
    hours = ch.plan.hours
    out = []
    for v in ch.blocks:
        until = _reopen(v.until, hours, sit) if v.until is not None else None
        detail = guard_detail(v, sit, "en", with_until=False)
        reason = plan.reasons[id(v.rule)]
        out.append(
            construct(
                BlockedAction,
                action=tier.model.id,
                channel=ch.channel.value,
                guard=v.rule.model.id,
                reason=reason + (f" ({detail})" if detail else ""),
                cite=v.rule.model.cite,
                until=until.astimezone(sit.tz) if until is not None else None,
            )
        )
    return out


def _check_channels(
    tp: TierPlan,
    at: dt.datetime,
    sit: Situation,
    truth: Truth,
    matcher: EventMatcher,
    trace: Recorder,
    first_open: bool = False,
) -> list[_Channel]:
    """Every applicable guard for each of the tier's channels at instant ``at``;
    with ``first_open``, channels after the first one no guard blocks are not
    needed (it will be used) and are not evaluated."""
    model = tp.model
    channels: list[_Channel] = []
    entries = trace.entries if trace.on else None
    for cp in tp.channels:
        channel = cp.channel
        verdicts = [check_guard(g, sit, model, channel, at, truth, matcher) for g in cp.guards]
        blocks = [v for v in verdicts if v.blocked]
        time: dt.datetime | None = at
        if blocks:
            untils = [v.until for v in blocks]
            time = None if any(u is None for u in untils) else max(u for u in untils if u is not None)
            if time is not None:
                time = _reopen(time, cp.hours, sit)
        channels.append(_Channel(cp, verdicts, blocks, time))
        if entries is not None:
            value = channel.value
            for name, v in zip(cp.names, verdicts, strict=True):
                entries.append(entry(name, v.blocked, json_facts(v.facts), model.id, value, v.note or None))
        if first_open and not blocks:
            break
    return channels


@dataclass
class _Why:
    """What the ladder learnt on the way down, for the reason: blocked
    actions, tiers waiting (and for what), blocked until an event, used up."""

    blocked: list[BlockedAction]
    held: list[HeldBack]
    waiting: list[tuple[dt.datetime, TierRule, Channel, tuple[Pending, ...]]]
    indefinite: list[tuple[TierRule, tuple[GuardVerdict, ...]]]
    exhausted: list[TierRule]

    def block(self, plan: LadderPlan, tier: TierRule, ch: _Channel, sit: Situation) -> None:
        if ch.blocks:
            self.blocked.extend(_blocked(plan, tier, ch, sit))
            self.held.append((tier, ch.channel, tuple(ch.blocks)))


def _settle(
    plan: LadderPlan,
    tier: TierRule,
    channels: list[_Channel],
    pending: list[Pending],
    sit: Situation,
    why: _Why,
    noted: bool = True,
) -> str:
    """Record why an eligible tier cannot act now and when it could; the trace
    note (empty unless ``noted``: only the trace reads it)."""
    for ch in channels:
        why.block(plan, tier, ch, sit)
    timed = [(c.time, c) for c in channels if c.time is not None]
    if timed:
        when, best = min(timed, key=lambda item: item[0])
        why.waiting.append((when, tier, best.channel, (*pending, *best.blocks)))
        return f"eligible; permitted from {fmt.instant(when, sit)} by {best.channel.value}" if noted else ""
    verdicts = tuple(v for c in channels for v in c.blocks)
    why.indefinite.append((tier, verdicts))
    if not noted:
        return ""
    guards_named = sorted({v.rule.model.id for v in verdicts})
    return "eligible; blocked until an event lifts " + ", ".join(guards_named)


def evaluate(
    plan: LadderPlan,
    sit: Situation,
    truth: Truth,
    engine: EngineInfo,
    record_trace: bool = True,
    locale: Locale = "en",
) -> Decision:
    """The decision for one situation; ``truth(name)`` answers each named
    condition; the reason is rendered in ``locale``."""
    policy = plan.policy
    trace = Recorder(record_trace)
    on = trace.on
    sit.cache["trace"] = record_trace  # guards skip figures only the trace reads
    decided_at = sit.now.astimezone(sit.tz)

    def decision(status: str, parts: Parts, **extra: object) -> Decision:
        reason = render(parts, policy, sit, locale)
        return construct(
            Decision,
            account_id=sit.account.id,
            decided_at=decided_at,
            status=status,
            action=extra.get("action"),
            channel=extra.get("channel"),
            severity=extra.get("severity"),
            reason=reason,
            next_eligible_at=extra.get("next_eligible_at"),
            hold=extra.get("hold"),
            stage=sit.stage,
            tags=list(extra.get("tags", ())),  # type: ignore[call-overload]
            id=decision_id(plan.policy_info.fingerprint, sit.account, sit.now),
            blocked=extra.get("blocked", []),
            agency=extra.get("agency"),
            offers=extra.get("offers", []),
            trace=trace.entries,
            experiment=None,
            policy=plan.policy_info,
            engine=engine,
        )

    # 1. holds: the first that applies stops everything
    held = first_hold(policy.holds, sit, truth, trace)
    if held is not None:
        return decision("hold", HoldParts(held.rule, held.until), hold=held.hold, next_eligible_at=held.until)

    # 2. the ladder, most severe first
    matcher = EventMatcher(sit, plan.tags_of)
    why = _Why([], [], [], [], [])
    exhausted_top = 0
    unmet: list[TierRule] = []
    deferred: list[tuple[TierPlan, dt.datetime, list[Pending]]] = []
    per_day = policy.header.limits.actions_per_day
    day_full = per_day is not None and sit.actions_today >= per_day
    now, stage_severity = sit.now, sit.stage_severity
    tier_done = sit.tier_done
    add = trace.entries.append
    below_note = f"not considered: below the stage {sit.stage} (the ladder does not step back)" if on else ""
    for tp in plan.descending:
        tier, model, rule = tp.tier, tp.model, tp.rule
        facts = trace.facts(tp.facts, sit) if on else {}
        if tp.severity < stage_severity and not model.ongoing:
            if on:
                add(entry(rule, truth(rule), facts, note=below_note))
            continue
        if not truth(rule):
            unmet.append(tier)
            if on:
                add(entry(rule, False, facts, note="condition not met"))
            continue
        # The stage tier itself is the step the account is on: its own `requires`
        # were the way onto it (a v1 history may have reached it without them).
        if tp.requires and tp.severity != stage_severity:
            missing = {
                need: (count, done) for need, count in tp.requires if (done := tier_done.get(need, 0)) < count
            }
            if missing:
                if on:
                    text = ", ".join(
                        f"{n} {done} of {count} required" for n, (count, done) in missing.items()
                    )
                    add(entry(rule, True, facts, note=f"not eligible: {text}"))
                unmet.append(tier)
                continue
        done = tier_done[model.id]
        limit = model.repeat.max
        if limit is not None and done >= limit:
            why.exhausted.append(tier)
            exhausted_top = max(exhausted_top, tp.severity)
            if on:
                add(entry(rule, True, facts, note=f"used {done} of {limit} in this delinquency cycle"))
            continue
        ready_at = now
        pending: list[Pending] = []
        notes: list[str] = []
        below = tp.below
        if model.wait is not None and below is not None:
            last_below = sit.tier_counted.get(below.model.id)
            if last_below is not None and (after := model.wait.after(last_below, sit.tz)) > now:
                ready_at = max(ready_at, after)
                pending.append(AfterBelow(below, model.wait, last_below))
                if on:
                    notes.append(f"wait {model.wait} after {below.model.id} ({fmt.ago(now - last_below)})")
        last_own = sit.tier_last.get(model.id)
        every = model.repeat.every
        if every is not None and last_own is not None and (again := every.after(last_own, sit.tz)) > now:
            ready_at = max(ready_at, again)
            pending.append(Interval(every, last_own))
            if on:
                notes.append(f"repeat every {every}, last {fmt.ago(now - last_own)}")
        if day_full and per_day is not None:
            ready_at = max(ready_at, start_of_day(sit.today + _DAY, sit.tz))
            pending.append(DayFull(sit.actions_today, per_day))
            if on:
                notes.append(f"{sit.actions_today} action(s) today, limit {per_day} a day")

        if ready_at > now:
            # Not due yet: its guards are only worth evaluating (at the instant it
            # becomes due) if no less severe tier can act now.
            if on:
                note = f"eligible; not due before {fmt.instant(ready_at, sit)} ({'; '.join(notes)})"
                add(entry(rule, True, facts, note=note))
            deferred.append((tp, ready_at, pending))
            continue

        channels = _check_channels(tp, now, sit, truth, matcher, trace, first_open=True)
        open_now = [c for c in channels if not c.blocks]
        if open_now:
            chosen = open_now[0]
            for ch in channels:
                if ch is chosen:
                    break
                why.block(plan, tier, ch, sit)
            if on:
                add(entry(rule, True, facts, note=f"actionable now by {chosen.channel.value}"))
            # offers: the one hook every evaluator shares (escalation/offers/evaluate.py)
            offered = after_ladder(policy, sit, truth, trace, tier, chosen.channel)
            if offered.before is not None:
                parts = OfferParts(tier, tuple(offered.offers))
                return decision("offer", parts, offers=offered.offers, blocked=why.blocked)
            return decision(
                "act",
                ActParts(tier, chosen.channel, tuple(why.held)),
                action=model.id,
                channel=chosen.channel.value,
                severity=tp.severity,
                tags=model.tags,
                blocked=why.blocked,
                offers=offered.offers,
                agency=agency_of(tier, sit.values),
            )
        note = _settle(plan, tier, channels, [], sit, why, on)
        if on:
            add(entry(rule, True, facts, note=note))

    # Nothing acts now: when will the tiers that are not yet due be permitted?
    for tp, ready_at, pending in deferred:
        channels = _check_channels(tp, ready_at, sit, truth, matcher, trace)
        note = _settle(plan, tp.tier, channels, pending, sit, why, on)
        if on:
            add(entry(tp.rule, True, {}, note=note))

    if why.waiting:
        when, tier, channel, why_not = min(why.waiting, key=lambda item: (item[0], -item[1].severity))
        local = when.astimezone(sit.tz)
        return decision(
            "wait", WaitParts(tier, channel, local, why_not), next_eligible_at=local, blocked=why.blocked
        )

    # the tiers a strategist would look at next: the steps above what is used up
    # (side tracks only when the account has no stage yet)
    floor = max(exhausted_top, stage_severity)
    above = sorted((t for t in unmet if t.severity > floor and not t.model.ongoing), key=lambda t: t.severity)
    if not above and sit.stage is None:
        above = sorted(unmet, key=lambda t: (t.model.ongoing, t.severity))
    return decision(
        "none", NoneParts(tuple(why.indefinite), tuple(why.exhausted), tuple(above)), blocked=why.blocked
    )


def _fact_cmp(name: str, compare: Callable[[Any, Any], bool], constant: Any) -> TruthFn:
    """``fact <op> literal``."""

    def cmp_lit(facts: Facts) -> bool | None:
        a = facts.get(name, MISSING)
        if a is MISSING:
            return None
        return compare(a, constant)

    return cmp_lit


def select(
    self: EventMatcher,
    flt: EventFilter,
    exclude: tuple[EventFilter, ...],
    default_channels: Iterable[Channel] = (),
    before: dt.datetime | None = None,
    since: dt.datetime | None = None,
) -> list[int]:
    """Indices (into ``sit.events``, oldest first) of the events that match
    ``flt`` and no ``exclude`` filter, at or after ``since`` and up to the
    instant ``before``."""
    defaults = tuple(default_channels)
    limit = before.timestamp() if before is not None else None
    first = bisect.bisect_left(self.sit.stamps, since.timestamp()) if since is not None else 0
    key = ("select", id(flt), id(exclude), defaults, limit, first)
    cached = self.sit.cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    events, stamps = self.sit.events, self.sit.stamps
    # stamps are sorted (oldest first): the events up to `before` end at one bisection
    end = len(events) if limit is None else bisect.bisect_right(stamps, limit, first)
    match = predicate(flt, defaults, self.tags_of)
    excluded = [predicate(x, (), self.tags_of) for x in exclude]
    if excluded:
        out = [
            i
            for i in range(first, end)
            if match(events[i], self) and not any(x(events[i], self) for x in excluded)
        ]
    else:
        out = [i for i in range(first, end) if match(events[i], self)]
    self.sit.cache[key] = out
    return out


@pytest.mark.parametrize("in_cycle", [True, False])
def test_an_event_at_the_cycle_start_is_in_the_cycle(in_cycle: bool) -> None:
    """An event exactly at the cycle's start belongs to the cycle (``at >= cycle_start``),
    for the scanner, the predicate and the matcher alike — generated histories
    almost never put an event on that instant, so it is put there here."""
    engine = ENGINES["consumer-credit-cn"]
    record = {
        "id": "EDGE-1", "currency": "CNY", "amount_overdue": "100.00", "balance": "500.00",
        "days_overdue": 20, "timezone": "Asia/Shanghai",
        "history": [
            {"at": f"2026-11-{day:02d}T10:00:00+08:00", "action": "sms_reminder", "channel": "sms",
             "outcome": "delivered"}
            for day in (10, 12, 14, 16)
        ],
    }  # fmt: skip
    now = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
    account, stamps = engine._checked(record, now)  # type: ignore[arg-type]
    sit = derive(account, now, engine.policy, stamps)
    flt = EventFilter(in_cycle=in_cycle, channels=("sms",))
    for k in range(len(sit.events)):
        moved = dataclasses.replace(sit, cycle_start=sit.events[k].at, cache={})
        matcher = EventMatcher(moved, engine._plan.tags_of)
        expected = [i for i in range(len(moved.events)) if (i >= k) == in_cycle]
        assert expected == scanner(flt, (), engine._plan.tags_of)(moved.events, 0, len(moved.events), matcher)
        match = predicate(flt, (), engine._plan.tags_of)
        assert expected == [i for i, event in enumerate(moved.events) if match(event, matcher)]
        assert expected == [i for i, event in enumerate(moved.events) if matcher.matches(flt, event)]
