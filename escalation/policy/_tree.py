"""The typed expression tree a checked condition compiles to, and the
*unknown* value (a missing fact)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from escalation._language import FactType
from escalation.policy._condition import Op

__all__ = ["MISSING", "ExprError", "Facts", "TruthFn", "ValueFn"]


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
