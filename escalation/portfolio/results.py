"""What a dry-run returns: per-policy summaries, the transition matrix and
the changed accounts, and their plain-JSON form (``summary.json``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from escalation.decision import PolicyInfo

__all__ = [
    "BUCKETS",
    "AccountChange",
    "ArmSummary",
    "DryRunResult",
    "PolicySummary",
    "SummaryBuilder",
    "Tally",
    "bucket",
    "change_row",
    "label",
    "summary_json",
]

BUCKETS = ((0, "not overdue"), (7, "1-7"), (30, "8-30"), (60, "31-60"), (90, "61-90"), (180, "91-180"))


@dataclass(frozen=True)
class Tally:
    """A count of accounts and the sum of their balances."""

    accounts: int
    balance: Decimal


@dataclass(frozen=True)
class PolicySummary:
    """What one policy decided for the portfolio."""

    policy: PolicyInfo
    by_status: dict[str, Tally]
    by_action: dict[str, Tally]
    guard_blocks: dict[str, int]
    by_bucket: dict[str, dict[str, int]]


@dataclass(frozen=True)
class ArmSummary:
    """One arm of a champion/challenger dry-run: its accounts, what its policy
    decided for them (``decisions``), and the transitions from the champion's
    decision to its own (all unchanged in the champion arm)."""

    arm: str
    accounts: int
    balance: Decimal
    decisions: PolicySummary
    transitions: dict[tuple[str, str], Tally]
    changed: int
    changed_balance: Decimal


@dataclass(frozen=True)
class AccountChange:
    """One account whose decision differs between baseline and candidate."""

    account_id: str
    balance: Decimal
    days_overdue: int
    baseline: str
    candidate: str
    baseline_reason: str
    candidate_reason: str


@dataclass(frozen=True)
class DryRunResult:
    """The outcome of a dry-run (and, with a baseline, the comparison)."""

    at: dt.datetime
    accounts: int
    decided: int
    errors: int
    candidate: PolicySummary
    baseline: PolicySummary | None = None
    transitions: dict[tuple[str, str], Tally] = field(default_factory=dict)
    changed: int = 0
    changed_balance: Decimal = Decimal(0)
    sample: tuple[AccountChange, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    #: which evaluator decided: ``native``, or ``columnar`` with how many rows
    #: it vectorised and how many went to the reference engine (``fallback``)
    backend: str = "native"
    vectorised: int = 0
    fallback: int = 0
    currency: str = ""
    order: tuple[str, ...] = ()  # decision labels, mildest first: statuses, then tiers by severity
    changed_days: dict[int, dict[str, int]] = field(default_factory=dict)  # days overdue → transition → n
    locale: str = "en"
    #: a champion/challenger dry-run: the experiment's id, the challenger's
    #: share, and each arm (``candidate`` is then the experiment, each account
    #: under its arm's policy, and ``baseline`` the champion for every account)
    experiment: str | None = None
    share: float | None = None
    arms: dict[str, ArmSummary] = field(default_factory=dict)


def label(row: dict[str, Any]) -> str:
    """What a decision does, for tables: the action, or the status in brackets."""
    return str(row["action"]) if row["status"] == "act" else f"({row['status']})"


def bucket(days: int) -> str:
    """The days-overdue bucket of ``days``."""
    for limit, name in BUCKETS:
        if days <= limit:
            return name
    return "181+"


def change_row(change: AccountChange) -> dict[str, Any]:
    """One changed account as plain JSON data (a line of `changes.jsonl`)."""
    return {
        "account_id": change.account_id,
        "balance": str(change.balance),
        "days_overdue": change.days_overdue,
        "baseline": change.baseline,
        "candidate": change.candidate,
        "baseline_reason": change.baseline_reason,
        "candidate_reason": change.candidate_reason,
    }


def _summary_json(summary: PolicySummary) -> dict[str, Any]:
    def tallies(table: dict[str, Tally]) -> dict[str, Any]:
        return {k: {"accounts": v.accounts, "balance": str(v.balance)} for k, v in table.items()}

    return {
        "policy": summary.policy.model_dump(),
        "by_status": tallies(summary.by_status),
        "by_action": tallies(summary.by_action),
        "guard_blocks": summary.guard_blocks,
        "by_days_overdue": summary.by_bucket,
    }


def _tallies_json(transitions: dict[tuple[str, str], Tally]) -> list[dict[str, Any]]:
    return [
        {"baseline": old, "candidate": new, "accounts": t.accounts, "balance": str(t.balance)}
        for (old, new), t in transitions.items()
    ]


def _arm_json(arm: ArmSummary) -> dict[str, Any]:
    return {
        "accounts": arm.accounts,
        "balance": str(arm.balance),
        **_summary_json(arm.decisions),
        "changed": {"accounts": arm.changed, "balance": str(arm.changed_balance)},
        "transitions": _tallies_json(arm.transitions),
    }


def summary_json(result: DryRunResult) -> dict[str, Any]:
    """The result as plain JSON data (``summary.json``)."""
    data: dict[str, Any] = {
        "at": result.at.isoformat(),
        "accounts": result.accounts,
        "decided": result.decided,
        "errors": result.errors,
        "backend": {"name": result.backend, "vectorised": result.vectorised, "fallback": result.fallback},
        "candidate": _summary_json(result.candidate),
    }
    if result.baseline is not None:
        data["baseline"] = _summary_json(result.baseline)
        data["changed"] = {"accounts": result.changed, "balance": str(result.changed_balance)}
        data["transitions"] = _tallies_json(result.transitions)
    if result.experiment is not None:
        data["experiment"] = {
            "id": result.experiment,
            "share": result.share,
            "arms": {name: _arm_json(arm) for name, arm in result.arms.items()},
        }
    return data


class SummaryBuilder:
    """Accumulates a :class:`PolicySummary`, row by row (``add``) or by the
    columnar path's group-bys (which fill its tables directly)."""

    def __init__(self, info: PolicyInfo) -> None:
        self.info = info
        self.status: dict[str, list[Any]] = {}
        self.action: dict[str, list[Any]] = {}
        self.blocks: dict[str, int] = {}
        self.buckets: dict[str, dict[str, int]] = {}

    def add(self, row: dict[str, Any], balance: Decimal, days: int) -> None:
        for table, key in ((self.status, row["status"]), (self.action, label(row))):
            entry = table.setdefault(key, [0, Decimal(0)])
            entry[0] += 1
            entry[1] += balance
        for guard in row["blocked_guards"]:
            self.blocks[guard] = self.blocks.get(guard, 0) + 1
        mix = self.buckets.setdefault(bucket(days), {})
        mix[label(row)] = mix.get(label(row), 0) + 1

    def freeze(self) -> PolicySummary:
        def tallies(table: dict[str, list[Any]]) -> dict[str, Tally]:
            return {k: Tally(v[0], v[1]) for k, v in sorted(table.items())}

        order = [name for _, name in BUCKETS] + ["181+"]
        return PolicySummary(
            policy=self.info,
            by_status=tallies(self.status),
            by_action=tallies(self.action),
            guard_blocks=dict(sorted(self.blocks.items(), key=lambda kv: (-kv[1], kv[0]))),
            by_bucket={
                name: dict(sorted(self.buckets[name].items())) for name in order if name in self.buckets
            },
        )
