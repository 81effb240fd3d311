"""Champion/challenger experiments: which policy each account gets, and an
engine that serves both.

An experiment file names the champion (the current policy), one challenger
and its share of accounts, and a salt::

    experiment: 1
    id: lawyer-letter-45
    salt: lawyer-letter-45-2026-11
    champion: ../policies/consumer-credit-cn.yaml
    challenger: {policy: cn-lawyer-letter-45.yaml, share: 20%}

Policy paths are relative to the file; ``bundled:policies/<name>.yaml`` names
a shipped policy.

**Assignment.** An account is in the challenger arm when the first 8 bytes of
SHA-256(``salt:account_id``), read as an unsigned big-endian integer, are
below ``share`` × 2**64. It depends on nothing but the id and the salt: the
same account is in the same arm every day, in every run, whatever the order
or the size of the portfolio; a new salt draws a new split. The same rule is
the one a lender's dispatcher can implement in any language.

**Decisions.** :class:`ExperimentEngine` decides each account with its arm's
policy and labels the decision ``experiment: {id, arm}``. Everything else is
exactly the decision of that arm's policy — ``policy`` names it and the
decision ``id`` is its id (a hash of that policy's fingerprint, the record and
the instant) — so a sink or journal stores it with that policy, and replay
re-decides it with that policy."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from escalation._bundled import bundled
from escalation.decision import Decision, ErrorRow, ExperimentInfo, error_row
from escalation.engine import Backend, Engine
from escalation.errors import EvaluationError, ExperimentError, RecordError, UsageError
from escalation.policy import Policy, load_policy
from escalation.record import Account

if TYPE_CHECKING:
    from escalation.reasons import Locale
    from escalation.sink import DecisionSink

__all__ = [
    "Arm",
    "Challenger",
    "Experiment",
    "ExperimentEngine",
    "arm_of",
    "load_experiment",
    "parse_share",
]

Arm = Literal["champion", "challenger"]
_ID: TypeAdapter[str] = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True)])
_SHARE = re.compile(r"^(\d{1,2}(?:\.\d{1,4})?)%$")


def arm_of(account_id: str, salt: str, share: float) -> bool:
    """Whether ``account_id`` is in the challenger arm of an experiment that
    gives the challenger ``share`` of accounts (see the module docstring)."""
    digest = hashlib.sha256(f"{salt}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < int(share * 2**64)


def parse_share(text: str) -> float:
    """``20%`` → 0.2 (strictly between 0 and 100 %)."""
    match = _SHARE.match(text.strip())
    if not match or not 0 < float(match.group(1)) < 100:
        raise ValueError(f"share `{text[:20]}` is not a percentage between 0 and 100 (e.g. `20%`)")
    return float(match.group(1)) / 100


class Challenger(BaseModel):
    """The challenger policy and its share of accounts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policy: str = Field(min_length=1, max_length=1000)
    share: float

    @field_validator("share", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> float:
        if not isinstance(value, str):
            raise ValueError("give the share as a percentage string, e.g. `20%`")
        return parse_share(value)


class Experiment(BaseModel):
    """An experiment file (``experiment: 1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    experiment: Literal[1]
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    salt: str = Field(min_length=1, max_length=200)
    champion: str = Field(min_length=1, max_length=1000)
    challenger: Challenger
    description: str | None = Field(default=None, max_length=2000)

    def resolve(self, base: Path) -> tuple[Path, Path]:
        """The champion's and the challenger's policy paths."""
        return _resolve(self.champion, base), _resolve(self.challenger.policy, base)

    def arm(self, account_id: str) -> Arm:
        """The arm of ``account_id``: :func:`arm_of` with this experiment's salt and share."""
        return "challenger" if arm_of(account_id, self.salt, self.challenger.share) else "champion"


def _resolve(name: str, base: Path) -> Path:
    if name.startswith("bundled:"):
        return bundled(name.removeprefix("bundled:"))
    return base / name


def load_experiment(path: str | Path) -> Experiment:
    """Load an experiment file (strict YAML). Raises :class:`ExperimentError`
    with every located issue."""
    from escalation.policy._load import load_document

    return load_document(
        Path(path), Experiment, marker="experiment", code="not-an-experiment",
        message="an experiment file starts with `experiment: 1`", error=ExperimentError,
    )  # fmt: skip


class _ArmSink:
    """Labels each decision with its arm before the real sink keeps it."""

    def __init__(self, sink: DecisionSink, label: ExperimentInfo) -> None:
        self._sink, self._label = sink, label

    def emit(
        self, decision: Decision, *, account: Account, now: dt.datetime, policy: Policy, trace: bool
    ) -> str | None:
        labelled = decision.model_copy(update={"experiment": self._label})
        return self._sink.emit(labelled, account=account, now=now, policy=policy, trace=trace)


class ExperimentEngine:
    """An engine serving a champion/challenger experiment: ``decide``,
    ``decide_many`` and ``explain`` as on :class:`~escalation.engine.Engine`,
    each account decided by its arm's policy (:meth:`Experiment.arm`) and its
    decision labelled ``experiment: {id, arm}``. ``sink``/``journal`` receive
    the labelled decisions (each with its arm's policy). Immutable and
    thread-safe, like :class:`~escalation.engine.Engine`.

    >>> engine = ExperimentEngine.from_file("experiments/lawyer-letter-45.yaml")  # doctest: +SKIP
    >>> engine.decide(record, now=now).experiment  # doctest: +SKIP
    ExperimentInfo(id='lawyer-letter-45', arm='challenger')
    """

    def __init__(
        self,
        experiment: Experiment,
        champion: Policy,
        challenger: Policy,
        *,
        backend: Backend = "native",
        sink: DecisionSink | None = None,
        journal: DecisionSink | None = None,
        locale: Locale | None = None,
    ) -> None:
        if sink is not None and journal is not None:
            raise UsageError("give `sink` or `journal`, not both")
        if champion.header.currency != challenger.header.currency:
            raise UsageError(
                f"experiment `{experiment.id}`: the champion works in {champion.header.currency} and "
                f"the challenger in {challenger.header.currency}; both arms must serve one portfolio"
            )
        self._experiment = experiment
        target = sink if sink is not None else journal
        self._arms: dict[str, tuple[Engine, ExperimentInfo]] = {}
        for arm, policy in (("champion", champion), ("challenger", challenger)):
            label = ExperimentInfo(id=experiment.id, arm=arm)
            arm_sink = _ArmSink(target, label) if target is not None else None
            self._arms[arm] = (Engine(policy, backend=backend, sink=arm_sink, locale=locale), label)
        self._has_sink = target is not None
        self._options: tuple[Any, ...] = (backend, locale)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        backend: Backend = "native",
        sink: DecisionSink | None = None,
        journal: DecisionSink | None = None,
        locale: Locale | None = None,
    ) -> ExperimentEngine:
        """Load the experiment file at ``path`` and both of its policies (paths
        relative to the file). Raises :class:`~escalation.errors.ExperimentError`
        or :class:`~escalation.errors.PolicyError`."""
        spec = load_experiment(path)
        champion, challenger = spec.resolve(Path(path).parent)
        return cls(
            spec, load_policy(champion), load_policy(challenger),
            backend=backend, sink=sink, journal=journal, locale=locale,
        )  # fmt: skip

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self._has_sink:
            raise UsageError("an engine with a sink cannot be pickled: give each process its own sink")
        bundles = (self.champion.policy.to_bundle(), self.challenger.policy.to_bundle())
        return (_restore, (self._experiment, *bundles, *self._options))

    @property
    def experiment(self) -> Experiment:
        """The experiment served."""
        return self._experiment

    @property
    def champion(self) -> Engine:
        """The champion arm's engine (its decisions carry no label; use :meth:`decide`)."""
        return self._arms["champion"][0]

    @property
    def challenger(self) -> Engine:
        """The challenger arm's engine (its decisions carry no label; use :meth:`decide`)."""
        return self._arms["challenger"][0]

    def arm(self, account_id: str) -> Arm:
        """The arm of ``account_id``."""
        return self._experiment.arm(account_id)

    def engine_for(self, record: Account | dict[str, Any]) -> Engine:
        """The engine of the record's arm (the champion's for a record without a
        usable id: its validation then reports the id)."""
        return self._route(record)[0]

    def _route(self, record: Account | dict[str, Any]) -> tuple[Engine, ExperimentInfo]:
        if isinstance(record, Account):
            ident: Any = record.id
        else:  # the id as the record model will read it (surrounding whitespace stripped)
            try:
                ident = _ID.validate_python(record.get("id")) if isinstance(record, dict) else None
            except ValidationError:
                ident = None
        arm = self.arm(ident) if isinstance(ident, str) else "champion"
        return self._arms[arm]

    def validate(self, record: Account | dict[str, Any], *, now: dt.datetime) -> Account:
        """The record validated by its arm's policy (see :meth:`Engine.validate`)."""
        return self.engine_for(record).validate(record, now=now)

    def decide(
        self,
        record: Account | dict[str, Any],
        *,
        now: dt.datetime,
        trace: bool = True,
        locale: Locale | None = None,
    ) -> Decision:
        """The decision of the record's arm, labelled with the experiment and the
        arm (errors as :meth:`Engine.decide`)."""
        engine, label = self._route(record)
        decision = engine.decide(record, now=now, trace=trace, locale=locale)
        return decision.model_copy(update={"experiment": label})

    def decide_many(
        self,
        records: Iterable[Account | dict[str, Any]],
        *,
        now: dt.datetime,
        trace: bool = True,
        locale: Locale | None = None,
    ) -> Iterator[Decision | ErrorRow]:
        """Decide every record; a bad one yields an :class:`ErrorRow`."""
        for index, record in enumerate(records, start=1):
            try:
                yield self.decide(record, now=now, trace=trace, locale=locale)
            except UsageError:
                raise
            except (RecordError, EvaluationError) as exc:
                ident = record.id if isinstance(record, Account) else None
                if isinstance(record, dict) and isinstance(record.get("id"), str):
                    ident = (
                        record["id"] if 0 < len(record["id"]) <= 128 and record["id"].isprintable() else None
                    )
                yield error_row(exc, row=index, account_id=ident)

    def explain(
        self, record: Account | dict[str, Any], *, now: dt.datetime, locale: Locale | None = None
    ) -> str:
        """A plain-text explanation of the decision, naming the experiment and arm."""
        from escalation.explain import render_text

        decision = self.decide(record, now=now, locale=locale)
        return render_text(decision, locale or self.engine_for(record).locale)


def _restore(
    experiment: Experiment, champion: bytes, challenger: bytes, backend: Backend, locale: Locale | None
) -> ExperimentEngine:
    from escalation.policy.bundle import load_policy_bundle

    policies = load_policy_bundle(champion), load_policy_bundle(challenger)
    return ExperimentEngine(experiment, *policies, backend=backend, locale=locale)
