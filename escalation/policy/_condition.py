"""The backend-neutral form of a condition: negation normal form over flat
scalar fields.

Policy expressions (``days_overdue >= 31 and amount_overdue >= 500``) are
type-checked and lowered into this form by :mod:`escalation.policy._expr`. Every
evaluator that is not the native one (today: ``rete``) compiles *this* form,
so it never sees arithmetic, decimals, sets or negation:

* an :class:`Atom` compares one event field with one constant; it is
  **false when the field is absent** from the event (a missing fact makes a
  comparison false; because negation has been pushed into the atoms, this
  gives the same truth as the native evaluator's three-valued logic);
* :class:`AllOf` / :class:`AnyOf` are conjunction / disjunction;
* :data:`TRUE` / :data:`FALSE` are constants.

Event fields hold ``int`` or ``str`` only: money is in integer minor units,
booleans are ``0``/``1``, set membership and arithmetic are precomputed into
derived fields by the lowering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Op = Literal["==", "!=", "<", "<=", ">", ">="]
Scalar: TypeAlias = int | str


@dataclass(frozen=True, slots=True)
class Atom:
    """``event[field] <op> value``; false when ``field`` is missing."""

    field: str
    op: Op
    value: Scalar


@dataclass(frozen=True, slots=True)
class AllOf:
    """True when every item is true (true when empty)."""

    items: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """True when at least one item is true (false when empty)."""

    items: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class Const:
    """A constant truth value."""

    value: bool


TRUE = Const(True)
FALSE = Const(False)

Cond: TypeAlias = Atom | AllOf | AnyOf | Const

_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def evaluate(cond: Cond, event: dict[str, Scalar]) -> bool:
    """Reference interpreter of the lowered form (used by tests and as the
    specification every compiled backend must match)."""
    if isinstance(cond, Atom):
        if cond.field not in event:
            return False
        got = event[cond.field]
        if isinstance(got, str) != isinstance(cond.value, str):
            return False
        return bool(_COMPARE[cond.op](got, cond.value))
    if isinstance(cond, AllOf):
        return all(evaluate(item, event) for item in cond.items)
    if isinstance(cond, AnyOf):
        return any(evaluate(item, event) for item in cond.items)
    return cond.value


def fields(cond: Cond) -> frozenset[str]:
    """Every event field the condition reads."""
    if isinstance(cond, Atom):
        return frozenset((cond.field,))
    if isinstance(cond, AllOf | AnyOf):
        out: frozenset[str] = frozenset()
        for item in cond.items:
            out |= fields(item)
        return out
    return frozenset()
