"""Conditions over columns, with the native evaluator's three-valued logic:
each condition gives two masks, *true* and *false* (unknown is neither).

A comparison with a money fact is exact: money columns are integers of
1/10,000 and a literal threshold is turned into the equivalent integer one
(``x >= 500.005`` is ``x_e4 >= 5000050``). Arithmetic and comparisons this
module does not know raise :class:`Unsupported` when the policy is checked, so
such a policy is not covered by the columnar backend."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow.compute as pc

from escalation.backends.columnar._facts import Column, Facts
from escalation.policy._tree import _BoolOp, _Cmp, _Fact, _In, _Lit, _Node, _Not

__all__ = ["Unsupported", "check_tree", "truth"]

_SCALE = {"num": 1, "money": 10_000}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
Masks = tuple[np.ndarray, np.ndarray]


class Unsupported(Exception):
    """A condition form the columnar evaluator does not compute."""


def _column(facts: Facts, name: str, kind_hint: str) -> Column:
    column = facts.columns.get(name)
    if column is None:  # a fact this batch never knows (e.g. an attribute): unknown everywhere
        n = facts.n
        return Column(kind_hint, np.zeros(n, dtype=object if kind_hint in ("str", "set") else np.int64),
                      np.zeros(n, bool))  # fmt: skip
    return column


def _kind(node: _Node) -> str:
    value = node.type.value if hasattr(node.type, "value") else str(node.type)
    kinds = {"number": "num", "money": "money", "string": "str", "boolean": "bool", "set of strings": "set"}
    return kinds.get(value, value)


def _numeric_const(value: Any) -> Fraction | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Fraction(value)
    return None


def _cmp_const(column: Column, op: str, const: Any) -> Masks:
    known = column.known
    if column.kind in _SCALE:
        number = _numeric_const(const)
        if number is None:
            raise Unsupported(f"comparison of a number with {const!r}")
        scaled = number * _SCALE[column.kind]
        x = column.values
        if scaled.denominator == 1:
            result = _OPS[op](x, int(scaled))
        elif op in (">=", ">"):
            result = x >= math.ceil(scaled) if op == ">=" else x > math.floor(scaled)
        elif op in ("<=", "<"):
            result = x <= math.floor(scaled) if op == "<=" else x < math.ceil(scaled)
        else:
            result = np.full(len(x), op == "!=")
    elif column.kind == "bool":
        if not isinstance(const, bool) or op not in ("==", "!="):
            raise Unsupported("ordering booleans")
        result = (column.values == const) if op == "==" else (column.values != const)
    elif column.kind == "str":
        if not isinstance(const, str):
            raise Unsupported("comparing a string with a non-string")
        result = _OPS[op](column.values, const) if op in ("==", "!=") else None
        if result is None:
            raise Unsupported("ordering strings")
    else:
        raise Unsupported(f"comparison on a {column.kind}")
    result = np.asarray(result, dtype=bool)
    return result & known, ~result & known


def _value(node: _Node, facts: Facts) -> Column | Any:
    if isinstance(node, _Lit):
        return node.value
    if isinstance(node, _Fact):
        return _column(facts, node.name, _kind(node))
    raise Unsupported(f"{type(node).__name__} in a comparison")


# a node's key for the memo of truths: its repr (the tree's value, as ``_events.signature``
# reads it), worked out once per node object (kept here with it, so its id is not reused)
_KEYS: dict[int, tuple[_Node, str]] = {}


def _key(node: _Node) -> str:
    found = _KEYS.get(id(node))
    if found is not None and found[0] is node:
        return found[1]
    if len(_KEYS) > 50_000:  # (policies loaded one after another: keep the memo bounded)
        _KEYS.clear()
    key = repr(node)
    _KEYS[id(node)] = (node, key)
    return key


def truth(node: _Node, facts: Facts) -> Masks:
    """(true, false) masks of the condition ``node`` over the batch, worked out
    once per batch for equal conditions (the candidate and the baseline share
    most of theirs, and a tier's clauses recur in others). Callers never write
    into the masks returned."""
    memo: dict[str, Masks] | None = facts.cache.get("truths")
    if memo is None:
        memo = facts.cache["truths"] = {}
    key = _key(node)
    found = memo.get(key)
    if found is None:
        found = memo[key] = _truth(node, facts)
    return found


def _truth(node: _Node, facts: Facts) -> Masks:
    n = facts.n
    if isinstance(node, _Lit):
        constant = bool(node.value)
        return np.full(n, constant), np.full(n, not constant)
    if isinstance(node, _Fact):
        column = _column(facts, node.name, _kind(node))
        if column.kind in ("set", "str"):
            raise Unsupported("truth of a string or set")
        value: np.ndarray = column.values.astype(bool)
        return value & column.known, ~value & column.known
    if isinstance(node, _Not):
        yes, no = truth(node.item, facts)
        return no, yes
    if isinstance(node, _BoolOp):
        parts = [truth(item, facts) for item in node.items]
        if node.conjunction:
            yes = np.logical_and.reduce([p[0] for p in parts])
            no = np.logical_or.reduce([p[1] for p in parts])
        else:
            yes = np.logical_or.reduce([p[0] for p in parts])
            no = np.logical_and.reduce([p[1] for p in parts])
        return yes, no
    if isinstance(node, _Cmp):
        left, right = _value(node.left, facts), _value(node.right, facts)
        if isinstance(left, Column) and not isinstance(right, Column):
            return _cmp_const(left, node.op, right)
        if isinstance(right, Column) and not isinstance(left, Column):
            return _cmp_const(right, _FLIP[node.op], left)
        if isinstance(left, Column) and isinstance(right, Column):
            return _cmp_columns(left, node.op, right)
        same = bool(_OPS[node.op](left, right))
        return np.full(n, same), np.full(n, not same)
    if isinstance(node, _In):
        return _member(node, facts)
    raise Unsupported(f"{type(node).__name__}")


def _cmp_columns(left: Column, op: str, right: Column) -> Masks:
    known = left.known & right.known
    if left.kind in _SCALE and right.kind in _SCALE:
        a = left.values * (_SCALE["money"] // _SCALE[left.kind])
        b = right.values * (_SCALE["money"] // _SCALE[right.kind])
        result = np.asarray(_OPS[op](a, b), dtype=bool)
    elif left.kind == right.kind and left.kind in ("str", "bool") and op in ("==", "!="):
        result = np.asarray(_OPS[op](left.values, right.values), dtype=bool)
    else:
        raise Unsupported("comparison of two facts of these types")
    return result & known, ~result & known


def _member(node: _In, facts: Facts) -> Masks:
    item, container = _value(node.item, facts), _value(node.container, facts)
    if not isinstance(item, Column) and isinstance(container, Column) and container.kind == "set":
        result = _set_member(facts, container, item).copy()
        known = container.known
    elif isinstance(item, Column) and not isinstance(container, Column) and item.kind == "str":
        result = np.isin(item.values, list(container))
        known = item.known
    else:
        raise Unsupported("membership of these types")
    if node.negated:
        result = ~result
    return result & known, ~result & known


def _set_member(facts: Facts, column: Column, item: object) -> np.ndarray:
    """``column.member(item)``, with the set column's Arrow lists flattened once
    per batch for all its items (a policy asks ~10 flags, each flattening cost
    ~0.4 ms of a 32k batch), and kept in the column's members as it keeps them."""
    found = column.members.get(item) if isinstance(item, str) else None
    if found is not None or column.lists is None or not isinstance(item, str):
        return found if found is not None else column.member(item)
    key = ("flattened", id(column))
    flat: tuple[Column, np.ndarray, np.ndarray] | None = facts.cache.get(key)
    if flat is None or flat[0] is not column:
        words = pc.list_flatten(column.lists)
        parents = np.asarray(pc.list_parent_indices(column.lists), dtype=np.int64)
        texts = np.asarray(words.to_numpy(zero_copy_only=False), dtype=object)
        flat = facts.cache[key] = (column, texts, parents)
    found = np.zeros(len(column.values), bool)
    found[flat[2][flat[1] == item]] = True
    column.members[item] = found
    return found


# Facts the columnar evaluator computes for every vectorised row, and the
# families (per tier / per channel) it computes.
COMPUTED_FACTS = frozenset(
    {
        "amount_overdue", "balance", "breathing_space_active", "broken_promises", "cease_received",
        "consecutive_failed_attempts", "conversations_30d", "currency", "days_overdue", "days_since_payment",
        "dispute_open", "flags", "in_validation_period", "last_payment_amount", "local_hour",
        "number_invalid", "opt_out", "paid_in_cycle", "plan_active", "time_barred", "weekday",
        "promise_active", "promise_kept", "promise_broken", "promise_shortfall", "promise_to_pay.amount",
        "segment", "product", "jurisdiction",
        "actor_type", "plan_days_to_due", "forbearance_assessed", "letter_of_claim_reply",
        "placed", "placed_with", "days_placed",
    }
)  # fmt: skip
COMPUTED_FAMILIES = ("done.", "days_since.", "attempts.", "contacts_7d.", "contacts_30d.")
# Facts whose inputs are not typed columns: a row that carries them goes to the
# reference engine, so on every vectorised row they are truly missing.
ROW_FALLBACK_FACTS = frozenset(
    {
        "principal",
        "consent_day",
        "plan_status",  # plans with terms travel raw (portfolio/arrow.py)
        "plan_missed_instalment",
        "days_since_missed_instalment",
    }
)
ROW_FALLBACK_FAMILIES = ("attributes.",)


def check_fact(name: str) -> None:
    """Raise :class:`Unsupported` for a fact the columnar evaluator would get
    wrong (a fact added to the engine without a column here must never be
    read as missing: that could lift a hold)."""
    if name in COMPUTED_FACTS or name in ROW_FALLBACK_FACTS:
        return
    if name.startswith(COMPUTED_FAMILIES + ROW_FALLBACK_FAMILIES):
        return
    raise Unsupported(f"fact `{name}` has no column")


def check_tree(node: _Node) -> None:
    """Raise :class:`Unsupported` when ``node`` uses a form not computed here."""
    if isinstance(node, _Fact):
        check_fact(node.name)
        return
    if isinstance(node, _Lit):
        return
    if isinstance(node, _Not):
        check_tree(node.item)
    elif isinstance(node, _BoolOp):
        for item in node.items:
            check_tree(item)
    elif isinstance(node, _Cmp | _In):
        left, right = (node.left, node.right) if isinstance(node, _Cmp) else (node.item, node.container)
        for side in (left, right):
            if not isinstance(side, _Lit | _Fact):
                raise Unsupported(f"{type(side).__name__} in a comparison")
            if isinstance(side, _Fact):
                check_fact(side.name)
    else:
        raise Unsupported(type(node).__name__)
