"""Render a decision for a person: what, why, what was blocked and by which
rule (with its citation), and every rule evaluated with its figures. The
headings follow the locale; the reason is the decision's own (decide in the
locale you want to read)."""

from __future__ import annotations

import json

from escalation._language import Locale
from escalation.decision import Decision

__all__ = ["render_text"]

_MARK = {True: "✔", False: "·"}
_WORDS: dict[Locale, dict[str, str]] = {
    "en": {
        "account": "account     ",
        "decided": "decided at  ",
        "policy": "policy      ",
        "engine": "engine      ",
        "experiment": "experiment  ",
        "arm": "arm",
        "severity": "severity",
        "hold": "hold",
        "next": "next eligible at",
        "blocked": "Blocked",
        "cite": "cite",
        "until": "until",
        "event": "until an event lifts it",
        "trace": "Trace (most severe first; ✔ = hold applied / condition met / guard blocked)",
        "by": "by",
    },
    "zh-CN": {
        "account": "账户        ",
        "decided": "决定时间    ",
        "policy": "策略        ",
        "engine": "引擎        ",
        "experiment": "实验        ",
        "arm": "组别",
        "severity": "严重程度",
        "hold": "暂停",
        "next": "下次可执行时间",
        "blocked": "被阻止的行动",
        "cite": "依据",
        "until": "解除时间",
        "event": "须待事件解除",
        "trace": "规则追踪（由重到轻；✔ = 暂停生效 / 条件满足 / 规则阻止）",
        "by": "渠道",
    },
}


def render_text(decision: Decision, locale: Locale = "en") -> str:
    """The decision as readable text (no colour codes), headings in ``locale``."""
    w = _WORDS.get(locale, _WORDS["en"])
    lines = [
        f"{w['account']}{decision.account_id}",
        f"{w['decided']}{decision.decided_at.isoformat()}",
        f"{w['policy']}{decision.policy.id} {decision.policy.version} ({decision.policy.fingerprint})",
        f"{w['engine']}{decision.engine.version} ({decision.engine.backend})",
        "",
    ]
    if decision.experiment is not None:  # champion/challenger: which arm's policy decided
        lines.insert(3, f"{w['experiment']}{decision.experiment.id} ({w['arm']} {decision.experiment.arm})")
    head = decision.status.upper()
    if decision.action:
        head += f"  {decision.action} {w['by']} {decision.channel} ({w['severity']} {decision.severity})"
    if decision.hold:
        head += f"  {w['hold']} `{decision.hold}`"
    lines.append(head)
    lines.append(f"  {decision.reason}")
    if decision.next_eligible_at is not None:
        lines.append(f"  {w['next']} {decision.next_eligible_at.isoformat()}")
    if decision.blocked:
        lines += ["", w["blocked"]]
        for b in decision.blocked:
            until = b.until.isoformat() if b.until else w["event"]
            lines.append(f"  {b.action} {w['by']} {b.channel}: guard `{b.guard}` — {b.reason}")
            lines.append(f"      {w['cite']}: {b.cite}; {w['until']}: {until}")
    lines += ["", w["trace"]]
    for entry in decision.trace:
        target = f" [{entry.action}/{entry.channel}]" if entry.action else ""
        figures = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in entry.facts.items())
        lines.append(f"  {_MARK[entry.matched]} {entry.rule}{target}  {figures}".rstrip())
        if entry.note:
            lines.append(f"      {entry.note}")
    return "\n".join(lines) + "\n"
