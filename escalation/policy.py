"""Policies and rule packs: the YAML schema (pydantic models), loading with
includes, semantic checks, and the fingerprint.

A policy file holds severity tiers, holds and policy-local guards, and
``include``s rule packs (files of guards with citations). Loading collects
*every* problem, each with its file, line and column, and raises one
:class:`~escalation.errors.PolicyError`."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from escalation._currencies import MINOR_UNITS
from escalation._expr import Compiled, ExprError, FactType, compile_expression
from escalation._yaml import Located, YamlLoadError, load_yaml
from escalation.errors import PolicyError, PolicyIssue
from escalation.record import Channel, Outcome, zone

__all__ = [
    "Guard",
    "Hold",
    "Policy",
    "Tier",
    "fact_catalogue",
    "load_policy",
    "parse_duration",
]

LANGUAGE_VERSION = 1
MAX_INCLUDE_DEPTH = 8
_MODEL = ConfigDict(extra="forbid", frozen=True)

# ----------------------------------------------------------------- durations

_DURATION = re.compile(r"^(\d{1,5})([wdhm])$")
_UNIT = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_duration(value: object) -> timedelta:
    """``"3d"`` → 72 hours; units ``w d h m``; a bare ``0`` is zero."""
    if isinstance(value, timedelta):
        return value
    if value == 0 or value == "0":
        return timedelta(0)
    if isinstance(value, str) and (match := _DURATION.match(value.strip())):
        return int(match.group(1)) * _UNIT[match.group(2)]
    raise ValueError(f"`{value}` is not a duration like `3d`, `12h`, `30m` or `2w`")


def _format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for suffix, unit in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % unit == 0:
            return f"{seconds // unit}{suffix}"
    return f"{seconds}s"  # pragma: no cover - parse_duration never yields seconds


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(_format_duration, return_type=str)
]


def _calendar_days(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value  # already validated (a model rebuilt from another's fields)
    if isinstance(value, str) and (match := re.fullmatch(r"(\d{1,4})d", value.strip())):
        days = int(match.group(1))
        if days >= 1:
            return days
    raise ValueError(f"`{value}` is not a whole number of calendar days like `7d`")


CalendarDays = Annotated[
    int, BeforeValidator(_calendar_days), PlainSerializer(lambda d: f"{d}d", return_type=str)
]
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
Tag = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Authority = Literal["law", "regulator", "self-regulation", "policy"]
# Whose calendar days a window counts: the account's zone, or every zone the
# customer may be in (the strictest result wins).
DaysIn = Literal["account", "every_zone"]

# Record dates a prerequisite, a hold's `until` or a block's `until` may name.
RECORD_DATES = {
    "validation_notice_sent_at": "datetime",
    "last_payment_at": "date",
    "charged_off_at": "date",
    "overdue_since": "date",
    "due_date": "date",
    "promise_to_pay.due_date": "date",
    "promise_to_pay.made_at": "datetime",
    "payment_plan.next_due_date": "date",
    "dispute_received_at": "datetime",
    "verification_sent_at": "datetime",
    "cease_communication_received_at": "datetime",
    "negative_info_notice_sent_at": "datetime",
    "default_notice_served_at": "date",
    "letter_of_claim_at": "date",
    "breathing_space.start": "date",
    "breathing_space.end": "date",
}

# ----------------------------------------------------------------- models


class EventFilter(BaseModel):
    """Which history events count: every listed criterion must match; an
    empty list matches anything."""

    model_config = _MODEL

    channels: tuple[Channel, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    direction: Literal["outbound", "inbound", "any"] = "outbound"
    actions: tuple[Identifier, ...] = ()
    tags: tuple[Tag, ...] = ()
    during_consent: bool | None = Field(
        default=None,
        description="true: only events inside a window the customer consented to "
        "(a history event's `consent_until`); false: only events outside one",
    )
    consent_days: CalendarDays | None = Field(
        default=None,
        description="a consent window lasts at most this many calendar days, the day "
        "the consent was given being day 1 (Regulation F: 7)",
    )
    misdirected: bool | None = None
    in_cycle: bool | None = Field(
        default=None,
        description="true: only events in the current delinquency cycle; false: only before it",
    )


class _GuardBase(BaseModel):
    model_config = _MODEL

    id: RuleId
    channels: tuple[Channel, ...] = ()
    tags: tuple[Tag, ...] = ()
    actions: tuple[Identifier, ...] = ()
    reason: str = Field(min_length=1, max_length=500)
    cite: str = Field(min_length=1, max_length=500)
    authority: Authority | None = None
    except_tags: tuple[Tag, ...] = Field(
        default=(),
        description="tiers carrying any of these tags are outside the guard "
        "(e.g. the notices a cease-communication request still allows)",
    )
    unless: str | None = None
    exclude: tuple[EventFilter, ...] = ()
    description: str | None = None


class ContactHoursGuard(_GuardBase):
    """Contact only inside a daily window, in every zone the customer may be in."""

    kind: Literal["contact_hours"]
    from_: ClockTime = Field(alias="from")
    to: ClockTime
    days: tuple[Weekday, ...] = WEEKDAYS
    holidays: str | None = Field(default=None, pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,4})?$")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> ContactHoursGuard:
        if self.from_ >= self.to:
            raise ValueError("`from` must be earlier than `to` (windows over midnight are not supported)")
        return self


class FrequencyGuard(_GuardBase):
    """At most ``max`` counted events in a window of calendar days (or the
    calendar month), the day of the proposed contact included."""

    kind: Literal["frequency"]
    max: int = Field(ge=0, le=1000)
    window: CalendarDays | Literal["calendar_month"]
    count: EventFilter = EventFilter()
    per: Literal["account", "address"] = "account"
    days_in: DaysIn = "account"


class CooldownGuard(_GuardBase):
    """No contact for ``wait`` calendar days after a matching event (its day is day 1)."""

    kind: Literal["cooldown"]
    after: EventFilter
    wait: CalendarDays
    days_in: DaysIn = "account"


class BlockGuard(_GuardBase):
    """Block while a condition holds."""

    kind: Literal["block"]
    when: str
    until: str | None = None


class ConsentGuard(_GuardBase):
    """Never use a channel the customer opted out of."""

    kind: Literal["consent"]


class Prerequisite(BaseModel):
    """An event (from history or a record date) that must have happened at
    least ``at_least`` ago and not been undone since."""

    model_config = _MODEL

    event: EventFilter | None = None
    record_date: str | None = None
    at_least: Duration = timedelta(0)
    undone_by: EventFilter | None = None
    calendar_days: bool = Field(
        default=False,
        description="count `at_least` in whole calendar days of the account's zone from "
        "the event's date: met at the start of day event date + N",
    )
    nth: int = Field(default=1, ge=1, le=100, description="the n-th matching event starts the period")
    min_gap: CalendarDays | None = Field(
        default=None, description="events count towards `nth` only this many calendar days apart"
    )

    @model_validator(mode="after")
    def _one_source(self) -> Prerequisite:
        if (self.event is None) == (self.record_date is None):
            raise ValueError("give exactly one of `event` or `record_date`")
        if self.record_date is not None and self.record_date not in RECORD_DATES:
            raise ValueError(f"`record_date` must be one of {sorted(RECORD_DATES)}")
        if self.calendar_days and self.at_least % timedelta(days=1):
            raise ValueError("with `calendar_days`, `at_least` must be whole days")
        if (self.nth > 1 or self.min_gap is not None) and self.event is None:
            raise ValueError("`nth` and `min_gap` need an `event`")
        return self


class PrerequisiteGuard(_GuardBase):
    """Block the action until a prerequisite (or any of several) is met."""

    kind: Literal["prerequisite"]
    event: EventFilter | None = None
    record_date: str | None = None
    at_least: Duration = timedelta(0)
    undone_by: EventFilter | None = None
    calendar_days: bool = False
    nth: int = Field(default=1, ge=1, le=100)
    min_gap: CalendarDays | None = None
    any_of: tuple[Prerequisite, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> PrerequisiteGuard:
        single = self.event is not None or self.record_date is not None
        if single == bool(self.any_of):
            raise ValueError("give either `event`/`record_date` or `any_of`, not both")
        if single:
            self._single()
        return self

    def _single(self) -> Prerequisite:
        return Prerequisite(
            event=self.event,
            record_date=self.record_date,
            at_least=self.at_least,
            undone_by=self.undone_by,
            calendar_days=self.calendar_days,
            nth=self.nth,
            min_gap=self.min_gap,
        )

    def alternatives(self) -> tuple[Prerequisite, ...]:
        """The prerequisites, any one of which lifts the guard."""
        if self.any_of:
            return self.any_of
        return (self._single(),)


Guard = Annotated[
    ContactHoursGuard | FrequencyGuard | CooldownGuard | BlockGuard | ConsentGuard | PrerequisiteGuard,
    Field(discriminator="kind"),
]


class Hold(BaseModel):
    """Stops everything while ``when`` holds (first match wins)."""

    model_config = _MODEL

    id: RuleId
    when: str
    reason: str = Field(min_length=1, max_length=500)
    until: str | None = None
    grace: Duration | None = None
    cite: str | None = None


class Repeat(BaseModel):
    """How often and how many times a tier may be taken in one delinquency cycle."""

    model_config = _MODEL

    every: Duration | None = None
    max: int | None = Field(default=None, ge=1, le=10_000)


class Tier(BaseModel):
    """One rung of the severity ladder."""

    model_config = _MODEL

    id: Identifier
    channel: Channel | None = None
    channels: tuple[Channel, ...] = ()
    tags: tuple[Tag, ...] = ()
    when: str
    requires: dict[Identifier, Annotated[int, Field(ge=1, le=10_000)]] = {}
    wait: Duration | None = None
    repeat: Repeat = Repeat()
    description: str | None = None

    @model_validator(mode="after")
    def _one_channel_form(self) -> Tier:
        if (self.channel is None) == (not self.channels):
            raise ValueError("give exactly one of `channel` or `channels`")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("`channels` lists a channel twice")
        return self

    @property
    def channel_order(self) -> tuple[Channel, ...]:
        """Channels in preference order."""
        return (self.channel,) if self.channel is not None else self.channels


class Limitation(BaseModel):
    """How to tell whether the debt is time-barred (statute of limitations)."""

    model_config = _MODEL

    years: int = Field(ge=1, le=50)
    start: tuple[Literal["last_payment_at", "charged_off_at", "overdue_since"], ...] = (
        "last_payment_at",
        "charged_off_at",
    )
    cite: str | None = None
    by_jurisdiction: dict[str, Annotated[int, Field(ge=1, le=50)]] = Field(
        default={},
        description="years for an account whose `jurisdiction` is the key (e.g. `GB-SCT: 5`)",
    )


class PolicyHeader(BaseModel):
    """Identity and defaults of a policy."""

    model_config = _MODEL

    id: RuleId
    version: str = Field(min_length=1, max_length=64)
    currency: str
    timezone: str
    include: tuple[str, ...] = ()
    description: str | None = None
    limitation: Limitation | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError(f"`{value}` is not an ISO 4217 currency code")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value


class PolicyDocument(BaseModel):
    """A policy file."""

    model_config = _MODEL

    escalation: Literal[1]
    policy: PolicyHeader
    holds: tuple[Hold, ...] = ()
    tiers: tuple[Tier, ...] = Field(min_length=1)
    guards: tuple[Guard, ...] = ()


class PackHeader(BaseModel):
    """Identity of a rule pack."""

    model_config = _MODEL

    id: RuleId
    title: str
    version: str
    jurisdiction: str
    include: tuple[str, ...] = ()
    description: str | None = None
    disclaimer: str | None = None


class PackDocument(BaseModel):
    """A rule-pack file: guards for one regime, each with its citation."""

    model_config = _MODEL

    escalation: Literal[1]
    pack: PackHeader
    guards: tuple[Guard, ...] = ()


# ----------------------------------------------------------------- facts


BASE_FACTS: dict[str, FactType] = {
    "days_overdue": FactType.NUMBER,
    "amount_overdue": FactType.MONEY,
    "balance": FactType.MONEY,
    "currency": FactType.STRING,
    "flags": FactType.SET,
    "opt_out": FactType.SET,
    "segment": FactType.STRING,
    "product": FactType.STRING,
    "jurisdiction": FactType.STRING,
    "conversations_30d": FactType.NUMBER,
    "broken_promises": FactType.NUMBER,
    "promise_active": FactType.BOOL,
    "plan_active": FactType.BOOL,
    "time_barred": FactType.BOOL,
    "in_validation_period": FactType.BOOL,
    "local_hour": FactType.NUMBER,
    "weekday": FactType.STRING,
    "promise_to_pay.amount": FactType.MONEY,
    "actor_type": FactType.STRING,
    "principal": FactType.MONEY,
    "dispute_open": FactType.BOOL,
    "cease_received": FactType.BOOL,
    "breathing_space_active": FactType.BOOL,
    "consent_day": FactType.NUMBER,
    "consecutive_failed_attempts": FactType.NUMBER,
    "number_invalid": FactType.BOOL,
}


def fact_catalogue(tier_ids: list[str] | tuple[str, ...]) -> dict[str, FactType]:
    """Every fact a condition of a policy with these tiers may read."""
    catalogue = dict(BASE_FACTS)
    for tier in tier_ids:
        catalogue[f"done.{tier}"] = FactType.NUMBER
        catalogue[f"days_since.{tier}"] = FactType.NUMBER
    for channel in Channel:
        catalogue[f"contacts_7d.{channel.value}"] = FactType.NUMBER
        catalogue[f"contacts_30d.{channel.value}"] = FactType.NUMBER
    return catalogue


# ----------------------------------------------------------------- compiled policy


@dataclass(frozen=True)
class GuardRule:
    """A guard as evaluated: the model, where it came from, compiled conditions."""

    model: ContactHoursGuard | FrequencyGuard | CooldownGuard | BlockGuard | ConsentGuard | PrerequisiteGuard
    source: str
    when: Compiled | None
    unless: Compiled | None


@dataclass(frozen=True)
class HoldRule:
    """A hold as evaluated."""

    model: Hold
    when: Compiled


@dataclass(frozen=True)
class TierRule:
    """A tier as evaluated; ``severity`` is its 1-based position."""

    model: Tier
    severity: int
    when: Compiled


@dataclass(frozen=True)
class Policy:
    """A loaded, validated, compiled policy with all includes resolved."""

    header: PolicyHeader
    holds: tuple[HoldRule, ...]
    tiers: tuple[TierRule, ...]
    guards: tuple[GuardRule, ...]
    fingerprint: str
    canonical: str
    path: str
    packs: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.header.id

    @property
    def version(self) -> str:
        return self.header.version

    def tier(self, tier_id: str) -> TierRule:
        """The tier named ``tier_id`` (KeyError when unknown)."""
        for rule in self.tiers:
            if rule.model.id == tier_id:
                return rule
        raise KeyError(tier_id)


# ----------------------------------------------------------------- loading


class _Collector:
    def __init__(self) -> None:
        self.issues: list[PolicyIssue] = []

    def add(
        self, located: Located, loc: tuple[str | int, ...], code: str, message: str, *, key: bool = False
    ) -> None:
        line, col = located.position(loc, key=key)
        self.issues.append(PolicyIssue(located.path, line, col, code, message))

    def validation(self, located: Located, exc: ValidationError) -> None:
        errors = exc.errors(include_url=False)
        # pydantic also reports a list as too short when its only items failed: noise
        failed = [e["loc"] for e in errors if e["type"] != "too_short"]
        for err in errors:
            if err["type"] == "too_short" and any(f[: len(err["loc"])] == err["loc"] for f in failed):
                continue
            loc = _data_loc(located.data, err["loc"])
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            code = "invalid-value"
            key = False
            if err["type"] == "extra_forbidden":
                code, key = "unknown-key", True
                field_name = loc[-1] if loc else ""
                msg = f"unknown key `{field_name}`" + _key_hint(str(field_name))
            elif err["type"] == "missing":
                code = "missing-key"
                msg = f"missing key `{err['loc'][-1]}`"
            elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                code = "unknown-kind"
                kinds = "contact_hours, frequency, cooldown, block, consent, prerequisite"
                msg = f"guard `kind` must be one of: {kinds}"
            elif err["type"] == "literal_error" and loc and loc[-1] == "escalation":
                code = "language-version"
                msg = f"`escalation` must be {LANGUAGE_VERSION}"
            self.add(located, loc, code, msg[:1].lower() + msg[1:], key=key)


def _key_hint(name: str) -> str:
    return _hint(name, _KNOWN_KEYS)


_KNOWN_KEYS = sorted(
    {
        name
        for model in (
            PolicyDocument, PolicyHeader, Hold, Tier, Repeat, EventFilter, ContactHoursGuard, FrequencyGuard,
            CooldownGuard, BlockGuard, PrerequisiteGuard, Prerequisite, PackDocument, PackHeader, Limitation,
        )
        for name, info in model.model_fields.items()
        for name in (info.alias or name,)
    }
)  # fmt: skip


def _data_loc(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Map a pydantic error location onto the YAML data path (dropping union tags)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and part == "from_" and "from" in node:
            out.append("from")
            node = node["from"]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_union_tag(part):
            out.append(part)  # a missing or unknown key: point at its parent
            node = None
    return tuple(out)


def _is_union_tag(part: str) -> bool:
    return part in ("contact_hours", "frequency", "cooldown", "block", "consent", "prerequisite")


def _read(
    path: Path, collector: _Collector, origin: tuple[Located, tuple[str | int, ...]] | None
) -> Located | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        if origin is not None:
            collector.add(origin[0], origin[1], "include-not-found", f"cannot read `{path}`: {exc.strerror}")
        else:
            collector.issues.append(
                PolicyIssue(str(path), 1, 1, "file-not-found", f"cannot read: {exc.strerror}")
            )
        return None
    try:
        return load_yaml(raw, str(path))
    except YamlLoadError as exc:
        collector.issues.append(exc.issue)
        return None


@dataclass
class _Loaded:
    located: Located
    document: PolicyDocument | PackDocument | None


def _load_tree(
    path: Path,
    collector: _Collector,
    stack: tuple[Path, ...],
    origin: tuple[Located, tuple[str | int, ...]] | None,
    out: list[_Loaded],
    seen: set[Path],
) -> None:
    resolved = path.resolve()
    if resolved in stack:
        assert origin is not None
        chain = " -> ".join(p.name for p in (*stack, resolved))
        collector.add(origin[0], origin[1], "include-cycle", f"include cycle: {chain}")
        return
    if resolved in seen:
        return  # included twice through different routes: load once
    if len(stack) > MAX_INCLUDE_DEPTH:
        assert origin is not None
        collector.add(
            origin[0], origin[1], "include-too-deep", f"includes nested deeper than {MAX_INCLUDE_DEPTH}"
        )
        return
    seen.add(resolved)
    located = _read(path, collector, origin)
    if located is None:
        return
    data = located.data
    is_root = not stack
    if not isinstance(data, dict):
        collector.add(located, (), "invalid-value", "the file must be a YAML mapping")
        return
    model: type[PolicyDocument] | type[PackDocument] = PolicyDocument if is_root else PackDocument
    if is_root and "pack" in data and "policy" not in data:
        collector.add(located, (), "not-a-policy", "this is a rule pack; give a policy that includes it")
        return
    if not is_root and "policy" in data:
        collector.add(origin[0], origin[1], "include-not-pack", "only rule packs can be included")  # type: ignore[index]
        return
    document: PolicyDocument | PackDocument | None
    try:
        document = model.model_validate(data)
    except ValidationError as exc:
        collector.validation(located, exc)
        document = None
    out.append(_Loaded(located, document))
    section = data.get("policy" if is_root else "pack")
    includes = section.get("include") if isinstance(section, dict) else None
    if isinstance(includes, list):
        for index, name in enumerate(includes):
            if isinstance(name, str):
                loc: tuple[str | int, ...] = ("policy" if is_root else "pack", "include", index)
                _load_tree(path.parent / name, collector, (*stack, resolved), (located, loc), out, seen)


def _compile(
    text: str,
    catalogue: Mapping[str, FactType],
    located: Located,
    loc: tuple[str | int, ...],
    collector: _Collector,
) -> Compiled | None:
    try:
        return compile_expression(text, catalogue)
    except ExprError as exc:
        line, col = located.position(loc)
        collector.issues.append(PolicyIssue(located.path, line, col + exc.column, exc.code, exc.message))
        return None


def load_policy(path: str | Path) -> Policy:
    """Load, validate and compile the policy at ``path`` with its includes.

    Raises :class:`~escalation.errors.PolicyError` listing every problem.
    """
    path = Path(path)
    collector = _Collector()
    loaded: list[_Loaded] = []
    _load_tree(path, collector, (), None, loaded, set())
    if not loaded or loaded[0].document is None or collector.issues:
        if not collector.issues:  # pragma: no cover - defensive
            collector.issues.append(PolicyIssue(str(path), 1, 1, "invalid-policy", "could not load"))
        raise PolicyError(collector.issues)
    root = loaded[0]
    document = root.document
    assert isinstance(document, PolicyDocument)
    policy = _build(document, root.located, loaded[1:], collector)
    if collector.issues:
        raise PolicyError(collector.issues)
    assert policy is not None
    return policy


def _build(
    document: PolicyDocument, located: Located, packs: list[_Loaded], collector: _Collector
) -> Policy | None:
    tiers = document.tiers
    tier_ids = [t.id for t in tiers]
    catalogue = fact_catalogue(tier_ids)
    positions = {t.id: i for i, t in enumerate(tiers)}

    _unique(located, [("tiers", i, "id", t.id) for i, t in enumerate(tiers)], collector, "duplicate-tier")
    _unique(
        located, [("holds", i, "id", h.id) for i, h in enumerate(document.holds)], collector, "duplicate-hold"
    )

    tier_rules: list[TierRule] = []
    for index, tier in enumerate(tiers):
        for needed in tier.requires:
            if needed not in positions:
                collector.add(
                    located, ("tiers", index, "requires", needed), "unknown-tier",
                    f"`requires` names unknown tier `{needed}`" + _hint(needed, tier_ids), key=True,
                )  # fmt: skip
            elif positions[needed] >= index:
                collector.add(
                    located, ("tiers", index, "requires", needed), "unreachable-tier",
                    f"tier `{tier.id}` requires `{needed}`, which is not below it on the ladder", key=True,
                )  # fmt: skip
            elif (cap := tiers[positions[needed]].repeat.max) is not None and cap < tier.requires[needed]:
                collector.add(
                    located, ("tiers", index, "requires", needed), "unreachable-tier",
                    f"tier `{tier.id}` requires {tier.requires[needed]} of `{needed}`, "
                    f"which may be taken at most {cap} times", key=True,
                )  # fmt: skip
        compiled = _compile(tier.when, catalogue, located, ("tiers", index, "when"), collector)
        if compiled is not None:
            tier_rules.append(TierRule(tier, index + 1, compiled))

    hold_rules: list[HoldRule] = []
    for index, hold in enumerate(document.holds):
        compiled = _compile(hold.when, catalogue, located, ("holds", index, "when"), collector)
        if hold.until is not None and hold.until not in RECORD_DATES:
            collector.add(
                located, ("holds", index, "until"), "unknown-date",
                f"`until` must name a record date: one of {', '.join(sorted(RECORD_DATES))}",
            )  # fmt: skip
        if compiled is not None:
            hold_rules.append(HoldRule(hold, compiled))

    guard_sources: list[tuple[Located, str, tuple[Any, ...]]] = [
        (located, document.policy.id, document.guards)
    ]
    pack_ids: list[str] = []
    for pack in packs:
        if isinstance(pack.document, PackDocument):
            guard_sources.append((pack.located, pack.document.pack.id, pack.document.guards))
            pack_ids.append(pack.document.pack.id)

    guard_rules: list[GuardRule] = []
    seen_ids: dict[str, str] = {}
    for source_located, source, guards in guard_sources:
        for index, guard in enumerate(guards):
            loc: tuple[str | int, ...] = ("guards", index)
            if guard.id in seen_ids:
                collector.add(
                    source_located, (*loc, "id"), "duplicate-guard",
                    f"guard `{guard.id}` is already defined in `{seen_ids[guard.id]}`",
                )  # fmt: skip
                continue
            seen_ids[guard.id] = source
            for i, action in enumerate(guard.actions):
                if action not in positions:
                    collector.add(
                        source_located, (*loc, "actions", i), "unknown-tier",
                        f"guard names unknown tier `{action}`" + _hint(action, tier_ids),
                    )  # fmt: skip
            _check_filters(guard, positions, source_located, loc, collector)
            when = None
            if isinstance(guard, BlockGuard):
                when = _compile(guard.when, catalogue, source_located, (*loc, "when"), collector)
                if guard.until is not None and guard.until not in RECORD_DATES:
                    collector.add(
                        source_located, (*loc, "until"), "unknown-date", "`until` must name a record date"
                    )
            unless = None
            if guard.unless is not None:
                unless = _compile(guard.unless, catalogue, source_located, (*loc, "unless"), collector)
            guard_rules.append(GuardRule(guard, source, when, unless))

    if collector.issues:
        return None
    canonical = _canonical(document, guard_rules, tier_rules, hold_rules)
    fingerprint = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    return Policy(
        header=document.policy,
        holds=tuple(hold_rules),
        tiers=tuple(tier_rules),
        guards=tuple(guard_rules),
        fingerprint=fingerprint,
        canonical=canonical,
        path=located.path,
        packs=tuple(pack_ids),
    )


def _check_filters(
    guard: Any,
    positions: Mapping[str, int],
    located: Located,
    loc: tuple[str | int, ...],
    collector: _Collector,
) -> None:
    filters: list[tuple[tuple[str | int, ...], EventFilter]] = []
    for name in ("count", "after", "event", "undone_by"):
        value = getattr(guard, name, None)
        if isinstance(value, EventFilter):
            filters.append(((*loc, name), value))
    for i, value in enumerate(guard.exclude):
        filters.append(((*loc, "exclude", i), value))
    for i, alt in enumerate(getattr(guard, "any_of", ())):
        for name in ("event", "undone_by"):
            value = getattr(alt, name)
            if value is not None:
                filters.append(((*loc, "any_of", i, name), value))
    for where, flt in filters:
        for i, action in enumerate(flt.actions):
            if action not in positions:
                collector.add(
                    located, (*where, "actions", i), "unknown-tier", f"filter names unknown tier `{action}`"
                )


def _hint(name: str, known: list[str]) -> str:
    match = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean `{match[0]}`?" if match else ""


def _unique(
    located: Located, items: list[tuple[str, int, str, str]], collector: _Collector, code: str
) -> None:
    seen: set[str] = set()
    for section, index, key, value in items:
        if value in seen:
            collector.add(located, (section, index, key), code, f"`{value}` is defined twice")
        seen.add(value)


def _canonical(
    document: PolicyDocument,
    guards: list[GuardRule],
    tiers: list[TierRule],
    holds: list[HoldRule],
) -> str:
    """Canonical JSON of the fully included policy: what it *means*, not how it
    is written (comments, key order, quoting, spacing and default values do not
    change it; includes are replaced by their guards)."""
    header = document.policy.model_dump(mode="json", by_alias=True, exclude={"include"})
    tier_data = []
    for rule in tiers:
        data = rule.model.model_dump(
            mode="json", by_alias=True, exclude={"channel", "channels", "description"}
        )
        data["channels"] = [c.value for c in rule.model.channel_order]
        data["when"] = rule.when.canonical
        tier_data.append(data)
    hold_data = []
    for hold in holds:
        data = hold.model.model_dump(mode="json", by_alias=True)
        data["when"] = hold.when.canonical
        hold_data.append(data)
    guard_data = []
    for guard in guards:
        data = guard.model.model_dump(mode="json", by_alias=True, exclude={"description"})
        data["source"] = guard.source
        if guard.when is not None:
            data["when"] = guard.when.canonical
        if guard.unless is not None:
            data["unless"] = guard.unless.canonical
        guard_data.append(data)
    doc = {
        "escalation": document.escalation,
        "policy": header,
        "holds": hold_data,
        "tiers": tier_data,
        "guards": guard_data,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
