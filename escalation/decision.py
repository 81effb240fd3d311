"""The decision: what to do next for one account, and why.

Decisions are built by the engine with ``model_construct`` (they are correct
by construction) and serialise deterministically: ``to_json()`` gives the
same bytes for the same policy, record and instant."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from escalation._canonical import canonical
from escalation.errors import EscalationError, EvaluationError, RecordError

if TYPE_CHECKING:
    from escalation.record import Account

__all__ = [
    "BlockedAction",
    "Decision",
    "EngineInfo",
    "ErrorRow",
    "ExperimentInfo",
    "Instalment",
    "Offer",
    "PolicyInfo",
    "TraceEntry",
    "decision_id",
    "error_row",
    "rule_name",
]

M = TypeVar("M", bound=BaseModel)

Status = Literal["act", "offer", "wait", "hold", "none"]
RuleKind = Literal["hold", "tier", "guard"]


def rule_name(kind: RuleKind, rule_id: str) -> str:
    """The name of a rule in traces: ``hold:<id>``, ``tier:<id>``, ``guard:<id>``."""
    return f"{kind}:{rule_id}"


_MODEL = ConfigDict(extra="forbid", frozen=True)


class BlockedAction(BaseModel):
    """A tier (on one channel) that a guard blocked, with the legal source."""

    model_config = _MODEL

    action: str
    channel: str
    guard: str
    reason: str
    cite: str
    until: dt.datetime | None = None


class TraceEntry(BaseModel):
    """One rule evaluated: ``hold:<id>``, ``tier:<id>`` or ``guard:<id>``.

    ``matched`` means the hold applied, the tier's condition held, or the
    guard blocked. ``facts`` are the figures it read; ``note`` says what
    followed from it."""

    model_config = _MODEL

    rule: str
    matched: bool
    facts: dict[str, Any] = {}
    action: str | None = None
    channel: str | None = None
    note: str | None = None


class PolicyInfo(BaseModel):
    """Which policy decided."""

    model_config = _MODEL

    id: str
    version: str
    fingerprint: str


class EngineInfo(BaseModel):
    """Which engine and evaluator decided."""

    model_config = _MODEL

    version: str
    backend: str


class ExperimentInfo(BaseModel):
    """Which champion/challenger experiment, and which of its arms, decided
    (see :mod:`escalation.experiment`)."""

    model_config = _MODEL

    id: str
    arm: Literal["champion", "challenger"]


class Instalment(BaseModel):
    """One instalment of an offered plan: its number (1-based), due date and amount."""

    model_config = _MODEL

    number: int
    due: dt.date
    amount: Decimal


class Offer(BaseModel):
    """An offer a collector may make now, with its exact figures (the account's
    currency; computed in whole minor units, never floats).

    ``amount`` is what the offer is computed on (the balance or the arrears);
    ``pay`` is the least the customer pays under it (a settlement at its
    largest discount; ``pay_up_to`` at its smallest); ``waived`` what is
    forgiven; ``due_date`` the new due date (extension) or the date to pay by
    (settlement, fee waiver); ``instalments`` the plan, the last absorbing the
    remainder; ``summary`` says it in the decision's locale."""

    model_config = _MODEL

    id: str
    kind: str
    approval: str
    currency: str
    amount: Decimal
    pay: Decimal
    pay_up_to: Decimal | None = None
    waived: Decimal = Decimal(0)
    down_payment: Decimal | None = None
    instalments: list[Instalment] = []
    due_date: dt.date | None = None
    summary: str
    cite: str | None = None
    description: str | None = None


