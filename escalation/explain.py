"""Render a decision for a person: what, why, what was blocked and by which
rule (with its citation), and every rule evaluated with its figures."""

from __future__ import annotations

import json

from escalation.decision import Decision

__all__ = ["render_text"]

_MARK = {True: "✔", False: "·"}


def render_text(decision: Decision) -> str:
    """The decision as readable text (no colour codes)."""
    lines = [
        f"account     {decision.account_id}",
        f"decided at  {decision.decided_at.isoformat()}",
        f"policy      {decision.policy.id} {decision.policy.version} ({decision.policy.fingerprint})",
        f"engine      {decision.engine.version} ({decision.engine.backend})",
        "",
    ]
    head = decision.status.upper()
    if decision.action:
        head += f"  {decision.action} by {decision.channel} (severity {decision.severity})"
    if decision.hold:
        head += f"  hold `{decision.hold}`"
    lines.append(head)
    lines.append(f"  {decision.reason}")
    if decision.next_eligible_at is not None:
        lines.append(f"  next eligible at {decision.next_eligible_at.isoformat()}")
    if decision.blocked:
        lines += ["", "Blocked"]
        for b in decision.blocked:
            until = b.until.isoformat() if b.until else "until an event lifts it"
            lines.append(f"  {b.action} by {b.channel}: guard `{b.guard}` — {b.reason}")
            lines.append(f"      cite: {b.cite}; until: {until}")
    lines += ["", "Trace (most severe first; ✔ = hold applied / condition met / guard blocked)"]
    for entry in decision.trace:
        target = f" [{entry.action}/{entry.channel}]" if entry.action else ""
        figures = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in entry.facts.items())
        lines.append(f"  {_MARK[entry.matched]} {entry.rule}{target}  {figures}".rstrip())
        if entry.note:
            lines.append(f"      {entry.note}")
    return "\n".join(lines) + "\n"
