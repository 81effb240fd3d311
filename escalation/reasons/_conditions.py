"""A condition in words: which of its parts fail for an account, each said
as a collector would say it, with the figure it needs and the figure now
(``61 days overdue (now 45)``) — never the expression itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from escalation._facts import is_money
from escalation._language import Locale
from escalation.policy._closures import truth_fn
from escalation.policy._expr import Compiled
from escalation.policy._tree import MISSING, _BoolOp, _Cmp, _Fact, _In, _Lit, _Node, _Not
from escalation.reasons import _format as f
from escalation.reasons._words import BOOLS, FACTS, FAMILIES, FLAGS, as_words, word

__all__ = ["Atom", "atoms", "comparison", "holding", "joined", "phrase", "unmet"]

_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_QUALIFIER: dict[Locale, dict[str, str]] = {
    "en": {">=": "", ">": "more than ", "<=": "at most ", "<": "fewer than ", "==": "", "!=": "other than "},
    "zh-CN": {">=": "", ">": "超过", "<=": "不超过", "<": "少于", "==": "", "!=": "非"},
}
_AND: dict[Locale, str] = {"en": " and ", "zh-CN": "且"}
_OR: dict[Locale, str] = {"en": " or ", "zh-CN": "或"}
_NOW: dict[Locale, str] = {"en": " (now {v})", "zh-CN": "（目前{v}）"}
_UNKNOWN: dict[Locale, str] = {"en": " (not known)", "zh-CN": "（未知）"}

Labeller = Callable[[str, Locale], str]  # a tier or channel id → its label


@dataclass(frozen=True)
class Atom:
    """One part of a condition, with its polarity (``positive=False``: its
    negation is what the condition asks for)."""

    node: _Node
    positive: bool = True


_COMPILED: dict[int, tuple[_Node, Callable[[Mapping[str, Any]], bool | None]]] = {}


def _compiled(node: _Node) -> Callable[[Mapping[str, Any]], bool | None]:
    # Keyed by identity, not by the node's value: hashing a frozen tree walks
    # all of it on every lookup. The entry holds the node, so its id is not reused.
    found = _COMPILED.get(id(node))
    if found is None or found[0] is not node:
        if len(_COMPILED) >= 4096:
            _COMPILED.clear()
        found = _COMPILED[id(node)] = (node, truth_fn(node))
    return found[1]


def _truth(node: _Node, values: Mapping[str, Any]) -> bool | None:
    return _compiled(node)(values)


def unmet(compiled: Compiled, values: Mapping[str, Any]) -> list[Atom | list[Atom]]:
    """The parts of ``compiled`` that fail for these facts: atoms of a
    conjunction one by one; a failed disjunction as a list of alternatives."""
    out: list[Atom | list[Atom]] = []

    def walk(node: _Node, positive: bool) -> None:
        got = _truth(node, values)
        if got is not None and got == positive:
            return  # this part holds (unknown holds neither way)
        if isinstance(node, _Not):
            walk(node.item, not positive)
        elif isinstance(node, _BoolOp) and node.conjunction == positive:
            for item in node.items:
                walk(item, positive)
        elif isinstance(node, _BoolOp):
            out.append([Atom(item, positive) for item in node.items])
        else:
            out.append(Atom(node, positive))

    walk(compiled.tree, True)
    return out


def atoms(compiled: Compiled) -> list[Atom]:
    """Every atom of a conjunction (for the figures of a condition that holds)."""
    out: list[Atom] = []

    def walk(node: _Node, positive: bool) -> None:
        if isinstance(node, _Not):
            walk(node.item, not positive)
        elif isinstance(node, _BoolOp) and node.conjunction == positive:
            for item in node.items:
                walk(item, positive)
        else:
            out.append(Atom(node, positive))

    walk(compiled.tree, True)
    return out


def holding(atom: Atom, values: Mapping[str, Any]) -> list[Atom]:
    """The atom itself, or the alternatives of a disjunction that hold."""
    node = atom.node
    if isinstance(node, _BoolOp) and node.conjunction != atom.positive:
        held = [Atom(item, atom.positive) for item in node.items if _truth(item, values) == atom.positive]
        return held or [Atom(item, atom.positive) for item in node.items]
    return [atom]


def comparison(atom: Atom) -> tuple[str, str, Any] | None:
    """``(fact, op, literal)`` of a fact-vs-literal comparison, with the
    atom's polarity applied; None for any other atom."""
    node = atom.node
    if not isinstance(node, _Cmp):
        return None
    left, right = node.left, node.right
    op: str = node.op
    if isinstance(left, _Lit) and isinstance(right, _Fact):
        left, right, op = right, left, _MIRRORED[op]
    if not (isinstance(left, _Fact) and isinstance(right, _Lit)):
        return None
    return left.name, op if atom.positive else _NEGATED[op], right.value


