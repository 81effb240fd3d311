"""The decision: what to do next for one account, and why.

Decisions are built by the engine with ``model_construct`` (they are correct
by construction) and serialise deterministically: ``to_json()`` gives the
same bytes for the same policy, record and instant."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = ["BlockedAction", "Decision", "EngineInfo", "ErrorRow", "PolicyInfo", "TraceEntry"]

M = TypeVar("M", bound=BaseModel)

Status = Literal["act", "wait", "hold", "none"]
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


class Decision(BaseModel):
    """The next permitted action for one account at one instant."""

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
    blocked: list[BlockedAction] = []
    trace: list[TraceEntry] = []
    policy: PolicyInfo
    engine: EngineInfo

    def to_json(self, *, indent: int | None = None) -> str:
        """Deterministic JSON text of the decision."""
        return self.model_dump_json(indent=indent)

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


def construct(cls: type[M], **values: Any) -> M:
    """Construct ``cls`` from values the engine already knows to be valid,
    skipping validation (``model_construct`` without its per-field default
    lookups; every field must be given). On the hot path of ``decide``."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model
