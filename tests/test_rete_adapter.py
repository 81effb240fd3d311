"""The durable-rules adapter alone: lowered conditions compiled into one
ruleset answer exactly as the reference interpreter does."""

from __future__ import annotations

import threading

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from escalation.backends.rete import MAX_SAFE_INT, ReteMatcher, rete_unavailable_reason
from escalation.errors import EvaluationError
from escalation.policy._condition import FALSE, TRUE, AllOf, AnyOf, Atom, Cond, evaluate

REASON = rete_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"rete backend unavailable: {REASON}")

FIELDS = ["a", "b", "c", "s", "t", "days_overdue"]
INT_FIELDS = ["a", "b", "c", "days_overdue"]
OPS = ["==", "!=", "<", "<=", ">", ">="]

atoms = st.one_of(
    st.builds(Atom, st.sampled_from(INT_FIELDS), st.sampled_from(OPS), st.integers(-3, 12)),
    st.builds(
        Atom, st.sampled_from(["s", "t"]), st.sampled_from(["==", "!="]), st.sampled_from(["x", "y", ""])
    ),
    st.sampled_from([TRUE, FALSE]),
)
conditions: st.SearchStrategy[Cond] = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: AllOf(tuple(xs))),
        st.lists(inner, max_size=4).map(lambda xs: AnyOf(tuple(xs))),
    ),
    max_leaves=10,
)
events = st.fixed_dictionaries(
    {},
    optional={
        "a": st.integers(-4, 13),
        "b": st.integers(-4, 13),
        "c": st.integers(-4, 13),
        "days_overdue": st.integers(-4, 13),
        "s": st.sampled_from(["x", "y", "", "z"]),
        "t": st.sampled_from(["x", "y"]),
    },
)


def _size(cond: Cond) -> int:
    """Comparisons and groups in a condition (what fills durable's expression sequence)."""
    items = getattr(cond, "items", None)
    return 1 if items is None else 1 + sum(_size(item) for item in items)


def test_a_condition_too_large_for_one_durable_rule_is_refused_clearly() -> None:
    """durable-rules holds at most 32 expressions in one rule (ERR_EXPRESSION_LIMIT_EXCEEDED,
    113): measured, 14 comparisons side by side fit and 15 do not."""
    fits = AllOf(tuple(Atom("a", "!=", i) for i in range(14)))
    assert ReteMatcher({"x": fits}).matching({"a": 20}) == frozenset({"x"})
    with pytest.raises(EvaluationError, match="more comparisons than one durable rule holds"):
        ReteMatcher({"x": AllOf(tuple(Atom("a", "!=", i) for i in range(15)))})


@given(
    st.dictionaries(st.text("abcdefgh:-", min_size=1, max_size=12), conditions, min_size=1, max_size=8),
    st.lists(events, min_size=1, max_size=6),
)
@settings(max_examples=150, deadline=None)
def test_matches_reference_interpreter(conds: dict[str, Cond], evs: list[dict[str, int | str]]) -> None:
    """For random nested conditions and events with missing fields, durable's answer equals `evaluate`.
    A condition beyond what one durable rule holds is refused with a clear error, and only then."""
    try:
        matcher = ReteMatcher(conds)
    except EvaluationError as exc:
        assert "more comparisons than one durable rule holds" in str(exc)
        assert max(_size(c) for c in conds.values()) >= 13  # the smallest refused shape measured: 16
        assume(False)  # a documented limit of durable-rules (docs/backends.md), not a wrong answer
    for event in evs:
        expected = frozenset(name for name, cond in conds.items() if evaluate(cond, event))
        assert expected == matcher.matching(event)


def test_several_conditions_true_at_once() -> None:
    """Every true condition is reported, not just the first rule to fire."""
    matcher = ReteMatcher(
        {"x": Atom("a", ">=", 1), "y": Atom("a", "<", 9), "z": Atom("a", "==", 5), "no": Atom("a", ">", 5)}
    )
    assert frozenset({"x", "y", "z"}) == matcher.matching({"a": 5})


@pytest.mark.parametrize("op", OPS)
def test_missing_field_is_false_for_every_operator(op: str) -> None:
    """A comparison with an absent field never matches, `!=` included."""
    matcher = ReteMatcher({"c": Atom("a", op, 3)})  # type: ignore[arg-type]
    assert frozenset() == matcher.matching({"b": 3})


def test_no_state_carried_between_calls() -> None:
    """The same event after a different one gives the same answer."""
    matcher = ReteMatcher({"hi": Atom("a", ">", 5), "lo": Atom("a", "<=", 5)})
    assert frozenset({"hi"}) == matcher.matching({"a": 9})
    assert frozenset({"lo"}) == matcher.matching({"a": 1})
    assert frozenset({"hi"}) == matcher.matching({"a": 9})


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_integers_exact_up_to_max_safe(delta: int) -> None:
    """Integers near MAX_SAFE_INT compare exactly (money in minor units)."""
    limit = MAX_SAFE_INT - 1
    matcher = ReteMatcher({"ge": Atom("a", ">=", limit), "eq": Atom("a", "==", limit)})
    got = matcher.matching({"a": limit + delta})
    assert ("ge" in got) == (delta >= 0)
    assert ("eq" in got) == (delta == 0)


def test_threads_agree_with_single_thread() -> None:
    """8 threads sharing one matcher get the single-threaded answers."""
    conds: dict[str, Cond] = {f"k{i}": Atom("a", ">=", i) for i in range(0, 20, 3)}
    conds["s"] = AnyOf((Atom("s", "==", "x"), Atom("a", "<", 2)))
    matcher = ReteMatcher(conds)
    evs: list[dict[str, int | str]] = [{"a": i % 23, "s": "xy"[i % 2]} for i in range(400)]
    expected = [matcher.matching(e) for e in evs]
    got: list[frozenset[str] | None] = [None] * len(evs)

    def work(start: int) -> None:
        for i in range(start, len(evs), 8):
            got[i] = matcher.matching(evs[i])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert expected == got