def figure(fact: str, value: Any, currency: str, locale: Locale) -> str:
    """One fact value: money with its currency, numbers grouped, words for ids."""
    if value is MISSING or value is None:
        return "?"
    if is_money(fact) and isinstance(value, Decimal | int):
        return f.money(Decimal(value), currency, locale)
    if isinstance(value, bool):
        return ("yes" if value else "no") if locale == "en" else ("是" if value else "否")
    if isinstance(value, int | Decimal):
        return f.number(value, 0 if Decimal(value) == Decimal(value).to_integral() else 2)
    return as_words(str(value))


def fact_phrase(fact: str, shown: str, locale: Locale, label: Labeller) -> str:
    """The fact's phrase around a figure: ``61 days overdue``, ``逾期61天``."""
    if fact in FACTS:
        text = word(FACTS, fact, locale).format(v=shown)
        return "1 day overdue" if text == "1 days overdue" else text
    family, _, member = fact.partition(".")
    if member and family in FAMILIES:
        return word(FAMILIES, family, locale).format(v=shown, label=label(member, locale))
    if family == "attributes" and member:
        return f"{as_words(member)} {shown}"
    return f"{as_words(fact)} {shown}"


def phrase(
    atom: Atom, values: Mapping[str, Any], currency: str, locale: Locale, label: Labeller, now: bool = True
) -> str:
    """What the atom asks for, in words, with the figure now (``now``)."""
    cmp = comparison(atom)
    node = atom.node
    if cmp is not None:
        fact, op, literal = cmp
        shown = _QUALIFIER[locale][op] + figure(fact, literal, currency, locale)
        text = fact_phrase(fact, shown, locale, label)
        if now:
            current = values.get(fact, MISSING)
            if current is MISSING:
                text += _UNKNOWN[locale]
            else:
                text += _NOW[locale].format(v=figure(fact, current, currency, locale))
        return text
    if isinstance(node, _Fact) and node.name in BOOLS:
        yes, no = BOOLS[node.name].get(locale) or BOOLS[node.name]["en"]
        unknown = _UNKNOWN[locale] if now and values.get(node.name, MISSING) is MISSING else ""
        return (yes if atom.positive else no) + unknown
    if isinstance(node, _In) and isinstance(node.item, _Lit) and isinstance(node.container, _Fact):
        has = atom.positive != node.negated
        flag = word(FLAGS, str(node.item.value), locale)
        if locale == "zh-CN":
            return f"有“{flag}”标记" if has else f"无“{flag}”标记"
        return f"the {flag} flag" if has else f"no {flag} flag"
    if isinstance(node, _In) and isinstance(node.item, _Fact) and isinstance(node.container, _Lit):
        has = atom.positive != node.negated
        options = ", ".join(as_words(str(v)) for v in node.container.value)
        name = as_words(node.item.name)
        if locale == "zh-CN":
            return f"{name}{'为' if has else '不为'}{options}之一"
        return f"{name} {'one of' if has else 'none of'} {options}"
    if isinstance(node, _Fact):
        name = as_words(node.name)
        if locale == "zh-CN":
            return f"{name}{'为是' if atom.positive else '为否'}"
        return f"{name}" if atom.positive else f"no {name}"
    names = sorted(_facts_in(node))
    joined = ", ".join(as_words(n) for n in names)
    return f"a condition on {joined}" if locale == "en" else f"关于{joined}的条件"


def alternatives(
    items: Atom | list[Atom], values: Mapping[str, Any], currency: str, locale: Locale, label: Labeller
) -> str:
    """An atom, or a failed disjunction said as ``A or B``."""
    if isinstance(items, Atom):
        return phrase(items, values, currency, locale, label)
    return _OR[locale].join(phrase(a, values, currency, locale, label) for a in items)


def joined(parts: list[str], locale: Locale) -> str:
    """``A, B and C`` / ``A、B且C``."""
    if len(parts) <= 1:
        return "".join(parts)
    if locale == "zh-CN":
        return "、".join(parts[:-1]) + "且" + parts[-1]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _facts_in(node: _Node) -> set[str]:
    if isinstance(node, _Fact):
        return {node.name}
    out: set[str] = set()
    for child in vars(node).values():
        if isinstance(child, _Node):
            out |= _facts_in(child)
        elif isinstance(child, tuple):
            for item in child:
                if isinstance(item, _Node):
                    out |= _facts_in(item)
    return out
