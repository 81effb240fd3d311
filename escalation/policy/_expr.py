"""Condition expressions: parse with :mod:`ast` against a whitelist, type-check
against the fact catalogue, then compile

* to Python closures with three-valued logic (the ``native`` evaluator), and
* to the backend-neutral lowered form of :mod:`escalation.policy._condition`
  (negation normal form over scalar fields) for every other evaluator.

Nothing is ever passed to ``eval``. A fact that is missing for an account
(``days_since.demand_letter`` when no letter was sent) makes every
comparison that reads it *unknown*; unknown is never true, and ``not`` keeps
it unknown — so a condition that cannot be decided never makes an action
eligible (fail closed)."""

from __future__ import annotations

import ast
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from escalation._language import FactType
from escalation.policy._closures import truth_fn
from escalation.policy._condition import Op
from escalation.policy._tree import (
    MISSING,
    ExprError,
    Facts,
    TruthFn,
    _Arith,
    _BoolOp,
    _Cmp,
    _Fact,
    _In,
    _Lit,
    _Node,
    _Not,
)

__all__ = [
    "MISSING",
    "Compiled",
    "ExprError",
    "FactType",
    "compile_expression",
]


_CMP_OPS: dict[type[ast.cmpop], Op] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_ARITH_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}
_MAX_NODES = 200
# What a refused syntax node is called in a policy author's words.
_CONSTRUCTS = {
    "Call": "function calls",
    "Subscript": "subscripts (`x[...]`)",
    "Slice": "slices",
    "ListComp": "comprehensions",
    "SetComp": "comprehensions",
    "DictComp": "comprehensions",
    "GeneratorExp": "comprehensions",
    "Lambda": "lambdas",
    "IfExp": "if-else expressions",
    "JoinedStr": "f-strings",
    "Dict": "dictionaries",
    "Set": "set literals",
    "Starred": "starred expressions",
    "NamedExpr": "assignments",
    "Await": "await expressions",
    "Yield": "yield expressions",
    "YieldFrom": "yield expressions",
}
_MAX_LENGTH = 2_000


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


class _Checker:
    def __init__(self, catalogue: Mapping[str, FactType]) -> None:
        self.catalogue = catalogue
        self.facts: set[str] = set()

    def fail(self, node: ast.AST, code: str, message: str) -> ExprError:
        return ExprError(code, message, getattr(node, "col_offset", 0))

    def check(self, node: ast.expr) -> _Node:
        if isinstance(node, ast.BoolOp):
            items = tuple(self.boolean(v) for v in node.values)
            return _BoolOp(FactType.BOOL, isinstance(node.op, ast.And), items)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return _Not(FactType.BOOL, self.boolean(node.operand))
            if isinstance(node.op, ast.USub | ast.UAdd):
                inner = self.check(node.operand)
                if not inner.type.numeric:
                    raise self.fail(node, "type-mismatch", f"cannot negate a {inner.type.value}")
                if isinstance(node.op, ast.UAdd):
                    return inner
                if isinstance(inner, _Lit):
                    return _Lit(inner.type, -inner.value)
                return _Arith(inner.type, "-", _Lit(FactType.NUMBER, 0), inner)
            raise self.fail(node, "expression-not-allowed", "only `not` and `-` are allowed")
        if isinstance(node, ast.BinOp):
            op = _ARITH_OPS.get(type(node.op))
            if op is None:
                raise self.fail(node, "expression-not-allowed", "only `+ - * /` are allowed")
            left, right = self.check(node.left), self.check(node.right)
            for side in (left, right):
                if not side.type.numeric:
                    raise self.fail(node, "type-mismatch", f"`{op}` needs numbers, got a {side.type.value}")
            money = FactType.MONEY in (left.type, right.type)
            return _Arith(FactType.MONEY if money else FactType.NUMBER, op, left, right)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                return _Lit(FactType.BOOL, value)
            if isinstance(value, int):
                return _Lit(FactType.NUMBER, value)
            if isinstance(value, float):
                if not math.isfinite(value):
                    raise self.fail(node, "expression-not-allowed", "numbers must be finite")
                return _Lit(FactType.NUMBER, Decimal(repr(value)))
            if isinstance(value, str):
                return _Lit(FactType.STRING, value)
            raise self.fail(node, "expression-not-allowed", f"constant `{value!r}` is not allowed")
        if isinstance(node, ast.List | ast.Tuple):
            elements = [self.check(e) for e in node.elts]
            if not all(isinstance(i, _Lit) for i in elements):
                raise self.fail(node, "expression-not-allowed", "lists may hold only literal values")
            kinds = {i.type for i in elements}
            if len(kinds) > 1:
                raise self.fail(node, "type-mismatch", "a list must hold values of one type")
            return _Lit(FactType.LIST, tuple(i.value for i in elements if isinstance(i, _Lit)))
        if isinstance(node, ast.Name | ast.Attribute):
            name = _dotted(node)
            if name is None:
                raise self.fail(node, "expression-not-allowed", "only fact names may be dotted")
            if name in ("true", "false"):
                return _Lit(FactType.BOOL, name == "true")
            fact_type = self.catalogue.get(name)
            if fact_type is None:
                hint = difflib.get_close_matches(name, list(self.catalogue), n=1)
                suffix = f"; did you mean `{hint[0]}`?" if hint else ""
                raise self.fail(node, "unknown-fact", f"unknown fact `{name}`{suffix}")
            self.facts.add(name)
            return _Fact(fact_type, name)
        what = _CONSTRUCTS.get(type(node).__name__, "this construct")
        raise self.fail(node, "expression-not-allowed", f"{what} are not allowed in a condition")

    def boolean(self, node: ast.expr) -> _Node:
        checked = self.check(node)
        if checked.type is not FactType.BOOL:
            raise self.fail(
                node, "type-mismatch", f"expected a true/false condition, got a {checked.type.value}"
            )
        return checked

    def compare(self, node: ast.Compare) -> _Node:
        parts: list[_Node] = []
        left = self.check(node.left)
        for op_node, right_expr in zip(node.ops, node.comparators, strict=True):
            right = self.check(right_expr)
            if isinstance(op_node, ast.In | ast.NotIn):
                parts.append(self.membership(node, left, right, isinstance(op_node, ast.NotIn)))
            else:
                op = _CMP_OPS.get(type(op_node))
                if op is None:
                    raise self.fail(node, "expression-not-allowed", "`is` is not allowed; use `==`")
                if left.type.numeric and right.type.numeric:
                    pass
                elif left.type == right.type and left.type in (FactType.STRING, FactType.BOOL):
                    if op not in ("==", "!="):
                        raise self.fail(node, "type-mismatch", f"`{op}` needs numbers")
                else:
                    raise self.fail(
                        node,
                        "type-mismatch",
                        f"cannot compare a {left.type.value} with a {right.type.value}",
                    )
                parts.append(_Cmp(FactType.BOOL, op, left, right))
            left = right
        return parts[0] if len(parts) == 1 else _BoolOp(FactType.BOOL, True, tuple(parts))

    def membership(self, node: ast.AST, item: _Node, container: _Node, negated: bool) -> _Node:
        if container.type is FactType.SET:
            if not (isinstance(item, _Lit) and item.type is FactType.STRING):
                raise self.fail(node, "type-mismatch", "only a quoted string can be tested `in` a set fact")
        elif container.type is FactType.LIST and isinstance(container, _Lit):
            if not isinstance(item, _Fact):
                raise self.fail(node, "type-mismatch", "the left side of `in [...]` must be a fact")
            values = container.value
            if values and item.type is FactType.STRING and not all(isinstance(v, str) for v in values):
                raise self.fail(node, "type-mismatch", "a string fact can only be in a list of strings")
            if (
                values
                and item.type.numeric
                and not all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in values)
            ):
                raise self.fail(node, "type-mismatch", "a number fact can only be in a list of numbers")
            if item.type not in (FactType.STRING, FactType.NUMBER, FactType.MONEY):
                raise self.fail(node, "type-mismatch", f"a {item.type.value} cannot be tested `in` a list")
        else:
            raise self.fail(
                node, "type-mismatch", f"`in` needs a set fact or a list, got a {container.type.value}"
            )
        return _In(FactType.BOOL, item, container, negated)


_MIRRORED: dict[Op, Op] = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


# ---------------------------------------------------------------- entry point


@dataclass(frozen=True)
class Compiled:
    """One checked expression: its canonical text, the facts it reads, its
    native closure and its typed tree (for lowering)."""

    source: str
    canonical: str
    facts: frozenset[str]
    truth: TruthFn
    tree: _Node
    fact_order: tuple[str, ...] = ()  # ``facts`` sorted, for traces

    def __call__(self, facts: Facts) -> bool:
        """True only when the condition is decidedly true."""
        return self.truth(facts) is True


# `balance >= 3,000` parses as a tuple `(balance >= 3, 000)`: a number with
# thousands separators, which the error message should recognise.
_SEPARATED = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,])")


def compile_expression(source: str, catalogue: Mapping[str, FactType]) -> Compiled:
    """Parse, whitelist, type-check and compile one boolean condition.

    Raises :class:`ExprError` with a code and the column inside ``source``.
    """
    if not isinstance(source, str):
        raise ExprError("expression-syntax", "a condition must be a string")
    if len(source) > _MAX_LENGTH:
        raise ExprError("expression-too-long", f"longer than {_MAX_LENGTH} characters")
    text = " ".join(source.split())  # YAML folded text may carry newlines
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExprError(
            "expression-syntax", (exc.msg or "invalid syntax").lower(), max((exc.offset or 1) - 1, 0)
        ) from None
    if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
        raise ExprError("expression-too-long", f"more than {_MAX_NODES} syntax nodes")
    checker = _Checker(catalogue)
    try:
        typed = checker.boolean(tree.body)
    except ExprError as exc:
        separated = _SEPARATED.search(text)
        if separated is None or not isinstance(tree.body, ast.Tuple):
            raise
        plain = separated.group(0).replace(",", "")
        hint = f"; did you mean `{plain}`? (numbers take no thousands separators)"
        raise ExprError(exc.code, exc.message + hint, separated.start()) from None
    return Compiled(
        source=source,
        canonical=_canonical_text(tree),
        facts=frozenset(checker.facts),
        truth=truth_fn(typed),
        tree=typed,
        fact_order=tuple(sorted(checker.facts)),
    )


def _canonical_text(tree: ast.Expression) -> str:
    """The expression as canonical text: ``500.0`` and ``500`` (and ``0.50`` and
    ``0.5``) are the same number, so they print the same."""

    class Numbers(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.Constant:
            if isinstance(node.value, float) and node.value.is_integer():
                return ast.copy_location(ast.Constant(int(node.value)), node)
            return node

    return ast.unparse(Numbers().visit(tree))


def comparisons(compiled: Compiled) -> list[tuple[str, str, Any]]:
    """``(fact, op, constant)`` for each fact-vs-literal comparison in the
    expression, in source order — the figures a reason sentence quotes."""
    out: list[tuple[str, str, Any]] = []

    def walk(node: _Node) -> None:
        if isinstance(node, _Cmp):
            left, right, op = node.left, node.right, node.op
            if isinstance(left, _Lit) and isinstance(right, _Fact):
                left, right, op = right, left, _MIRRORED[op]
            if isinstance(left, _Fact) and isinstance(right, _Lit):
                out.append((left.name, op, right.value))
        elif isinstance(node, _BoolOp):
            for item in node.items:
                walk(item)
        elif isinstance(node, _Not):
            walk(node.item)
        elif isinstance(node, _In):
            if isinstance(node.item, _Lit) and isinstance(node.container, _Fact):
                out.append(
                    (node.container.name, "contains" if not node.negated else "lacks", node.item.value)
                )
            elif isinstance(node.item, _Fact) and isinstance(node.container, _Lit):
                out.append((node.item.name, "not in" if node.negated else "in", list(node.container.value)))
        elif isinstance(node, _Fact) and node.type is FactType.BOOL:
            out.append((node.name, "is", True))

    walk(compiled.tree)
    return out
