"""The response model: how customers answer each action, what each action
costs, and how the book drifts without any action — the assumptions a
simulation runs on, as a YAML file validated like a policy.

Every number carries its ``basis``: a published figure with its source, or
the word ``assumption`` (with a why). A simulation is only as good as these
numbers; the report names the model and the file so a reader can check them.

Rules are matched first-match-wins (like holds) on the action's channel, tier
id or tags, the account's segment and its days overdue; the simulation checks
at start that every tier and channel of the policy has a rule that matches
whatever the segment and days overdue (no action goes unanswered)."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from escalation.errors import PolicyError
from escalation.policy._load import load_document
from escalation.record import Channel, Outcome

__all__ = [
    "BUNDLED_MODELS",
    "REACHED",
    "AmountShare",
    "Charges",
    "Money",
    "ResponseModel",
    "ResponseModelError",
    "ResponseRule",
    "bundled_model",
    "load_response_model",
    "response_model_schema",
]

_MODEL = ConfigDict(extra="forbid", frozen=True)

#: Outcomes that reach the customer: a payment or a dispute may follow them.
REACHED = frozenset({"delivered", "conversation", "voicemail", "sent"})
#: The bundled models, by profile name (``portfolio generate --profile``).
BUNDLED_MODELS = {"cn-card": "cn-card.yaml", "us-card": "us-card.yaml", "uk-loan": "uk-loan.yaml"}

Basis = Annotated[str, Field(min_length=3, max_length=600, description="`assumption: why` or a source")]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4, allow_inf_nan=False)]


class ResponseModelError(PolicyError):
    """A response-model file is invalid: every issue, located (``path:line:col``)."""


class Figure(BaseModel):
    """A count of days with its basis."""

    model_config = _MODEL
    value: int = Field(ge=1, le=3650)
    basis: Basis


class Charges(BaseModel):
    """Interest and fees added to the balance of an active account each day:
    ``daily_rate`` × balance, rounded down to the currency's minor unit."""

    model_config = _MODEL
    daily_rate: Annotated[Decimal, Field(ge=0, le=Decimal("0.01"), decimal_places=8)]
    basis: Basis


class AmountShare(BaseModel):
    """One point of the amount distribution: pay ``share`` of the arrears with probability ``p``."""

    model_config = _MODEL
    share: Annotated[Decimal, Field(gt=0, le=1, decimal_places=4)]
    p: Probability


class Amounts(BaseModel):
    """How much a customer pays (or promises), as shares of the arrears."""

    model_config = _MODEL
    shares: tuple[AmountShare, ...] = Field(min_length=1, max_length=20)
    basis: Basis

    @model_validator(mode="after")
    def _sums_to_one(self) -> Amounts:
        total = math.fsum(s.p for s in self.shares)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"the probabilities of `shares` sum to {total:g}, not 1")
        return self


class Rate(BaseModel):
    """A probability with its basis."""

    model_config = _MODEL
    p: Probability
    basis: Basis


class Promise(BaseModel):
    """After a right-party conversation: the chance of a promise to pay, the
    chance it is kept, and in how many days it falls due."""

    model_config = _MODEL
    p: Probability
    kept: Probability
    days: int = Field(default=7, ge=1, le=90)
    basis: Basis


class Outcomes(BaseModel):
    """The contact outcome distribution of an action (sums to 1)."""

    model_config = _MODEL
    p: dict[Outcome, Probability] = Field(min_length=1)
    basis: Basis

    @field_validator("p")
    @classmethod
    def _sums_to_one(cls, value: dict[Outcome, float]) -> dict[Outcome, float]:
        total = math.fsum(value.values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"the outcome probabilities sum to {total:g}, not 1")
        if Outcome.PAYMENT in value or Outcome.PROMISE_TO_PAY in value or Outcome.DISPUTE in value:
            raise ValueError("`payment`, `promise_to_pay` and `dispute` are sampled by their own rates")
        return value


