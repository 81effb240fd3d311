"""The native evaluator's compilation: a checked tree becomes Python
closures over the facts, with three-valued logic (unknown is never true)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from escalation.errors import EvaluationError
from escalation.policy._tree import (
    MISSING,
    Facts,
    TruthFn,
    ValueFn,
    _Arith,
    _BoolOp,
    _Cmp,
    _Fact,
    _In,
    _Lit,
    _Node,
    _Not,
)

__all__ = ["truth_fn", "value_fn"]


_PY_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _num(value: Any) -> Any:
    return Decimal(value) if isinstance(value, int) else value


def value_fn(node: _Node) -> ValueFn:
    if isinstance(node, _Lit):
        constant = node.value
        return lambda facts: constant
    if isinstance(node, _Fact):
        name = node.name
        return lambda facts: facts.get(name, MISSING)
    if isinstance(node, _Arith):
        left, right, op = value_fn(node.left), value_fn(node.right), node.op

        def arith(facts: Facts) -> Any:
            a, b = left(facts), right(facts)
            if a is MISSING or b is MISSING:
                return MISSING
            try:
                if op == "+":
                    return a + b
                if op == "-":
                    return a - b
                if op == "*":
                    return a * b
                return _num(a) / _num(b)
            except (ZeroDivisionError, DivisionByZero, InvalidOperation) as exc:
                raise EvaluationError(f"division by zero in `{op}`") from exc

        return arith
    truth = truth_fn(node)
    return lambda facts: MISSING if (t := truth(facts)) is None else t


def truth_fn(node: _Node) -> TruthFn:
    if isinstance(node, _Lit):
        constant = bool(node.value)
        return lambda facts: constant
    if isinstance(node, _Fact):
        name = node.name

        def bare(facts: Facts) -> bool | None:
            value = facts.get(name, MISSING)
            return None if value is MISSING else bool(value)

        return bare
    if isinstance(node, _Not):
        inner = truth_fn(node.item)

        def negate(facts: Facts) -> bool | None:
            value = inner(facts)
            return None if value is None else not value

        return negate
    if isinstance(node, _BoolOp):
        items = tuple(truth_fn(i) for i in node.items)
        if node.conjunction and len(items) == 2:
            return _conj2(*items)
        if node.conjunction:

            def conj(facts: Facts) -> bool | None:
                unknown = False
                for item in items:
                    value = item(facts)
                    if value is False:
                        return False
                    if value is None:
                        unknown = True
                return None if unknown else True

            return conj

        def disj(facts: Facts) -> bool | None:
            unknown = False
            for item in items:
                value = item(facts)
                if value is True:
                    return True
                if value is None:
                    unknown = True
            return None if unknown else False

        return disj
    if isinstance(node, _Cmp):
        if isinstance(node.left, _Fact) and isinstance(node.right, _Lit):
            return _fact_cmp(node.left.name, node.op, node.right.value)
        left, right, compare = value_fn(node.left), value_fn(node.right), _PY_CMP[node.op]

        def cmp(facts: Facts) -> bool | None:
            a = left(facts)
            if a is MISSING:
                return None
            b = right(facts)
            if b is MISSING:
                return None
            return compare(a, b)

        return cmp
    if isinstance(node, _In):
        if isinstance(node.item, _Lit) and isinstance(node.container, _Fact):
            return _lit_in_fact(node.item.value, node.container.name, node.negated)
        item, container, negated = value_fn(node.item), value_fn(node.container), node.negated

        def member(facts: Facts) -> bool | None:
            a, b = item(facts), container(facts)
            if a is MISSING or b is MISSING:
                return None
            return (a in b) != negated

        return member
    raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover


# The shapes most conditions are made of, specialised: one closure instead of
# one per operand (the ladder asks some twenty conditions per decision). Each
# answers exactly as the general closure above does for the same node.


def _fact_cmp(name: str, op: str, constant: Any) -> TruthFn:
    """``fact <op> literal``, the operator written out (``a >= k`` is what
    ``operator.ge(a, k)`` computes, without the call)."""
    missing = MISSING
    if op == ">=":

        def cmp_ge(facts: Facts) -> bool | None:
            a = facts.get(name, missing)
            return None if a is missing else a >= constant

        return cmp_ge
    if op == ">":

        def cmp_gt(facts: Facts) -> bool | None:
            a = facts.get(name, missing)
            return None if a is missing else a > constant

        return cmp_gt
    if op == "<=":

        def cmp_le(facts: Facts) -> bool | None:
            a = facts.get(name, missing)
            return None if a is missing else a <= constant

        return cmp_le
    if op == "<":

        def cmp_lt(facts: Facts) -> bool | None:
            a = facts.get(name, missing)
            return None if a is missing else a < constant

        return cmp_lt
    compare = _PY_CMP[op]  # == and != (rarer)

    def cmp_lit(facts: Facts) -> bool | None:
        a = facts.get(name, missing)
        if a is missing:
            return None
        return compare(a, constant)

    return cmp_lit


def _lit_in_fact(constant: Any, name: str, negated: bool) -> TruthFn:
    """``literal in fact`` / ``literal not in fact``."""

    def lit_in(facts: Facts) -> bool | None:
        b = facts.get(name, MISSING)
        if b is MISSING:
            return None
        return (constant in b) != negated

    return lit_in


def _conj2(first: TruthFn, second: TruthFn) -> TruthFn:
    """``a and b``: false if either is false, else unknown if either is unknown."""

    def conj2(facts: Facts) -> bool | None:
        a = first(facts)
        if a is False:
            return False
        b = second(facts)
        if b is False:
            return False
        return None if a is None or b is None else True

    return conj2
