"""escalation — a rule-based collections escalation engine.

Load a YAML policy, give it an account record and an instant, get back the
next permitted action with a reason::

    from escalation import Engine
    engine = Engine.from_file("policies/consumer-credit-cn.yaml")
    decision = engine.decide(record, now=now)
"""

from __future__ import annotations

import contextlib

from escalation.decision import BlockedAction, Decision, EngineInfo, ErrorRow, PolicyInfo, TraceEntry
from escalation.dryrun import AccountChange, DryRunResult, PolicySummary, Tally, compare, dry_run
from escalation.engine import Engine, engine_version
from escalation.errors import (
    BackendUnavailableError,
    EscalationError,
    EvaluationError,
    PolicyError,
    PolicyIssue,
    RecordError,
    RecordIssue,
    UsageError,
)
from escalation.explain import render_text
from escalation.journal import (
    Journal,
    JournalError,
    JournalRecord,
    JsonlJournal,
    SqliteJournal,
    StoredPolicy,
    open_journal,
    record_decision,
)
from escalation.masking import Masking, MaskingError
from escalation.policy import Policy, load_policy
from escalation.record import (
    Account,
    ActorType,
    BreathingSpace,
    Channel,
    Direction,
    HistoryEvent,
    Outcome,
    PaymentPlan,
    PlanStatus,
    PromiseToPay,
    parse_account,
)

__version__ = engine_version()

__all__ = [
    "Account",
    "AccountChange",
    "ActorType",
    "BackendUnavailableError",
    "BlockedAction",
    "BreathingSpace",
    "Channel",
    "Decision",
    "Direction",
    "DryRunResult",
    "Engine",
    "EngineInfo",
    "ErrorRow",
    "EscalationError",
    "EvaluationError",
    "HistoryEvent",
    "Journal",
    "JournalError",
    "JournalRecord",
    "JsonlJournal",
    "Masking",
    "MaskingError",
    "Outcome",
    "PaymentPlan",
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
    "__version__",
    "compare",
    "dry_run",
    "load_policy",
    "open_journal",
    "parse_account",
    "record_decision",
    "render_text",
]

# Show the public path in reprs, tracebacks and docs (as httpx does).
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = "escalation"
del _name, _obj
