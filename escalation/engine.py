"""The engine: one loaded policy, one evaluator; decides accounts.

The pipeline, for one account at one instant::

    validate (record.py) → facts (_facts.py) → holds (_holds.py)
      → ladder (_ladder.py) with guards (guards/) → Decision → sink

An :class:`Engine` is immutable after construction and safe to share between
threads: ``decide`` keeps all per-call state on the stack. It never imports
storage: decisions go to an optional :class:`~escalation.sink.DecisionSink`
(every journal is one)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from escalation import _logging
from escalation._facts import Situation, account_zone, derive
from escalation._facts_static import event_stamps
from escalation._ladder import LadderPlan, evaluate
from escalation._validate import (
    check_at,
    check_attributes,
    fill_channels,
    flag_issues,
    raw_flags,
    single_channels,
)
from escalation.backends import make_conditions
from escalation.decision import Decision, EngineInfo, ErrorRow, error_row
from escalation.errors import EscalationError, EvaluationError, RecordError, RecordIssue, UsageError
from escalation.policy import Policy, load_policy
from escalation.reasons import Locale, check_locale
from escalation.record import KNOWN_FLAGS, Account, in_range, parse_account
from escalation.sink import DecisionSink

__all__ = ["Backend", "Engine", "engine_version"]

Backend = Literal["native", "rete"]


def engine_version() -> str:
    """The installed package version."""
    try:
        return version("escalation")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


class Engine:
    """Decides the next permitted action for accounts under one policy.

    ``sink`` (or its synonym ``journal``) receives every decision before it is
    returned; a decision the sink cannot keep is not returned (fail closed).
    ``locale`` (``en`` or ``zh-CN``; default: the policy's ``locale``) is the
    language of ``Decision.reason``; nothing else in a decision depends on it.

    >>> engine = Engine.from_file("policies/consumer-credit-cn.yaml")  # doctest: +SKIP
    >>> engine.decide({"id": "A-1", ...}, now=now).status  # doctest: +SKIP
    'act'
    """

    def __init__(
        self,
        policy: Policy,
        *,
        backend: Backend = "native",
        sink: DecisionSink | None = None,
        journal: DecisionSink | None = None,
        locale: Locale | None = None,
    ) -> None:
        if sink is not None and journal is not None:
            raise UsageError("give `sink` or `journal`, not both")
        self._locale = _locale(locale or policy.header.locale)
        self._policy = policy
        self._plan = LadderPlan.build(policy)
        self._conditions = make_conditions(policy, backend)
        self._info = EngineInfo(version=engine_version(), backend=backend)
        self._sink = sink if sink is not None else journal
        self._flags = KNOWN_FLAGS | policy.flags
        self._currency = policy.header.currency
        self._single = single_channels((t.model.id, t.model.channel_order) for t in policy.tiers)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickled as the policy's bundle and the options (evaluators hold closures
        # and locks): re-created where it is unpickled
        if self._sink is not None:
            raise UsageError("an engine with a sink cannot be pickled: give each process its own sink")
        return (_restore, (self._policy.to_bundle(), self.backend, self._locale))

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        backend: Backend = "native",
        sink: DecisionSink | None = None,
        journal: DecisionSink | None = None,
        locale: Locale | None = None,
    ) -> Engine:
        """Load the policy at ``path`` (with its rule packs) and build an engine.

        Raises :class:`~escalation.errors.PolicyError` when the policy is invalid.
        """
        return cls(load_policy(path), backend=backend, sink=sink, journal=journal, locale=locale)

    @property
    def policy(self) -> Policy:
        """The loaded policy."""
        return self._policy

    @property
    def backend(self) -> str:
        """The evaluator's name (``native`` or ``rete``)."""
        return self._info.backend

    @property
    def locale(self) -> Locale:
        """The locale of the reasons this engine writes."""
        return self._locale

    def validate(self, record: Account | dict[str, Any], *, now: dt.datetime) -> Account:
        """The one validation path for an account record (API, CLI, dry-run and
        replay all come through here): the record's own rules, the policy's
        currency, the policy's declared ``attributes`` and their types, flags
        from the known and declared vocabulary, a channel for every outbound
        event (taken from its tier when the tier has one), and nothing dated
        after ``now``. Returns the account as the rules see it; raises
        :class:`~escalation.errors.RecordError` naming every bad field."""
        return self._checked(record, now)[0]

    def _checked(
        self, record: Account | dict[str, Any], now: dt.datetime
    ) -> tuple[Account, tuple[float, ...]]:
        """:meth:`validate`, with the history's timestamps (converted once, read
        again by the facts)."""
        account = parse_account(record)
        # no flags on the account: none given either (a non-empty list validates to a non-empty set)
        issues = flag_issues(raw_flags(record, account), self._flags) if account.flags else []
        account, missing = fill_channels(account, self._single)
        issues.extend(missing)
        if account.currency != self._currency:
            issues.append(
                RecordIssue(
                    "currency",
                    f"is `{account.currency}` but policy `{self._policy.id}` "
                    f"works in `{self._policy.header.currency}`",
                )
            )
        if account.attributes:
            issues.extend(check_attributes(account, self._policy.header.attributes, self._policy.id))
        stamps = event_stamps(account)
        issues.extend(check_at(account, now, account_zone(account, self._policy), stamps))
        if issues:
            raise RecordError(issues, account_id=account.id)
        return account, stamps

    def decide(
        self,
        record: Account | dict[str, Any],
        *,
        now: dt.datetime,
        trace: bool = True,
        locale: Locale | None = None,
    ) -> Decision:
        """The next permitted action for one account at instant ``now``.

        ``record`` is an :class:`~escalation.record.Account` or a dict in the
        record format. Raises :class:`~escalation.errors.RecordError` for a bad
        record and :class:`~escalation.errors.EvaluationError` when a valid
        record cannot be evaluated — never a more severe action instead.
        ``trace=False`` leaves ``Decision.trace`` empty (everything else is
        identical) for bulk runs that do not keep traces. ``locale`` renders
        this decision's reason in another locale than the engine's.
        """
        check_now(now)
        language = self._locale if locale is None else _locale(locale)
        account, stamps = self._checked(record, now)
        decision = self._evaluated(account, stamps, now, trace, language)
        receipt = None
        if self._sink is not None:
            receipt = self._sink.emit(decision, account=account, now=now, policy=self._policy, trace=trace)
        if _logging.enabled():
            _logging.log_decision(decision, receipt)
        return decision

    def _evaluated(
        self,
        account: Account,
        stamps: tuple[float, ...],
        now: dt.datetime,
        trace: bool,
        language: Locale,
        *,
        facts: Callable[[], Situation] | None = None,
        row: bool = False,
    ) -> Decision:
        """The decision for an account :meth:`_checked` passed (with its event
        timestamps): facts → conditions → holds and ladder. No sink, no log.
        ``facts`` makes the situation instead of deriving it (facts shared by
        policies that derive them alike); ``row``: only the output row's fields
        are read (see :func:`~escalation._ladder.evaluate`)."""
        try:
            sit = derive(account, now, self._policy, stamps, read_only=True) if facts is None else facts()
            truth = self._conditions.truth_for(sit)
            direct = self._conditions.direct
            return evaluate(self._plan, sit, truth, self._info, trace, language, direct, row=row)
        except EscalationError:
            raise
        except (
            ArithmeticError,
            TypeError,
            ValueError,
            LookupError,
            RecursionError,
            NotImplementedError,
        ) as exc:
            # fail closed: never act on a guess
            raise EvaluationError(f"account `{account.id}`: {exc}") from exc

    def decide_many(
        self,
        records: Iterable[Account | dict[str, Any]],
        *,
        now: dt.datetime,
        trace: bool = True,
        locale: Locale | None = None,
    ) -> Iterator[Decision | ErrorRow]:
        """Decide every record; a bad one yields an :class:`ErrorRow` instead of
        stopping the batch, so decisions + error rows = records."""
        for index, record in enumerate(records, start=1):
            try:
                yield self.decide(record, now=now, trace=trace, locale=locale)
            except UsageError:
                raise
            except (RecordError, EvaluationError) as exc:
                yield error_row(exc, row=index, account_id=_record_id(record))

    def explain(
        self, record: Account | dict[str, Any], *, now: dt.datetime, locale: Locale | None = None
    ) -> str:
        """A plain-text explanation of the decision for a person."""
        from escalation.explain import render_text

        decision = self.decide(record, now=now, locale=locale)
        return render_text(decision, locale or self._locale)


def _restore(bundle: bytes, backend: Backend, locale: Locale) -> Engine:
    from escalation.policy.bundle import load_policy_bundle

    return Engine(load_policy_bundle(bundle), backend=backend, locale=locale)


def _locale(locale: str) -> Locale:
    try:
        return check_locale(locale)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_now(now: object) -> None:
    """``now`` must be an aware datetime inside the supported calendar."""
    if now is _passed[0]:
        return  # a batch decides every account at one instant: checked once
    if not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise UsageError("`now` must be a timezone-aware datetime")
    if not in_range(now):
        raise UsageError("`now` is outside the supported range 1900-01-01..2199-12-31")
    if now.__class__ is dt.datetime and now.tzinfo.__class__ in _FIXED_ZONES:
        _passed[0] = now


# the last instant check_now passed, held (so its identity is never another object's);
# only an exact datetime in a zone whose offsets cannot change under it
_FIXED_ZONES = (dt.timezone, ZoneInfo)
_passed: list[object] = [object()]


def _record_id(record: object) -> str | None:
    if isinstance(record, Account):
        return record.id
    ident = record.get("id") if isinstance(record, dict) else None
    # an id is echoed in error rows only when it could be one (not free text put there)
    return ident if isinstance(ident, str) and 0 < len(ident) <= 128 and ident.isprintable() else None
