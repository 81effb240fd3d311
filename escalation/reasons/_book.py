"""A policy's phrasebook: everything its reasons say that no account changes,
worked out once per policy and locale — labels, imperatives, the atoms of
each tier's condition with their phrases and a compiled walk for the ones
that fail — so rendering a decision only fills in the account's figures.

Every entry is built by the reference functions (:mod:`._conditions`,
:mod:`._labels`), so a sentence from the book is the reference's sentence;
``tests/test_words_reasons.py`` holds the two renderers equal. Books are
built lazily and kept per (policy, locale); the per-currency entries are
filled on first use. Two threads may build the same entry: both get equal
values and one is kept, so no lock is needed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from escalation._facts import is_money
from escalation._language import Locale
from escalation.guards import GuardBase
from escalation.policy import Policy, TierRule
from escalation.policy._closures import truth_fn
from escalation.policy._tree import MISSING, _BoolOp, _Fact, _Node, _Not
from escalation.reasons import _format as f
from escalation.reasons._conditions import (
    _NOW,
    _OR,
    _UNKNOWN,
    Atom,
    atoms,
    comparison,
    figure,
    phrase,
)
from escalation.reasons._labels import channel_noun, guard_label, tier_label
from escalation.reasons._words import BOOLS, CHANNEL

__all__ = ["Book", "book_for"]

Truth = Callable[[Mapping[str, Any]], "bool | None"]
_SHOWN_WITH_THRESHOLD = ("days_overdue", "amount_overdue", "balance")
_LEAF, _DOWN, _EITHER = 0, 1, 2
_EXACT = 10**18  # ints Decimal quantizes exactly at its default precision (28 digits)


@dataclass(frozen=True, slots=True)
class _Step:
    """One node of a condition, with the polarity it is asked for: the
    reference ``unmet`` walk, its decisions taken once (``_DOWN``: look at
    ``children``; ``_LEAF``: report ``atom``; ``_EITHER``: report ``options``)."""

    truth: Truth
    positive: bool
    kind: int
    children: tuple[_Step, ...] = ()
    atom: Atom | None = None
    options: tuple[Atom, ...] = ()


def _step(node: _Node, positive: bool) -> _Step:
    truth = truth_fn(node)
    if isinstance(node, _Not):
        return _Step(truth, positive, _DOWN, (_step(node.item, not positive),))
    if isinstance(node, _BoolOp) and node.conjunction == positive:
        return _Step(truth, positive, _DOWN, tuple(_step(item, positive) for item in node.items))
    if isinstance(node, _BoolOp):
        return _Step(truth, positive, _EITHER, options=tuple(Atom(item, positive) for item in node.items))
    return _Step(truth, positive, _LEAF, atom=Atom(node, positive))


def _walk(step: _Step, values: Mapping[str, Any], out: list[Atom | list[Atom]]) -> None:
    if step.kind == _DOWN:
        # not asked whether it holds: a conjunction holds (three-valued) only
        # when each part does and a negation when its part fails, so the
        # parts' own answers leave out exactly what the reference leaves out
        for child in step.children:
            _walk(child, values, out)
        return
    got = step.truth(values)
    if got is not None and got == step.positive:
        return  # this part holds (unknown holds neither way)
    if step.kind == _LEAF:
        out.append(step.atom)  # type: ignore[arg-type]
    else:
        out.append(list(step.options))


def _atoms(step: _Step) -> list[Atom]:
    """The atoms a walk can report."""
    found = [step.atom] if step.atom is not None else []
    found.extend(step.options)
    for child in step.children:
        found.extend(_atoms(child))
    return found


class Said:
    """One atom in words: the reference ``phrase`` without the figure now,
    per currency (a money threshold is said in the account's currency), and
    what it reads to say the figure now."""

    __slots__ = ("atom", "book", "cmp", "count", "flag", "texts")

    def __init__(self, atom: Atom, book: Book) -> None:
        self.atom, self.book = atom, book
        self.cmp = comparison(atom)
        self.count = self.cmp is not None and not is_money(self.cmp[0])  # an int figure is just grouped
        node = atom.node
        self.flag = node.name if self.cmp is None and isinstance(node, _Fact) and node.name in BOOLS else None
        self.texts: dict[str, str] = {}

    def base(self, currency: str) -> str:
        text = self.texts.get(currency)
        if text is None:
            book = self.book
            text = self.texts[currency] = phrase(self.atom, {}, currency, book.locale, book.label, now=False)
        return text

    def now(self, values: Mapping[str, Any], currency: str) -> str:
        """The reference ``phrase(..., now=True)``."""
        text = self.base(currency)
        if self.cmp is not None:
            current = values.get(self.cmp[0], MISSING)
            if current is MISSING:
                return text + _UNKNOWN[self.book.locale]
            locale = self.book.locale
            if self.count and type(current) is int and -_EXACT < current < _EXACT:
                shown = f"{current:,}"  # what figure() gives an int, without Decimal's round trip
            else:
                shown = figure(self.cmp[0], current, currency, locale)
            return text + _NOW[locale].format(v=shown)
        if self.flag is not None and values.get(self.flag, MISSING) is MISSING:
            return text + _UNKNOWN[self.book.locale]
        return text


@dataclass(frozen=True, slots=True)
class Figures:
    """A tier's figures as far as they do not depend on the account: the
    text after the days overdue, after the amount owed and after the balance
    (``None``: not shown), and each other atom of its condition (a disjunction
    as its polarity and alternatives ``(truth, text)``, said when they hold)."""

    days: str
    owed: str
    balance: str | None
    others: tuple[str | tuple[bool, tuple[tuple[Truth, str], ...]], ...]


class TierWords:
    """What a tier's reasons say whatever the account."""

    __slots__ = ("book", "cmp", "do", "figures", "generic", "heads", "label", "others", "own", "rule", "walk")

    def __init__(self, rule: TierRule, book: Book) -> None:
        self.rule, self.book = rule, book
        model = rule.model
        self.label = book.labels[model.id]
        self.generic = self.label == channel_noun(model.channel_order[0].value, book.locale)
        self.do: str | None = None  # the zh verb phrase, the reference's, on first use
        found = atoms(rule.when)
        self.cmp = {c[0]: c for a in found if (c := comparison(a)) is not None and c[1] == ">="}
        self.others = [
            a
            for a in found
            if not (
                (c := comparison(a)) is not None
                and (c[0] in _SHOWN_WITH_THRESHOLD or c[0].startswith("attempts."))
            )
        ]
        self.own = (f"attempts.{model.id}", f"done.{model.id}")
        self.walk = _step(rule.when.tree, True)
        self.heads: dict[str, str] = {}
        self.figures: dict[str, Figures] = {}


class Book:
    """A policy's phrasebook in one locale."""

    def __init__(self, policy: Policy, locale: Locale) -> None:
        self.locale: Locale = locale
        self.labels: dict[str, str] = {}
        self.rules: dict[str, TierRule] = {}
        for rule in policy.tiers:  # the first of an id wins, as Policy.tier() finds it
            self.rules.setdefault(rule.model.id, rule)
            self.labels.setdefault(rule.model.id, tier_label(rule.model, locale))
        self.tiers = {tier_id: TierWords(rule, self) for tier_id, rule in self.rules.items()}
        self._nouns: dict[str, str] = {}
        # keyed by identity (hashing a model walks all its fields); made whole
        # here, so nothing from outside the policy is kept (those are said afresh)
        self._guards = {id(g.model): (g.model, guard_label(g.model, locale)) for g in policy.guards}
        self._said = {id(a): Said(a, self) for words in self.tiers.values() for a in _atoms(words.walk)}

    def label(self, tier_id: str, locale: Locale | None = None) -> str:
        """The reference ``Renderer.label``: a tier's label, or a channel's noun."""
        if locale is not None and locale != self.locale:
            rule = self.rules.get(tier_id)
            return tier_label(rule.model, locale) if rule is not None else channel_noun(tier_id, locale)
        found = self.labels.get(tier_id)
        if found is None:
            found = self._nouns.get(tier_id)
            if found is None:
                found = self._nouns[tier_id] = channel_noun(tier_id, self.locale)
        return found

    def guard_label(self, guard: GuardBase) -> str:
        """The reference ``guard_label`` in the book's locale."""
        found = self._guards.get(id(guard))
        if found is None or found[0] is not guard:
            return guard_label(guard, self.locale)
        return found[1]

    def said(self, atom: Atom) -> Said:
        """The words of an atom (kept for the atoms of the policy's tiers)."""
        found = self._said.get(id(atom))
        if found is None or found.atom is not atom:
            return Said(atom, self)
        return found

    def alternatives(self, items: Atom | list[Atom], values: Mapping[str, Any], currency: str) -> str:
        """The reference ``alternatives``: an atom, or a failed disjunction."""
        if isinstance(items, Atom):
            return self.said(items).now(values, currency)
        return _OR[self.locale].join(self.said(a).now(values, currency) for a in items)

    def figures(self, words: TierWords, currency: str) -> Figures:
        """The account-independent part of the reference ``Renderer._figures``."""
        found = words.figures.get(currency)
        if found is not None:
            return found
        zh, locale, cmp = self.locale == "zh-CN", self.locale, words.cmp
        entry = CHANNEL.get(words.rule.model.channel_order[0].value, CHANNEL["phone"])
        if "days_overdue" in cmp:
            start = cmp["days_overdue"][2]
            days = (
                f"天（第{start}天起可{entry[3]}）"
                if zh
                else f" overdue ({f.plural(words.label)} from day {start})"
            )
        else:
            days = "天" if zh else " overdue"

        def paren_from(fact: str) -> str:
            shown = f.money(cmp[fact][2], currency, locale)
            return f"（{shown}起）" if zh else f" (from {shown})"

        owed = paren_from("amount_overdue") if "amount_overdue" in cmp else ""
        balance = paren_from("balance") if "balance" in cmp else None
        others: list[str | tuple[bool, tuple[tuple[Truth, str], ...]]] = []
        for atom in words.others:
            node = atom.node
            if isinstance(node, _BoolOp) and node.conjunction != atom.positive:
                items = [Atom(item, atom.positive) for item in node.items]
                said = tuple((truth_fn(a.node), self.said_once(a, currency)) for a in items)
                others.append((atom.positive, said))
            else:
                others.append(self.said_once(atom, currency))
        found = words.figures[currency] = Figures(days, owed, balance, tuple(others))
        return found

    def said_once(self, atom: Atom, currency: str) -> str:
        return phrase(atom, {}, currency, self.locale, self.label, now=False)


_BOOKS: dict[tuple[int, str], tuple[Policy, Book]] = {}


def book_for(policy: Policy, locale: Locale) -> Book:
    """The phrasebook of ``policy`` in ``locale`` (built on first use)."""
    # keyed by identity, not by value: hashing a policy walks all of it; the
    # entry holds the policy, so its id is not reused while it is cached
    found = _BOOKS.get((id(policy), locale))
    if found is None or found[0] is not policy:
        if len(_BOOKS) >= 64:
            _BOOKS.clear()
        found = _BOOKS[(id(policy), locale)] = (policy, Book(policy, locale))
    return found[1]