class Decision(BaseModel):
    """The next permitted action for one account at one instant.

    ``offers`` (only in the JSON when there are any) lists what a collector
    may offer now: with a contact (``act`` on a channel that reaches the
    customer), or as the decision itself (status ``offer``) when the policy
    says an offer comes before the next step (a tier's ``offer_first``).
    ``agency`` (likewise only when set) names the agency of a ``place`` or
    ``recall`` action. ``experiment`` (only when an
    :class:`~escalation.experiment.ExperimentEngine` decided) names the
    experiment and the account's arm; ``policy`` is then that arm's policy."""

    model_config = _MODEL

    account_id: str
    decided_at: dt.datetime
    status: Status
    action: str | None = None
    channel: str | None = None
    severity: int | None = None
    reason: str
    next_eligible_at: dt.datetime | None = None
    hold: str | None = None
    stage: str | None = None
    tags: list[str] = []
    id: str = ""
    blocked: list[BlockedAction] = []
    agency: str | None = None
    offers: list[Offer] = []
    trace: list[TraceEntry] = []
    experiment: ExperimentInfo | None = None
    policy: PolicyInfo
    engine: EngineInfo

    # No return annotation: with one, pydantic would replace the model's
    # serialisation schema (the OpenAPI document) by that of the annotation.
    @model_serializer(mode="wrap")
    def _without_empty_offers(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # `offers` appears only where there are offers: decisions of policies
        # without any serialise as before (journals, snapshots, decision ids).
        data: dict[str, Any] = handler(self)
        if not data.get("offers", True):
            del data["offers"]
        if "agency" in data and data["agency"] is None:  # likewise: only placements and recalls
            del data["agency"]
        if "experiment" in data and data["experiment"] is None:  # only under an experiment
            del data["experiment"]
        return data

    def to_json(self, *, indent: int | None = None) -> str:
        """Deterministic JSON text of the decision."""
        return self.model_dump_json(indent=indent)

    def blocked_by(self, guard: str) -> bool:
        """Whether guard ``guard`` blocked anything in this decision (listed in
        ``blocked``, or a matched guard entry in the trace)."""
        if any(b.guard == guard for b in self.blocked):
            return True
        return any(t.matched for t in self.trace_for("guard", guard))

    def trace_for(
        self, kind: RuleKind, rule_id: str, *, action: str | None = None, channel: str | None = None
    ) -> list[TraceEntry]:
        """The trace entries of one rule (``kind`` ``hold``, ``tier`` or
        ``guard``), for one action and channel when given."""
        name = rule_name(kind, rule_id)
        return [
            t
            for t in self.trace
            if t.rule == name
            and (action is None or t.action == action)
            and (channel is None or t.channel == channel)
        ]

    def outcome(self) -> dict[str, Any]:
        """The decision without engine identity — what two evaluators must agree on."""
        return self.model_dump(mode="json", exclude={"engine"})


class ErrorRow(BaseModel):
    """An account that could not be decided (bad record or evaluation error).

    Batches yield these instead of stopping: nothing is lost."""

    model_config = _MODEL

    account_id: str | None = None
    source: str | None = None
    row: int | None = None
    field: str | None = None
    code: str
    message: str


def error_row(
    exc: EscalationError,
    *,
    row: int | None = None,
    source: str | None = None,
    account_id: str | None = None,
) -> ErrorRow:
    """The one way an error becomes an :class:`ErrorRow`: a bad record names
    its first bad field and code, and lists every issue; an evaluation error
    has code ``evaluation-error``. ``account_id`` is used when the error does
    not carry one (a record that failed before its id was read)."""
    if isinstance(exc, RecordError):
        first = exc.issues[0]
        return ErrorRow(
            account_id=exc.account_id or account_id,
            source=exc.source or source,
            row=exc.row if exc.row is not None else row,
            field=first.field or None,
            code=first.code,
            message="; ".join(str(issue) for issue in exc.issues),
        )
    code = "evaluation-error" if isinstance(exc, EvaluationError) else "error"
    return ErrorRow(account_id=account_id, source=source, row=row, code=code, message=str(exc))


def decision_id(fingerprint: str, account: Account, now: dt.datetime) -> str:
    """``dec_`` + a hash of the policy fingerprint, the canonical record and the
    instant: the same question always gets the same id, on every backend."""
    instant = now.astimezone(dt.UTC).isoformat()
    digest = hashlib.sha256(f"{fingerprint}\n{instant}\n{canonical(account)}".encode()).hexdigest()
    return "dec_" + digest[:32]


# BaseModel's slots, set through their own descriptors (what object.__setattr__
# finds for them, without the lookup): a traced decision constructs some thirty models
_SLOTS: dict[str, Any] = dict(BaseModel.__dict__)
set_fields = _SLOTS["__pydantic_fields_set__"].__set__
set_extra = _SLOTS["__pydantic_extra__"].__set__
set_private = _SLOTS["__pydantic_private__"].__set__
_SET = object.__setattr__
new_model = object.__new__  # BaseModel defines no __new__


def construct(cls: type[M], **values: Any) -> M:
    """Construct ``cls`` from values the engine already knows to be valid,
    skipping validation (``model_construct`` without its per-field default
    lookups; every field must be given). On the hot path of ``decide``."""
    model = new_model(cls)
    _SET(model, "__dict__", values)
    set_fields(model, set(values))
    set_extra(model, None)
    set_private(model, None)
    return model
