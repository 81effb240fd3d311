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
        item, container, negated = value_fn(node.item), value_fn(node.container), node.negated

        def member(facts: Facts) -> bool | None:
            a, b = item(facts), container(facts)
            if a is MISSING or b is MISSING:
                return None
            return (a in b) != negated

        return member
    raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover
