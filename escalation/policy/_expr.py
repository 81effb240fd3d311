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
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from escalation._language import FactType
from escalation.errors import EvaluationError
from escalation.policy._condition import FALSE, TRUE, AllOf, AnyOf, Atom, Cond, Const, Op

__all__ = [
    "MISSING",
    "Compiled",
    "ExprError",
    "FactType",
    "compile_expression",
]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

Facts = Mapping[str, Any]
ValueFn = Callable[[Facts], Any]
TruthFn = Callable[[Facts], bool | None]


@dataclass(frozen=True)
class ExprError(Exception):
    """A problem in one expression: offset within the expression text."""

    code: str
    message: str
    column: int = 0


# ---------------------------------------------------------------- typed tree


@dataclass(frozen=True)
class _Node:
    type: FactType


@dataclass(frozen=True)
class _Lit(_Node):
    value: Any


@dataclass(frozen=True)
class _Fact(_Node):
    name: str


@dataclass(frozen=True)
class _Arith(_Node):
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Cmp(_Node):
    op: Op
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _In(_Node):
    item: _Node
    container: _Node
    negated: bool


@dataclass(frozen=True)
class _BoolOp(_Node):
    conjunction: bool
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Not(_Node):
    item: _Node


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


# ---------------------------------------------------------------- native


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


def _value_fn(node: _Node) -> ValueFn:
    if isinstance(node, _Lit):
        constant = node.value
        return lambda facts: constant
    if isinstance(node, _Fact):
        name = node.name
        return lambda facts: facts.get(name, MISSING)
    if isinstance(node, _Arith):
        left, right, op = _value_fn(node.left), _value_fn(node.right), node.op

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
    truth = _truth_fn(node)
    return lambda facts: MISSING if (t := truth(facts)) is None else t


def _truth_fn(node: _Node) -> TruthFn:
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
        inner = _truth_fn(node.item)

        def negate(facts: Facts) -> bool | None:
            value = inner(facts)
            return None if value is None else not value

        return negate
    if isinstance(node, _BoolOp):
        items = tuple(_truth_fn(i) for i in node.items)
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
        left, right, compare = _value_fn(node.left), _value_fn(node.right), _PY_CMP[node.op]

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
        item, container, negated = _value_fn(node.item), _value_fn(node.container), node.negated

        def member(facts: Facts) -> bool | None:
            a, b = item(facts), container(facts)
            if a is MISSING or b is MISSING:
                return None
            return (a in b) != negated

        return member
    raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover


# ---------------------------------------------------------------- lowering


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
            self.derived[name] = _truth_fn(node)
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
        if not (isinstance(left, _Fact) and isinstance(right, _Lit)):
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
    typed = checker.boolean(tree.body)
    return Compiled(
        source=source,
        canonical=_canonical_text(tree),
        facts=frozenset(checker.facts),
        truth=_truth_fn(typed),
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
                left, right, op = right, left, _MIRROR[op]
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
