"""Lowering a checked condition to :mod:`._condition` atoms (negation normal
form over integer and string fields): what the ``rete`` backend compiles.
Arithmetic, fact-vs-fact comparisons and set membership become derived 0/1
fields computed in Python first."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from escalation._language import FactType
from escalation.policy._closures import truth_fn
from escalation.policy._condition import FALSE, TRUE, AllOf, AnyOf, Atom, Cond, Const, Op
from escalation.policy._tree import TruthFn, _BoolOp, _Cmp, _Fact, _In, _Lit, _Node, _Not

__all__ = ["Lowering", "field_name", "simplify"]


def field_name(fact: str) -> str:
    """The event-field name of a fact in the lowered form (dots → ``__``)."""
    return fact.replace(".", "__")


_FLIP: dict[Op, Op] = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_MIRROR: dict[Op, Op] = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass
class Lowering:
    """Lowers typed expressions to :mod:`escalation.policy._condition` and records the
    derived fields the event builder must compute (shared by all conditions of
    one policy)."""

    money_scale: int
    derived: dict[str, TruthFn] = field(default_factory=dict)
    _derived_keys: dict[object, str] = field(default_factory=dict)

    def _derive(self, key: object, node: _Node) -> str:
        name = self._derived_keys.get(key)
        if name is None:
            name = f"derived_{len(self._derived_keys)}"
            self._derived_keys[key] = name
            self.derived[name] = truth_fn(node)
        return name

    def lower(self, node: _Node, positive: bool = True) -> Cond:
        if isinstance(node, _Lit):
            return TRUE if bool(node.value) == positive else FALSE
        if isinstance(node, _Not):
            return self.lower(node.item, not positive)
        if isinstance(node, _BoolOp):
            items = tuple(self.lower(i, positive) for i in node.items)
            return AllOf(items) if node.conjunction == positive else AnyOf(items)
        if isinstance(node, _Fact):  # a bare boolean fact
            return Atom(field_name(node.name), "==", 1 if positive else 0)
        if isinstance(node, _Cmp):
            return self._compare(node, positive)
        if isinstance(node, _In):
            return self._member(node, positive)
        raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover

    def _compare(self, node: _Cmp, positive: bool) -> Cond:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, _Lit) and isinstance(right, _Fact):
            left, right, op = right, left, _MIRROR[op]
        if not (isinstance(left, _Fact) and isinstance(right, _Lit)) or _fractional(left):
            name = self._derive(("cmp", node), node)
            return Atom(name, "==", 1 if positive else 0)
        if not positive:
            op = _FLIP[op]
        fname = field_name(left.name)
        if left.type is FactType.BOOL:
            # `flag == true` / `flag != false`: compare with 1/0
            want = int(bool(right.value))
            return Atom(fname, "==" if op == "==" else "!=", want)
        if left.type is FactType.STRING:
            return Atom(fname, op, str(right.value))
        scale = self.money_scale if left.type is FactType.MONEY else 1
        return _int_atom(fname, op, Decimal(right.value) * scale)

    def _member(self, node: _In, positive: bool) -> Cond:
        want_in = positive != node.negated
        container = node.container
        if container.type is FactType.SET:
            name = self._derive(("in", node.item, container), _In(FactType.BOOL, node.item, container, False))
            return Atom(name, "==", 1 if want_in else 0)
        assert isinstance(node.item, _Fact) and isinstance(container, _Lit)
        cmp_op: Op = "==" if want_in else "!="
        atoms = tuple(
            self._compare(_Cmp(FactType.BOOL, cmp_op, node.item, _Lit(node.item.type, v)), True)
            for v in container.value
        )
        return AnyOf(atoms) if want_in else AllOf(atoms)


def _fractional(fact: _Fact) -> bool:
    """A number that need not be whole (a lender attribute such as a risk score):
    compared in Python, since the lowered form has integer fields only."""
    return fact.type is FactType.NUMBER and fact.name.startswith("attributes.")


def _int_atom(fname: str, op: Op, value: Decimal) -> Cond:
    """``field <op> value`` for an integer field and an exact decimal constant."""
    floor, ceil = math.floor(value), math.ceil(value)
    integral = floor == ceil
    if op == ">=":
        return Atom(fname, ">=", ceil)
    if op == ">":
        return Atom(fname, ">", floor)
    if op == "<=":
        return Atom(fname, "<=", floor)
    if op == "<":
        return Atom(fname, "<", ceil)
    if op == "==":
        return Atom(fname, "==", floor) if integral else FALSE
    if integral:
        return Atom(fname, "!=", floor)
    # `!=` a non-integer: true whenever the field is present
    return AnyOf((Atom(fname, "<", ceil), Atom(fname, ">", floor)))


def simplify(cond: Cond) -> Cond:
    """Fold constants out of the lowered form."""
    if isinstance(cond, AllOf | AnyOf):
        conj = isinstance(cond, AllOf)
        items: list[Cond] = []
        for item in (simplify(i) for i in cond.items):
            if isinstance(item, Const):
                if item.value != conj:
                    return item  # false in a conjunction, true in a disjunction
                continue
            items.append(item)
        if not items:
            return TRUE if conj else FALSE
        if len(items) == 1:
            return items[0]
        return AllOf(tuple(items)) if conj else AnyOf(tuple(items))
    return cond
