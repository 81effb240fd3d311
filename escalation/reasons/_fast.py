"""The renderer :func:`escalation.reasons.render` uses: the reference
:class:`~escalation.reasons._render.Renderer` reading its words from the
policy's phrasebook (:mod:`._book`) instead of working them out again for
every decision. Only the figures of the account are computed per call."""

from __future__ import annotations

import re

from escalation._facts import Situation
from escalation._language import Locale
from escalation.guards import GuardBase, GuardVerdict
from escalation.policy import Policy, TierRule
from escalation.reasons._book import Book, TierWords, _walk
from escalation.reasons._conditions import Atom
from escalation.reasons._format import count_noun
from escalation.reasons._render import Renderer

__all__ = ["FastRenderer"]

# a decimal digit (every one is a str.isdigit() character): found in C, where
# the reference asks isdigit of each character in turn
_DECIMAL = re.compile(r"\d")


class FastRenderer(Renderer):
    """A :class:`Renderer` over a :class:`Book`; ``tests/test_words_reasons.py``
    holds its sentences equal to the reference's."""

    def __init__(self, policy: Policy, sit: Situation, locale: Locale, book: Book) -> None:
        super().__init__(policy, sit, locale)
        self.book = book

    def _words(self, tier: TierRule) -> TierWords | None:
        words = self.book.tiers.get(tier.model.id)
        return words if words is not None and words.rule is tier else None  # a tier of another policy

    def tier_of(self, tier_id: str) -> TierRule:
        return self.book.rules[tier_id]

    def label(self, tier_id: str, locale: Locale | None = None) -> str:
        return self.book.label(tier_id, locale)

    def _generic(self, tier: TierRule) -> bool:
        words = self._words(tier)
        return words.generic if words is not None else super()._generic(tier)

    def do(self, tier: TierRule) -> str:
        words = self._words(tier)
        if words is None:
            return super().do(tier)
        if words.do is None:
            words.do = super().do(tier)
        return words.do

    def head(self, tier: TierRule, channel: str | None = None) -> str:
        words = self._words(tier)
        if words is None:
            return super().head(tier, channel)
        key = channel or ""
        found = words.heads.get(key)
        if found is None:
            found = words.heads[key] = super().head(tier, channel)
        return found

    def unmet(self, tier: TierRule) -> list[Atom | list[Atom]]:
        words = self._words(tier)
        if words is None:
            return super().unmet(tier)
        found = self._unmet.get(tier.model.id)
        if found is None:
            found = self._unmet[tier.model.id] = []
            _walk(words.walk, self.sit.values, found)
        return found

    def _say(self, items: Atom | list[Atom]) -> str:
        return self.book.alternatives(items, self.sit.values, self.currency)

    def _guard_label(self, guard: GuardBase) -> str:
        return self.book.guard_label(guard)

    def _tries_used(self, tier: TierRule) -> bool:
        words = self._words(tier)
        if words is None:
            return super()._tries_used(tier)
        failed, own, said = self.unmet(tier), words.own, self.book.said
        return bool(failed) and all(
            isinstance(a, Atom) and (c := said(a).cmp) is not None and c[0] in own for a in failed
        )

    def _guards(self, verdicts: list[GuardVerdict] | tuple[GuardVerdict, ...], blocked: bool = False) -> str:
        if len(verdicts) == 1:  # the usual case: one guard, no duplicates to drop
            return self._guard(verdicts[0], with_until=not blocked)
        return super()._guards(verdicts, blocked)

    def _nothing_text(self, out: list[str]) -> str:
        zh = self.zh
        text = ("；" if zh else "; ").join(out)
        # a text with no decimal digit may still hold another isdigit() character: the reference decides
        if _DECIMAL.search(text) is None:
            return super()._nothing_text(out)
        if zh:
            return f"暂无可执行的行动：{text}。"
        return f"Nothing to do{'' if self._blocked_now else ' yet'}: {text}."

    def _figures(self, tier: TierRule) -> list[str]:
        words = self._words(tier)
        if words is None:
            return super()._figures(tier)
        sit, zh = self.sit, self.zh
        fig = self.book.figures(words, self.currency)
        days = sit.days_overdue
        days_text = f"逾期{days}{fig.days}" if zh else f"{count_noun(days, 'day')}{fig.days}"
        owed = self.money(sit.account.amount_overdue)
        out = [days_text, (f"欠款 {owed}" if zh else f"{owed} owed") + fig.owed]
        if fig.balance is not None:
            balance = self.money(sit.account.balance)
            out.append((f"余额{balance}" if zh else f"balance {balance}") + fig.balance)
        values = sit.values
        for other in fig.others:
            if isinstance(other, str):
                out.append(other)
                continue
            positive, options = other
            held = [text for truth, text in options if truth(values) == positive]
            out.append(("或" if zh else " or ").join(held or [text for _truth, text in options]))
        return out
