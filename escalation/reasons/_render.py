"""One sentence per decision, from its parts, in ``en`` or ``zh-CN``.

Every sentence names figures from the record (days overdue, amounts in the
currency's format, dates in the account's local time), says actions in a
collector's words (the policy's labels), and for ``wait``/``none``/blocked
names what is missing — never an expression or an internal id."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from escalation._facts import Situation
from escalation._language import Locale
from escalation.guards import GuardBase, GuardVerdict
from escalation.policy import Policy, TierRule
from escalation.reasons import _format as f
from escalation.reasons._conditions import (
    Atom,
    alternatives,
    atoms,
    comparison,
    figure,
    holding,
    joined,
    phrase,
    unmet,
)
from escalation.reasons._labels import channel_noun, guard_label, hold_label, tier_label
from escalation.reasons._offer import offer_sentence
from escalation.reasons._pieces import guard_detail, pending, required
from escalation.reasons._words import CHANNEL, RECORD_DATES, word
from escalation.reasons.parts import (
    ActParts,
    HoldParts,
    NoneParts,
    OfferParts,
    Parts,
    WaitParts,
)

__all__ = ["Renderer", "guard_detail"]

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
_SHOWN_WITH_THRESHOLD = ("days_overdue", "amount_overdue", "balance")


class Renderer:
    """Renders the parts of one decision (one situation) in one locale."""

    def __init__(self, policy: Policy, sit: Situation, locale: Locale) -> None:
        self.policy = policy
        self.sit = sit
        self.locale: Locale = locale
        self.zh = locale == "zh-CN"
        self.currency = sit.account.currency
        self._blocked_now = False
        self._unmet: dict[str, list[Atom | list[Atom]]] = {}  # per tier: asked by two pieces

    def unmet(self, tier: TierRule) -> list[Atom | list[Atom]]:
        """The failing parts of the tier's condition (computed once per decision)."""
        found = self._unmet.get(tier.model.id)
        if found is None:
            found = self._unmet[tier.model.id] = unmet(tier.when, self.sit.values)
        return found

    # ------------------------------------------------------------ words

    def tier_of(self, tier_id: str) -> TierRule:
        """The policy's tier named ``tier_id`` (KeyError when unknown)."""
        return self.policy.tier(tier_id)

    def label(self, tier_id: str, locale: Locale | None = None) -> str:
        """A tier's label, or a channel's noun (``contacts_7d.sms``)."""
        try:
            return tier_label(self.policy.tier(tier_id).model, locale or self.locale)
        except KeyError:
            return channel_noun(tier_id, locale or self.locale)

    def money(self, amount: Decimal) -> str:
        return f.money(amount, self.currency, self.locale)

    def day(self, moment: dt.datetime | dt.date) -> str:
        local = moment.astimezone(self.sit.tz).date() if isinstance(moment, dt.datetime) else moment
        return f.date(local, self.locale, self.sit.today)

    def instant(self, moment: dt.datetime) -> str:
        return f.date_time(moment.astimezone(self.sit.tz), self.locale, self.sit.today)

    def _channel(self, tier: TierRule) -> tuple[str, str, str, str, str]:
        return CHANNEL.get(tier.model.channel_order[0].value, CHANNEL["phone"])

    def _generic(self, tier: TierRule) -> bool:
        """Whether the tier's label is just its channel's noun (``call``)."""
        return self.label(tier.model.id) == channel_noun(tier.model.channel_order[0].value, self.locale)

    def do(self, tier: TierRule) -> str:
        """zh: the verb phrase of the tier's action (``致电``, ``寄出催收函``)."""
        label, first = self.label(tier.model.id), tier.model.channel_order[0].value
        if first == "phone":
            return "致电" if self._generic(tier) else f"拨打{label}"
        if first in ("sms", "email", "letter"):
            return f"{CHANNEL[first][3]}{label}"
        return f"进行{label}"

    def head(self, tier: TierRule, channel: str | None = None) -> str:
        """The imperative: ``Call the customer``, ``Send the demand letter``."""
        label = self.label(tier.model.id)
        first = tier.model.channel_order[0].value
        channel = channel or first
        entry = CHANNEL.get(channel, CHANNEL["phone"])
        if self.zh:
            if channel != first:
                return f"改为{entry[3]}{entry[2]}（代替{label}）"
            return "致电客户" if first == "phone" and self._generic(tier) else self.do(tier)
        if channel != first:
            verb = {"phone": "Call the customer", "visit": "Visit the customer"}.get(channel)
            article = "an" if entry[0][0] in "aeiouAEIOUS" else "a"
            return f"{verb or f'Send {article} {entry[0]}'} instead of the {label}"
        if channel == "phone":
            return "Call the customer" if self._generic(tier) else f"Make the {label}"
        if channel in ("sms", "email", "letter"):
            return f"Send the {label}"
        return f"Make the {label}"

    def account(self) -> str:
        """``13 days overdue, CNY 2,450.00 owed`` / ``逾期13天，欠款 ¥2,450.00``."""
        days = self.sit.days_overdue
        owed = self.money(self.sit.account.amount_overdue)
        if self.zh:
            return f"逾期{days}天，欠款 {owed}"
        return f"{f.count_noun(days, 'day')} overdue, {owed} owed"

    # ------------------------------------------------------------ statuses

    def render(self, parts: Parts) -> str:
        if isinstance(parts, HoldParts):
            return self.hold(parts)
        if isinstance(parts, ActParts):
            return self.act(parts)
        if isinstance(parts, WaitParts):
            return self.wait(parts)
        if isinstance(parts, OfferParts):
            return offer_sentence(self, parts)
        return self.nothing(parts)

    def hold(self, parts: HoldParts) -> str:
        label = self.fill(hold_label(parts.hold.model, self.locale))
        until = parts.until
        if self.zh:
            head = f"暂停催收至{self.instant(until)}" if until else "暂停催收"
            return f"{head}：{label}；{self.account()}。"
        head = f"On hold until {self.instant(until)}" if until else "On hold"
        return f"{head}: {label}; {self.account()}."

    def act(self, parts: ActParts) -> str:
        tier, sit = parts.tier, self.sit
        model = tier.model
        preferred = [v for t, _c, vs in parts.held_back if t is tier for v in vs]
        head = self.head(tier, parts.channel.value)
        if self.zh and preferred and parts.channel != model.channel_order[0]:
            head = head[:-1] + f"：{self._guards(preferred)}）"
        elif preferred:
            head += self._paren(self._guards(preferred))
        figures = self._figures(tier)
        steps = [
            self._done(need, model.wait is not None and self._below(tier) == need)
            for need in model.requires
            if sit.tier_done.get(need, 0) > 0
        ]
        if model.wait is not None and (below := self._below(tier)) and below not in model.requires:
            last = sit.tier_counted.get(below)
            if last is not None:
                steps.append(self._since(below, last))
        steps.append(self._attempt(tier))
        others: dict[str, list[GuardVerdict]] = {}
        for t, _c, verdicts in parts.held_back:
            if t is not tier:
                others.setdefault(t.model.id, []).extend(verdicts)
        for tier_id, found in others.items():
            label = self.label(tier_id)
            why = self._guards(found)
            steps.append(f"{label}暂缓（{why}）" if self.zh else f"the {label} is held back ({why})")
        if self.zh:
            return f"{head}：{'，'.join(figures)}；{'；'.join(steps)}。"
        return f"{head}: {', '.join(figures)}; {'; '.join(steps)}."

    def wait(self, parts: WaitParts) -> str:
        head = self.head(parts.tier, parts.channel.value)
        whys = [pending(self, p, parts.tier) for p in parts.pending]
        whys = [w for w in dict.fromkeys(whys) if w]
        when = self.instant(parts.when)
        if self.zh:
            return f"等待至{when}再{head}" + (f"：{'；'.join(whys)}。" if whys else "。")
        verb = head[0].lower() + head[1:]
        return f"Wait until {when} to {verb}" + (f": {'; '.join(whys)}." if whys else ".")

    def nothing(self, parts: NoneParts) -> str:
        sit, out = self.sit, []
        if sit.days_overdue <= 0 and not parts.exhausted and not parts.blocked:
            balance = self.money(sit.account.balance)
            out.append(f"未逾期（余额{balance}）" if self.zh else f"not overdue (balance {balance})")
        grouped: dict[str, list[str]] = {}
        for tier, verdicts in parts.blocked:
            grouped.setdefault(self._guards(verdicts, blocked=True), []).append(self.label(tier.model.id))
        for why, labels in grouped.items():
            if self.zh:
                out.append(f"{'、'.join(labels)}被阻止：{why}")
            else:
                names = joined([f"the {label}" for label in labels], "en")
                out.append(f"{names} {'is' if len(labels) == 1 else 'are'} blocked: {why}")
        self._blocked_now = bool(parts.blocked)
        if parts.blocked and not all(t.model.ongoing for t, _v in parts.blocked):
            return self._nothing_text(out)  # the ladder itself is blocked: that is the story
        if parts.exhausted:
            out.append(self._used_up(max(parts.exhausted, key=lambda t: t.severity)))
        top = max((t.severity for t in parts.exhausted), default=0)
        if sit.stage is not None and not parts.upcoming and sit.stage_severity > top:
            label = self.label(sit.stage)
            out.append(f"已到{label}阶段" if self.zh else f"the account is at the {label} step")
        for tier in parts.upcoming:
            if self._tries_used(tier):  # its own tries are used up: say so, look further
                out.append(self._no_tries(tier))
                continue
            if needs := self._needs(tier):
                label = self.label(tier.model.id)
                out.append(f"{label}需{needs}" if self.zh else f"the {label} needs {needs}")
            break
        return self._nothing_text(out)

    def _nothing_text(self, out: list[str]) -> str:
        text = ("；" if self.zh else "; ").join(out)
        if not any(map(str.isdigit, text)):
            text += ("；" if self.zh else "; ") + self.account() if text else self.account()
        if self.zh:
            return f"暂无可执行的行动：{text}。"
        return f"Nothing to do{'' if self._blocked_now else ' yet'}: {text}."

    # ------------------------------------------------------------ pieces

    def _below(self, tier: TierRule) -> str | None:
        return self.policy.tiers[tier.severity - 2].model.id if tier.severity > 1 else None

    def _paren(self, text: str) -> str:
        return f"（{text}）" if self.zh else f" ({text})"

    def _figures(self, tier: TierRule) -> list[str]:
        """The account's figures, with the thresholds of the tier's condition."""
        sit, values = self.sit, self.sit.values
        cmp = {c[0]: c for a in atoms(tier.when) if (c := comparison(a)) is not None and c[1] == ">="}
        entry = self._channel(tier)
        days = sit.days_overdue
        if "days_overdue" in cmp:
            start = cmp["days_overdue"][2]
            if self.zh:
                days_text = f"逾期{days}天（第{start}天起可{entry[3]}）"
            else:
                label = f.plural(self.label(tier.model.id))
                days_text = f"{f.count_noun(days, 'day')} overdue ({label} from day {start})"
        else:
            days_text = f"逾期{days}天" if self.zh else f"{f.count_noun(days, 'day')} overdue"
        owed = self.money(sit.account.amount_overdue)
        owed_text = f"欠款 {owed}" if self.zh else f"{owed} owed"
        if "amount_overdue" in cmp:
            owed_text += self._paren(self._from(cmp["amount_overdue"][2]))
        out = [days_text, owed_text]
        if "balance" in cmp:
            balance = self.money(sit.account.balance)
            text = f"余额{balance}" if self.zh else f"balance {balance}"
            out.append(text + self._paren(self._from(cmp["balance"][2])))
        for atom in atoms(tier.when):
            c = comparison(atom)
            if c is not None and (c[0] in _SHOWN_WITH_THRESHOLD or c[0].startswith("attempts.")):
                continue
            held = holding(atom, values)
            texts = [phrase(a, values, self.currency, self.locale, self.label, now=False) for a in held]
            out.append(("或" if self.zh else " or ").join(texts))
        return out

    def _from(self, amount: Any) -> str:
        shown = self.money(Decimal(amount))
        return f"{shown}起" if self.zh else f"from {shown}"

    def _done(self, need: str, with_age: bool) -> str:
        """``2 reminder SMS sent (last on 22 Nov)`` / ``已发送提醒短信2条（最近一次11月22日）``."""
        sit = self.sit
        done, last = sit.tier_done.get(need, 0), sit.tier_counted.get(need)
        tier = self.tier_of(need)
        entry, label = self._channel(tier), self.label(need)
        when = ""
        if last is not None:
            age = (sit.today - sit.local_date(last)).days
            if self.zh:
                when = f"（最近一次{self.day(last)}" + (f"，已过{age}天）" if with_age else "）")
            else:
                when = f" (last on {self.day(last)}" + (f", {f.span(age, 'en')} ago)" if with_age else ")")
        if self.zh:
            return f"已{self.do(tier)}{done}{entry[4]}{when}"
        return f"{f.count_noun(done, label)} {entry[1]}{when}"

    def _since(self, below: str, last: dt.datetime) -> str:
        age = (self.sit.today - self.sit.local_date(last)).days
        label = self.label(below)
        if self.zh:
            return f"{self.day(last)}的{label}已过{age}天"
        return f"the {label} of {self.day(last)} was {f.span(age, 'en')} ago"

    def _attempt(self, tier: TierRule) -> str:
        """``this is call 3 of at most 10`` / ``本次为第3次致电（最多10次）``."""
        n = self.sit.tier_done[tier.model.id] + 1
        limit = tier.model.repeat.max
        label = self.label(tier.model.id)
        if self.zh:
            what = self.do(tier)
            if limit == 1:
                return f"{what}仅限一次"
            return f"本次为第{n}次{what}" + (f"（最多{limit}次）" if limit is not None else "")
        if limit == 1:
            return f"the only {label} allowed"
        return f"this is {label} {n}" + (f" of at most {limit}" if limit is not None else "")

    def _used_up(self, tier: TierRule) -> str:
        limit = tier.model.repeat.max or 0
        entry, label = self._channel(tier), self.label(tier.model.id)
        if self.zh:
            return f"已{self.do(tier)}{limit}{entry[4]}（已达上限）"
        if limit == 1:
            return f"the {label} was {entry[1]} (once only)"
        return f"all {limit} {f.plural(label)} {entry[1]}"

    def _tries_used(self, tier: TierRule) -> bool:
        """Whether the tier fails only on a limit of its own tries (``attempts.<id> < 4``)."""
        failed = self.unmet(tier)
        own = (f"attempts.{tier.model.id}", f"done.{tier.model.id}")
        return bool(failed) and all(
            isinstance(a, Atom) and (c := comparison(a)) is not None and c[0] in own for a in failed
        )

    def _no_tries(self, tier: TierRule) -> str:
        """``no demand letter tries left (4 made)`` / ``催收函已尝试4次，无剩余次数``."""
        tried = self.sit.values.get(f"attempts.{tier.model.id}", 0)
        label = self.label(tier.model.id)
        if self.zh:
            return f"{label}已尝试{tried}次，无剩余次数"
        return f"no {label} tries left ({tried} made)"

    def _needs(self, tier: TierRule) -> str:
        """What the tier still needs: its failing conditions and missing steps."""
        sit = self.sit
        parts = [self._say(a) for a in self.unmet(tier)]
        if tier.severity != sit.stage_severity:
            for need, n in tier.model.requires.items():
                done = sit.tier_done.get(need, 0)
                if done < n:
                    parts.append(required(self, need, n, done))
        return joined(parts, self.locale)

    def _say(self, items: Atom | list[Atom]) -> str:
        """A failing part of a condition in words, with the figure now."""
        return alternatives(items, self.sit.values, self.currency, self.locale, self.label)

    def _guard_label(self, guard: GuardBase) -> str:
        return guard_label(guard, self.locale)

    def _guards(self, verdicts: list[GuardVerdict] | tuple[GuardVerdict, ...], blocked: bool = False) -> str:
        texts = list(dict.fromkeys(self._guard(v, with_until=not blocked) for v in verdicts))
        return ("；" if self.zh else "; ").join(texts)

    def _guard(self, verdict: GuardVerdict, with_until: bool) -> str:
        label = self._guard_label(verdict.rule.model)
        detail = guard_detail(verdict, self.sit, self.locale, with_until)
        return label + ((f"：{detail}" if self.zh else f": {detail}") if detail else "")

    def fill(self, template: str) -> str:
        """``{fact}`` and ``{record.date}`` placeholders, formatted."""
        sit = self.sit

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in sit.values:
                return figure(name, sit.values[name], self.currency, self.locale)
            recorded = sit.record_date(name)
            if recorded is not None:
                return self.day(recorded)
            return word(RECORD_DATES, name, self.locale)

        return _PLACEHOLDER.sub(one, template)
