"""Condition expressions: whitelist, types, three-valued logic, and the lowering
used by non-native evaluators (checked against the native closures)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.policy._condition import evaluate
from escalation.policy._expr import MISSING, ExprError, FactType, compile_expression
from escalation.policy._lowering import Lowering, simplify

CATALOGUE = {
    "days_overdue": FactType.NUMBER,
    "amount_overdue": FactType.MONEY,
    "balance": FactType.MONEY,
    "segment": FactType.STRING,
    "flags": FactType.SET,
    "promise_active": FactType.BOOL,
    "time_barred": FactType.BOOL,
    "done.call": FactType.NUMBER,
}


class TestWhitelist:
    @pytest.mark.parametrize(
        "source",
        [
            "__import__('os')",
            "days_overdue.__class__",
            "[x for x in flags]",
            "lambda: 1",
            "days_overdue if 1 else 2",
            "f'{1}'",
        ],
    )
    def test_refused(self, source: str) -> None:
        """Calls, comprehensions, lambdas and other constructs are refused at load."""
        with pytest.raises(ExprError) as info:
            compile_expression(source, CATALOGUE)
        assert info.value.code in {"expression-not-allowed", "unknown-fact", "type-mismatch"}

    def test_unknown_fact_hint(self) -> None:
        """An unknown fact gets a did-you-mean hint."""
        with pytest.raises(ExprError, match="did you mean `days_overdue`"):
            compile_expression("days_overdu > 1", CATALOGUE)

    @pytest.mark.parametrize(
        "source",
        [
            "flags > 1",
            "segment < 'a'",
            "days_overdue",
            "days_overdue + 'a' > 1",
            "1 in flags",
            "segment == 1",
        ],
    )
    def test_type_mismatch(self, source: str) -> None:
        """Comparisons of incompatible types and non-boolean conditions are refused."""
        with pytest.raises(ExprError) as info:
            compile_expression(source, CATALOGUE)
        assert "type-mismatch" == info.value.code


class TestThreeValuedLogic:
    def test_missing_fact_is_never_true(self) -> None:
        """A comparison with a missing fact is unknown, and so is its negation."""
        facts: dict[str, Any] = {"days_overdue": 5}
        assert not compile_expression("time_barred", CATALOGUE)(facts)
        assert not compile_expression("not time_barred", CATALOGUE)(facts)
        assert not compile_expression("not (done.call > 2)", CATALOGUE)(facts)

    def test_unknown_or_true_is_true(self) -> None:
        """Kleene logic: unknown or true is true; unknown and false is false."""
        facts: dict[str, Any] = {"days_overdue": 5}
        assert compile_expression("time_barred or days_overdue > 1", CATALOGUE)(facts)
        assert compile_expression("not (time_barred and days_overdue > 9)", CATALOGUE)(facts)

    def test_decimal_literals_are_exact(self) -> None:
        """Money compares exactly with decimal literals (no float rounding)."""
        assert compile_expression("amount_overdue >= 0.3", CATALOGUE)({"amount_overdue": Decimal("0.30")})
        assert compile_expression("amount_overdue == 0.1 + 0.2", CATALOGUE)(
            {"amount_overdue": Decimal("0.3")}
        )


# ------------------------------------------------------------- lowering ≡ native

FACT_VALUES = {
    "days_overdue": st.integers(-5, 200),
    "amount_overdue": st.decimals(
        min_value=0, max_value=10_000, places=2, allow_nan=False, allow_infinity=False
    ),
    "balance": st.decimals(min_value=0, max_value=20_000, places=2, allow_nan=False, allow_infinity=False),
    "segment": st.sampled_from(["prime", "near", "sub"]),
    "flags": st.frozensets(st.sampled_from(["dispute", "vip", "hardship"])),
    "promise_active": st.booleans(),
    "time_barred": st.booleans(),
    "done.call": st.integers(0, 12),
}


@st.composite
def atoms(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["num", "money", "str", "set", "bool", "arith", "list"]))
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
    if kind == "num":
        fact = draw(st.sampled_from(["days_overdue", "done.call"]))
        return f"{fact} {op} {draw(st.integers(-6, 201))}"
    if kind == "money":
        value = draw(
            st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False, allow_infinity=False)
        )
        return f"{draw(st.sampled_from(['amount_overdue', 'balance']))} {op} {value}"
    if kind == "str":
        return (
            f"segment {draw(st.sampled_from(['==', '!=']))} '{draw(st.sampled_from(['prime', 'sub', 'x']))}'"
        )
    if kind == "set":
        word = "not in" if draw(st.booleans()) else "in"
        return f"'{draw(st.sampled_from(['dispute', 'vip', 'x']))}' {word} flags"
    if kind == "bool":
        return draw(
            st.sampled_from(
                ["promise_active", "time_barred", "promise_active == true", "time_barred != false"]
            )
        )
    if kind == "list":
        word = "not in" if draw(st.booleans()) else "in"
        return f"segment {word} ['prime', 'near']"
    return f"amount_overdue * 2 {op} balance - {draw(st.integers(0, 100))}"


expressions = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"not ({e})"),
    ),
    max_leaves=6,
)


@st.composite
def fact_sets(draw: st.DrawFn) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name, strategy in FACT_VALUES.items():
        if draw(st.integers(0, 5)) > 0:  # sometimes missing
            facts[name] = draw(strategy)
    return facts


@given(expressions, fact_sets())
@settings(max_examples=600, deadline=None)
def test_lowered_form_agrees_with_native(source: str, facts: dict[str, Any]) -> None:
    """For any expression and facts (some missing), the lowered NNF form over the
    flattened event gives exactly the native three-valued result."""
    compiled = compile_expression(source, CATALOGUE)
    lowering = Lowering(money_scale=100)
    cond = simplify(lowering.lower(compiled.tree))
    event: dict[str, int | str] = {}
    for name, value in facts.items():
        kind = CATALOGUE[name]
        key = name.replace(".", "__")
        if kind is FactType.MONEY:
            event[key] = int(value * 100)
        elif kind is FactType.BOOL:
            event[key] = int(value)
        elif kind in (FactType.NUMBER, FactType.STRING):
            event[key] = value
    for field, truth in lowering.derived.items():
        value = truth(facts)
        if value is not None:
            event[field] = int(value)
    assert compiled(facts) == evaluate(cond, event), (source, facts, cond)
    assert MISSING is not None
