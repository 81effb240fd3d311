"""The HTTP API's request and response bodies (pydantic): the OpenAPI schema
is generated from these. Decisions and error rows are the library's own
:class:`~escalation.Decision` and :class:`~escalation.ErrorRow`, byte for byte."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)

from escalation import Decision, ErrorRow
from escalation.record import RANGE_MESSAGE, in_range

__all__ = [
    "DecideRequest",
    "ExplainItem",
    "Health",
    "Issue",
    "PolicyDetail",
    "PolicyListing",
    "Problem",
    "ReloadResult",
    "ServedExperiment",
    "ServedPolicy",
]

_RESPONSE = ConfigDict(extra="forbid", frozen=True)

FINGERPRINT = r"^sha256:[0-9a-f]{64}$"


def _iso_text(value: object) -> object:
    """An instant is ISO 8601 text with an offset, never a bare number (a Unix
    timestamp would be read silently as UTC)."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time with a UTC offset, like `2026-11-23T10:00:00+08:00`")
    return value


def _in_range(value: Any) -> Any:
    """An evaluation instant the engine can work with (a 422, never a 500)."""
    if not in_range(value):
        raise ValueError(RANGE_MESSAGE)
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_range)]


def _account_refs(schema: dict[str, Any]) -> None:
    """Document ``record``/``records`` as the library's Account schema (for
    client generators); the server validates records itself, one by one, so a
    bad record in a batch is an error row, not a rejected request."""
    props = schema["properties"]
    props["record"] = {"$ref": "#/components/schemas/Account", "description": props["record"]["description"]}
    props["records"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Account"},
        "minItems": 1,
        "description": props["records"]["description"],
    }
    schema["oneOf"] = [{"required": ["record"]}, {"required": ["records"]}]


class DecideRequest(BaseModel):
    """Body of ``POST /v1/decide`` and ``POST /v1/explain``: one ``record`` or a
    batch of ``records`` (not both), the instant, and optionally which policy
    (required when the server serves more than one) and its pinned fingerprint."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_account_refs)

    record: dict[str, Any] | None = Field(
        default=None,
        description="one account record (see the Account schema); its errors answer 422",
    )
    records: list[dict[str, Any]] | None = Field(
        default=None,
        min_length=1,
        description="a batch of account records; a bad record becomes an error row in its place",
    )
    at: Instant | None = Field(
        default=None,
        description="evaluation instant with a UTC offset; when absent the server's clock is used "
        "and the response says so (header `Escalation-At-Source: server`)",
    )
    policy: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the id of a served policy or experiment; optional when only one is served",
    )
    fingerprint: str | None = Field(
        default=None,
        pattern=FINGERPRINT,
        description="the policy's (or experiment's) fingerprint the caller expects; "
        "409 when the served one differs",
    )
    trace: StrictBool = Field(default=True, description="include the rule trace in each decision")

    @model_validator(mode="after")
    def _one_of(self) -> DecideRequest:
        if (self.record is None) == (self.records is None):
            raise ValueError("give exactly one of `record` and `records`")
        return self


class Issue(BaseModel):
    """One problem with a request: the field path (``record.history.0.at``,
    ``at``) and what is wrong."""

    model_config = _RESPONSE

    field: str
    message: str
    code: str = "invalid"


class Problem(BaseModel):
    """Every error response: a kebab-case ``code``, a one-line ``message``, the
    fields at fault (``issues``) and the request id to quote in a support call."""

    model_config = _RESPONSE

    code: str
    message: str
    issues: list[Issue] = []
    request_id: str | None = None


class ExplainItem(BaseModel):
    """A decision and its explanation for a person (what ``escalation explain`` prints)."""

    model_config = _RESPONSE

    decision: Decision
    text: str


class ServedPolicy(BaseModel):
    """A policy the server decides with."""

    model_config = _RESPONSE

    id: str
    version: str
    fingerprint: str
    packs: list[str]
    currency: str
    timezone: str
    tiers: list[str]


class ServedExperiment(BaseModel):
    """A champion/challenger experiment the server decides with (requests name
    it by ``id`` like a policy): each account is decided by its arm's policy."""

    model_config = _RESPONSE

    id: str
    fingerprint: str = Field(
        description="SHA-256 of the id, salt, share and both arms' policy fingerprints "
        "(what a request's `fingerprint` pins)"
    )
    salt: str
    share: float = Field(description="the challenger's share of accounts (0.2 for `20%`)")
    description: str | None = None
    champion: ServedPolicy
    challenger: ServedPolicy


class PolicyListing(BaseModel):
    """``GET /v1/policies``: the served policies and experiments."""

    model_config = _RESPONSE

    policies: list[ServedPolicy]
    experiments: list[ServedExperiment] = []


class PolicyDetail(ServedPolicy):
    """``GET /v1/policies/{id}``: the policy and its canonical form (every
    include resolved; the SHA-256 of it serialised with sorted keys and no
    spaces is ``fingerprint``)."""

    canonical: dict[str, Any]


class ReloadResult(BaseModel):
    """``POST /v1/admin/reload``: ``reloaded`` (this process now serves
    ``policies``) or ``restarting`` (workers are being replaced one by one)."""

    model_config = _RESPONSE

    status: Literal["reloaded", "restarting"]
    changed: bool
    policies: list[ServedPolicy]
    experiments: list[ServedExperiment] = []


class Health(BaseModel):
    """``GET /healthz`` and ``GET /readyz``."""

    model_config = _RESPONSE

    status: Literal["ok", "unavailable"]
    policies: int = 0
    experiments: int = 0


#: What ``POST /v1/decide`` answers for a batch: one item per record, in order.
BatchItem = Decision | ErrorRow
