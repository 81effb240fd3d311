"""escalation — a rule-based collections escalation engine.

Load a YAML policy, give it an account record and an instant, get back the
next permitted action with a reason::

    from escalation import Engine
    engine = Engine.from_file("policies/consumer-credit-cn.yaml")
    decision = engine.decide(record, now=now)
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from escalation.decision import (
    BlockedAction,
    Decision,
    EngineInfo,
    ErrorRow,
    ExperimentInfo,
    Instalment,
    Offer,
    PolicyInfo,
    TraceEntry,
)
from escalation.engine import Engine, engine_version
from escalation.errors import (
    BackendUnavailableError,
    EscalationError,
    EvaluationError,
    ExperimentError,
    JournalError,
    MaskingError,
    MissingExtraError,
    PolicyError,
    PolicyIssue,
    RecordError,
    RecordIssue,
    UsageError,
)
from escalation.experiment import Experiment, ExperimentEngine, arm_of, load_experiment
from escalation.explain import render_text
from escalation.journal import Journal, JournalRecord, StoredPolicy, open_journal, record_decision
from escalation.journal.masking import Masking
from escalation.policy import Policy, load_policy, load_policy_bundle
from escalation.portfolio.results import AccountChange, DryRunResult, PolicySummary, Tally
from escalation.record import (
    Account,
    ActorType,
    BreathingSpace,
    Channel,
    Direction,
    HistoryEvent,
    InconvenientPlace,
    InconvenientTime,
    LetterOfClaimReply,
    Outcome,
    PaymentPlan,
    PlanInstalment,
    PlanStatus,
    PromiseToPay,
    parse_account,
)
from escalation.sink import DecisionSink, ListSink

if TYPE_CHECKING:
    from escalation.contacts import ContactAuditResult, Violation, audit_contacts
    from escalation.journal.jsonl import JsonlJournal
    from escalation.journal.sqlite import SqliteJournal
    from escalation.portfolio.dryrun import compare, dry_run

__version__ = engine_version()

# The file journals import sqlite3 / fcntl (POSIX-only): loaded on first use.
# So does dry_run's process pool (multiprocessing → subprocess → fcntl).
_LAZY = {
    "ContactAuditResult": "escalation.contacts",
    "JsonlJournal": "escalation.journal.jsonl",
    "SqliteJournal": "escalation.journal.sqlite",
    "Violation": "escalation.contacts",
    "audit_contacts": "escalation.contacts",
    "compare": "escalation.portfolio.dryrun",
    "dry_run": "escalation.portfolio.dryrun",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'escalation' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    value.__module__ = "escalation"
    globals()[name] = value
    return value


__all__ = [
    "Account",
    "AccountChange",
    "ActorType",
    "BackendUnavailableError",
    "BlockedAction",
    "BreathingSpace",
    "Channel",
    "ContactAuditResult",
    "Decision",
    "DecisionSink",
    "Direction",
    "DryRunResult",
    "Engine",
    "EngineInfo",
    "ErrorRow",
    "EscalationError",
    "EvaluationError",
    "Experiment",
    "ExperimentEngine",
    "ExperimentError",
    "ExperimentInfo",
    "HistoryEvent",
    "InconvenientPlace",
    "InconvenientTime",
    "Instalment",
    "Journal",
    "JournalError",
    "JournalRecord",
    "JsonlJournal",
    "LetterOfClaimReply",
    "ListSink",
    "Masking",
    "MaskingError",
    "MissingExtraError",
    "Offer",
    "Outcome",
    "PaymentPlan",
    "PlanInstalment",
    "PlanStatus",
    "Policy",
    "PolicyError",
    "PolicyInfo",
    "PolicyIssue",
    "PolicySummary",
    "PromiseToPay",
    "RecordError",
    "RecordIssue",
    "SqliteJournal",
    "StoredPolicy",
    "Tally",
    "TraceEntry",
    "UsageError",
    "Violation",
    "__version__",
    "arm_of",
    "audit_contacts",
    "compare",
    "dry_run",
    "load_experiment",
    "load_policy",
    "load_policy_bundle",
    "open_journal",
    "parse_account",
    "record_decision",
    "render_text",
]

# Show the public path in reprs, tracebacks and docs (as httpx does).
for _name in __all__:
    if _name in _LAZY:
        continue
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = "escalation"
del _name, _obj
