"""The ladder's fast paths agree with the plain definitions they replace.

* a compiled event-filter predicate answers as ``EventMatcher.matches`` for
  any filter and event, and ``select`` picks what a scan with ``matches``
  picks;
* the specialised condition closures answer as a plain three-valued
  evaluator of the same tree;
* a trace entry built by ``_trace.entry`` is the one ``construct`` builds;
  ``json_facts`` and the shared ``Recorder.facts`` give ``json_value``'s forms;
* the per-policy ladder plan says what ``applies`` and the policy say;
* guards that skip their figures without a trace block (and until) exactly
  as with one, and keep the figures reasons read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, load_policy
from escalation._facts import derive
from escalation._facts_static import json_value
from escalation._ladder_plan import LadderPlan
from escalation._language import EventFilter, FactType
from escalation._trace import Recorder, entry, facts_of, json_facts
from escalation.decision import TraceEntry, construct
from escalation.guards import ContactHoursGuard, EventMatcher, FrequencyGuard, applies, check_guard
from escalation.guards._base import predicate
from escalation.policy._closures import truth_fn
from escalation.policy._tree import MISSING, _BoolOp, _Cmp, _Fact, _In, _Lit, _Node, _Not
from escalation.record import Channel, Direction, HistoryEvent, Outcome

from .strategies import cases

ROOT = Path(__file__).resolve().parent.parent
POLICIES = {
    p.stem: load_policy(p) for p in sorted((ROOT / "policies").glob("*.yaml")) if not p.stem.endswith("_test")
}
ENGINES = {name: Engine(policy) for name, policy in POLICIES.items()}
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


# --------------------------------------------------------------- event filters


@st.composite
def filters(draw: st.DrawFn, tiers: list[str], tags: list[str]) -> EventFilter:
    def some(items: list[Any]) -> tuple[Any, ...]:
        return tuple(draw(st.lists(st.sampled_from(items), max_size=2, unique=True))) if items else ()

    return EventFilter(
        channels=some(list(Channel)),
        outcomes=some(list(Outcome)),
        direction=draw(st.sampled_from(["outbound", "inbound", "any"])),
        actions=some(tiers),
        tags=some(tags),
        during_consent=draw(st.sampled_from([None, True, False])),
        consent_days=draw(st.sampled_from([None, "1d", "7d"])),
        misdirected=draw(st.sampled_from([None, True, False])),
        in_cycle=draw(st.sampled_from([None, True, False])),
    )


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(POLICIES)))
def test_compiled_filters_match_as_matches_does(data: st.DataObject, which: str) -> None:
    policy = POLICIES[which]
    plan = LadderPlan.build(policy)
    tiers = [t.model.id for t in policy.tiers]
    tags = sorted({tag for t in policy.tiers for tag in t.model.tags})
    record, now = data.draw(cases(policy))
    sit = derive(ENGINES[which].validate(record, now=now), now, policy)
    matcher = EventMatcher(sit, plan.tags_of)
    flt = data.draw(filters(tiers, tags))
    defaults = tuple(data.draw(st.lists(st.sampled_from(list(Channel)), max_size=2, unique=True)))
    fast = predicate(flt, defaults, plan.tags_of)
    assert predicate(flt, defaults, plan.tags_of) is fast  # built once
    for event in sit.events:
        assert fast(event, matcher) == matcher.matches(flt, event, defaults)
    # events of every shape, whatever the generated history holds
    for _ in range(8):
        odd = HistoryEvent(
            at=now - dt.timedelta(days=data.draw(st.integers(0, 200))),
            action=data.draw(st.sampled_from([None, "unknown", *tiers])),
            channel=data.draw(st.sampled_from([None, *Channel])),
            outcome=data.draw(st.sampled_from([None, *Outcome])),
            direction=data.draw(st.sampled_from(list(Direction))),
            misdirected=data.draw(st.booleans()),
        )
        assert fast(odd, matcher) == matcher.matches(flt, odd, defaults)
    exclude = (data.draw(filters(tiers, tags)),)
    expected = [
        i
        for i, e in enumerate(sit.events)
        if e.at <= now and matcher.matches(flt, e, defaults) and not matcher.matches(exclude[0], e)
    ]
    assert matcher.select(flt, exclude, defaults, before=now) == expected


# --------------------------------------------------------------- conditions


def reference(node: _Node, facts: dict[str, Any]) -> Any:
    """Three-valued evaluation, written plainly (None: unknown)."""
    if isinstance(node, _Lit):
        return node.value
    if isinstance(node, _Fact):
        return facts.get(node.name, MISSING)
    if isinstance(node, _Not):
        inner = reference(node.item, facts)
        return None if inner is None else not inner
    if isinstance(node, _BoolOp):
        values = [reference(i, facts) for i in node.items]
        stop = not node.conjunction  # `and` stops at False, `or` at True
        if any(v is stop for v in values):
            return stop
        return None if any(v is None for v in values) else not stop
    if isinstance(node, _Cmp):
        a, b = reference(node.left, facts), reference(node.right, facts)
        if a is MISSING or b is MISSING:
            return None
        ops = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le}
        ops |= {">": operator.gt, ">=": operator.ge}
        return ops[node.op](a, b)
    assert isinstance(node, _In)
    a, b = reference(node.item, facts), reference(node.container, facts)
    if a is MISSING or b is MISSING:
        return None
    return (a in b) != node.negated


_BOOL, _NUM, _STR, _SET = FactType.BOOL, FactType.NUMBER, FactType.STRING, FactType.SET
_NUMBERS = st.one_of(st.integers(-3, 3), st.sampled_from([Decimal("0.5"), Decimal(2)]))


@st.composite
def atoms(draw: st.DrawFn) -> _Node:
    name = draw(st.sampled_from(["a", "b", "s"]))
    if name == "s":  # a set fact
        item = _Lit(_STR, draw(st.sampled_from(["x", "y"])))
        return _In(_BOOL, item, _Fact(_SET, "s"), draw(st.booleans()))
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
    return _Cmp(_BOOL, op, _Fact(_NUM, name), _Lit(_NUM, draw(_NUMBERS)))


@st.composite
def trees(draw: st.DrawFn) -> _Node:
    items = tuple(draw(st.lists(atoms(), min_size=1, max_size=3)))
    node: _Node = items[0] if len(items) == 1 else _BoolOp(_BOOL, draw(st.booleans()), items)
    return _Not(_BOOL, node) if draw(st.booleans()) else node


@settings(max_examples=500, deadline=None)
@given(
    tree=trees(),
    a=st.one_of(st.none(), _NUMBERS),
    b=st.one_of(st.none(), _NUMBERS),
    s=st.one_of(st.none(), st.frozensets(st.sampled_from(["x", "y"]))),
)
def test_specialised_closures_answer_as_the_tree_says(tree: _Node, a: Any, b: Any, s: Any) -> None:
    facts = {k: v for k, v in {"a": a, "b": b, "s": s}.items() if v is not None}  # None: unknown
    assert truth_fn(tree)(facts) == reference(tree, facts)


# --------------------------------------------------------------- trace


_JSONISH = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=5),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.frozensets(st.text(max_size=3), max_size=3),
    st.sets(st.integers(0, 9), max_size=3),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@SETTINGS
@given(facts=st.dictionaries(st.text(max_size=6), _JSONISH, max_size=4))
def test_json_facts_are_json_values(facts: dict[str, Any]) -> None:
    assert json_facts(facts) == {k: json_value(v) for k, v in facts.items()}


@SETTINGS
@given(
    rule=st.text(max_size=8),
    matched=st.booleans(),
    facts=st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    action=st.one_of(st.none(), st.text(max_size=4)),
    channel=st.one_of(st.none(), st.text(max_size=4)),
    note=st.one_of(st.none(), st.text(max_size=8)),
)
def test_a_fast_entry_is_the_constructed_one(
    rule: str, matched: bool, facts: dict[str, int], action: str | None, channel: str | None, note: str | None
) -> None:
    fast = entry(rule, matched, facts, action, channel, note)
    slow = construct(
        TraceEntry, rule=rule, matched=matched, facts=facts, action=action, channel=channel, note=note
    )
    assert fast.__dict__ == slow.__dict__
    assert list(fast.__dict__) == list(slow.__dict__)
    assert fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast == slow


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(POLICIES)))
def test_shared_trace_facts_are_each_rules_facts(data: st.DataObject, which: str) -> None:
    policy = POLICIES[which]
    record, now = data.draw(cases(policy))
    sit = derive(ENGINES[which].validate(record, now=now), now, policy)
    recorder = Recorder(True)
    for rule in [*policy.holds, *policy.tiers]:
        assert recorder.facts(rule.when.fact_order, sit) == facts_of(rule.when.fact_order, sit)
    assert Recorder(False).facts(policy.tiers[0].when.fact_order, sit) == {}


# --------------------------------------------------------------- the plan


def test_the_plan_says_what_the_policy_says() -> None:
    for policy in POLICIES.values():
        plan = LadderPlan.build(policy)
        assert [tp.tier for tp in plan.descending] == list(reversed(policy.tiers))
        for tp in plan.descending:
            model = tp.model
            assert tp.rule == f"tier:{model.id}"
            assert tp.facts == tp.tier.when.fact_order
            assert dict(tp.requires) == model.requires
            assert tp.below == (policy.tiers[tp.severity - 2] if tp.severity > 1 else None)
            assert [cp.channel for cp in tp.channels] == list(model.channel_order)
            for cp in tp.channels:
                covering = tuple(g for g in policy.guards if applies(g, model, cp.channel))
                assert cp.guards == covering == plan.guards_for[(model.id, cp.channel)]
                assert cp.names == tuple(f"guard:{g.model.id}" for g in covering)
                assert cp.hours == tuple(g.model for g in covering if isinstance(g.model, ContactHoursGuard))
        for g in policy.guards:
            assert plan.reasons[id(g)] == " ".join(g.model.reason.split())


# --------------------------------------------------------------- lean guards


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(POLICIES)), later=st.integers(0, 40 * 24))
def test_guards_without_figures_block_as_with_them(data: st.DataObject, which: str, later: int) -> None:
    policy = POLICIES[which]
    plan = LadderPlan.build(policy)
    record, now = data.draw(cases(policy))
    sit = derive(ENGINES[which].validate(record, now=now), now, policy)
    truth = ENGINES[which]._conditions.truth_for(sit)
    at = now + dt.timedelta(hours=later)
    for tp in plan.descending:
        for cp in tp.channels:
            for rule in cp.guards:
                full_sit = dataclasses.replace(sit, cache={})
                lean_sit = dataclasses.replace(sit, cache={"trace": False})
                full = check_guard(
                    rule, full_sit, tp.model, cp.channel, at, truth, EventMatcher(full_sit, plan.tags_of)
                )
                lean = check_guard(
                    rule, lean_sit, tp.model, cp.channel, at, truth, EventMatcher(lean_sit, plan.tags_of)
                )
                assert (lean.rule, lean.blocked, lean.until) == (full.rule, full.blocked, full.until)
                if full.blocked:
                    assert lean.note == full.note
                    if isinstance(rule.model, ContactHoursGuard | FrequencyGuard):  # reasons read these
                        assert lean.facts == full.facts


@SETTINGS
@given(data=st.data(), which=st.sampled_from(sorted(POLICIES)))
def test_every_policy_decides_alike_with_and_without_a_trace(data: st.DataObject, which: str) -> None:
    engine = ENGINES[which]
    record, now = data.draw(cases(engine.policy))
    on = engine.decide(record, now=now)
    off = engine.decide(record, now=now, trace=False)
    assert off.trace == []
    assert on.model_dump(exclude={"trace"}) == off.model_dump(exclude={"trace"})