class Cost(BaseModel):
    """The cost of one action in the model's currency (whatever its outcome)."""

    model_config = _MODEL
    value: Money
    basis: Basis


class Match(BaseModel):
    """Which actions a rule answers: every given key must match."""

    model_config = _MODEL
    channel: Channel | None = None
    actions: tuple[str, ...] | None = Field(default=None, min_length=1, description="tier ids")
    tags: tuple[str, ...] | None = Field(default=None, min_length=1, description="any of these tags")
    segments: tuple[str, ...] | None = Field(default=None, min_length=1)
    days: tuple[int, int] | None = Field(default=None, description="[from, to] days overdue, inclusive")

    @property
    def universal(self) -> bool:
        """Matches whatever the account's segment and days overdue."""
        return self.segments is None and self.days is None


class ResponseRule(BaseModel):
    """How customers answer the actions it matches."""

    model_config = _MODEL
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")
    when: Match = Match()
    cost: Cost
    outcomes: Outcomes
    promise: Promise | None = None
    payment: Rate | None = Field(default=None, description="a payment after a reached contact, no promise")
    dispute: Rate | None = Field(default=None, description="a dispute after a reached contact")
    amounts: Amounts | None = Field(default=None, description="overrides the model's `amounts`")


class SelfCure(BaseModel):
    """The daily chance that an account in a days-overdue range pays without any action today."""

    model_config = _MODEL
    days: tuple[int, int]
    p: Probability
    basis: Basis


class Header(BaseModel):
    """The model's identity and book-level parameters."""

    model_config = _MODEL
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")
    description: str | None = Field(default=None, max_length=2000)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    write_off: Figure = Field(description="days overdue at which an account is written off")
    dispute_days: Figure = Field(description="days a dispute holds the account before it is resolved")
    charges: Charges


class ResponseModel(BaseModel):
    """A response model file (``responses: 1``)."""

    model_config = _MODEL
    responses: Literal[1] = Field(description="format version")
    model: Header
    amounts: Amounts
    self_cure: tuple[SelfCure, ...] = ()
    rules: tuple[ResponseRule, ...] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _unique_ids(self) -> ResponseModel:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id `{rule.id}` is used twice")
            seen.add(rule.id)
        spans = [c.days for c in self.self_cure] + [r.when.days for r in self.rules]
        for span in spans:
            if span is not None and span[0] > span[1]:
                raise ValueError(f"days range {list(span)} is empty")
        return self

    def default_rule(self, channel: str, action: str, tags: frozenset[str]) -> ResponseRule | None:
        """The first rule for this action that matches any segment and days overdue."""
        for rule in self.rules:
            if rule.when.universal and matches(rule.when, channel, action, tags):
                return rule
        return None


def matches(when: Match, channel: str, action: str, tags: frozenset[str]) -> bool:
    """Whether ``when`` matches the action (segment and days are checked per account)."""
    if when.channel is not None and when.channel.value != channel:
        return False
    if when.actions is not None and action not in when.actions:
        return False
    return when.tags is None or bool(tags.intersection(when.tags))


def load_response_model(path: str | Path) -> ResponseModel:
    """Load and validate a response model file. Raises :class:`ResponseModelError`
    with every issue, each as ``path:line:col: code: message``."""
    return load_document(
        Path(path), ResponseModel, marker="responses", code="not-a-response-model",
        message="a response model starts with `responses: 1`", error=ResponseModelError,
    )  # fmt: skip


def bundled_model(name: str) -> Path:
    """The bundled response model for a profile (``cn-card``, ``us-card``, ``uk-loan``)."""
    if name not in BUNDLED_MODELS:
        raise ValueError(f"no bundled response model `{name}`; choose one of: {', '.join(BUNDLED_MODELS)}")
    return Path(__file__).resolve().parent / "models" / BUNDLED_MODELS[name]


def response_model_schema() -> dict[str, Any]:
    """The JSON Schema of a response-model file."""
    schema = ResponseModel.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "escalation response model"
    return schema
