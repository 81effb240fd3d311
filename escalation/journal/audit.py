"""Audit over a decision journal: verify the chain, replay decisions, query
records, and report compliance per guard for a period.

* :func:`verify` (in :mod:`escalation.journal.verify`, re-exported here) —
  recomputes every record's hash and link, checks the order and the head
  anchor, and rebuilds every stored policy; names the first bad record.
* :func:`replay` — re-decides each record from its stored input, ``now`` and
  policy, and compares the decision JSON byte for byte. The engine version
  alone may differ (a newer package replaying an old record): it is reported
  as a note, and as a difference with ``strict_version=True``. A decision of
  a champion/challenger experiment is replayed with its arm's policy (the
  record's) and keeps its ``experiment`` label.
* :func:`query` and :func:`report` — what a compliance officer asks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from escalation._language import LOCALES, Locale
from escalation.decision import Decision
from escalation.engine import Engine, engine_version
from escalation.errors import BackendUnavailableError, EscalationError, JournalError
from escalation.journal.records import (
    Journal,
    JournalRecord,
    parse_record,
)
from escalation.journal.verify import Problem, VerifyReport, verify
from escalation.policy import Policy
from escalation.record import Channel

__all__ = [
    "ComplianceReport",
    "GuardLine",
    "Problem",
    "ReplayResult",
    "VerifyReport",
    "Violation",
    "iter_records",
    "query",
    "replay",
    "report",
    "verify",
]


# ----------------------------------------------------------------- records


def iter_records(journal: Journal) -> Iterator[JournalRecord]:
    """Every complete record in order (a torn tail is skipped; a corrupt
    record raises :class:`JournalError` — run :func:`verify`)."""
    for raw in journal.scan():
        if raw.torn:
            continue
        try:
            yield parse_record(raw.text)
        except ValueError as exc:
            raise JournalError(f"{journal.name}: {raw.where} is not a readable record: {exc}") from exc


class _Engines:
    """Rebuilt policies and engines (no journal), cached per fingerprint."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._policies: dict[str, Policy] = {}
        self._engines: dict[tuple[str, str], tuple[Engine, str | None]] = {}

    def policy(self, fingerprint: str) -> Policy:
        if fingerprint not in self._policies:
            stored = self._journal.get_policy(fingerprint)
            if stored is None:
                raise JournalError(f"policy {fingerprint} is not stored in `{self._journal.name}`")
            self._policies[fingerprint] = stored.load()
        return self._policies[fingerprint]

    def engine(self, fingerprint: str, backend: str) -> tuple[Engine, str | None]:
        """The engine, and a note when the recorded backend is unavailable here."""
        key = (fingerprint, backend)
        if key not in self._engines:
            policy = self.policy(fingerprint)
            note = None
            try:
                engine = Engine(policy, backend=backend)  # type: ignore[arg-type]
            except BackendUnavailableError as exc:
                engine = Engine(policy, backend="native")
                note = f"backend `{backend}` unavailable here ({exc}); replayed with `native`"
            self._engines[key] = (engine, note)
        return self._engines[key]

    def decide(
        self, record: JournalRecord, *, trace: bool | None = None, locale: Locale | None = None
    ) -> tuple[Decision, str | None]:
        engine, note = self.engine(record.policy.fingerprint, record.engine.backend)
        # the engine's own validation path: an edited input is a reported
        # difference (a RecordError), never a raw validation traceback
        decision = engine.decide(
            dict(record.input),
            now=record.now_instant(),
            trace=record.trace if trace is None else trace,
            locale=locale,
        )
        return decision, note


# ----------------------------------------------------------------- replay


@dataclass(frozen=True)
class ReplayResult:
    """One replayed record: ``same`` when the decision JSON is byte-identical."""

    seq: int
    id: str
    account_id: str
    same: bool
    differences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _differences(stored: dict[str, Any], replayed: dict[str, Any]) -> list[str]:
    out = []
    for key in stored.keys() | replayed.keys():
        a, b = stored.get(key), replayed.get(key)
        if a == b:
            continue
        if key == "trace" and isinstance(a, list) and isinstance(b, list):
            for i in range(max(len(a), len(b))):
                if (a[i] if i < len(a) else None) != (b[i] if i < len(b) else None):
                    x = a[i] if i < len(a) else None
                    y = b[i] if i < len(b) else None
                    out.append(f"trace[{i}]: recorded {json.dumps(x, ensure_ascii=False)}, "
                               f"replayed {json.dumps(y, ensure_ascii=False)}")  # fmt: skip
                    break
            continue
        out.append(
            f"{key}: recorded {json.dumps(a, ensure_ascii=False)}, "
            f"replayed {json.dumps(b, ensure_ascii=False)}"
        )
    return sorted(out)


def replay(
    journal: Journal,
    *,
    ids: Iterable[str] | None = None,
    strict_version: bool = False,
) -> Iterator[ReplayResult]:
    """Re-decide every record (or those with ``ids``) and compare.

    A record that cannot be re-decided (its policy missing, its input no
    longer valid) is a difference, never skipped."""
    wanted = set(ids) if ids is not None else None
    engines = _Engines(journal)
    current = engine_version()
    for record in iter_records(journal):
        if wanted is not None and record.id not in wanted:
            continue
        notes: list[str] = []
        try:
            decision, note = engines.decide(record)
        except EscalationError as exc:
            yield ReplayResult(record.seq, record.id, record.account_id, False, (f"cannot replay: {exc}",))
            continue
        if note:
            notes.append(note)
        stored = json.loads(record.decision)
        if decision.reason != stored.get("reason"):
            # the journal does not record the reason's locale: try the others
            for locale in LOCALES:
                other, _ = engines.decide(record, locale=locale)
                if other.reason == stored.get("reason"):
                    decision = other
                    if locale != "en":
                        notes.append(f"reason replayed in {locale}")
                    break
        recorded_engine = stored.get("engine", {})
        if recorded_engine.get("version") != current:
            notes.append(f"engine version {recorded_engine.get('version')} recorded, {current} replayed")
        if not strict_version:
            decision = decision.model_copy(update={"engine": record.decision_model().engine})
        if stored.get("experiment") is not None:
            # the experiment's label routed the account to the policy replayed here (the
            # record's own): the label is kept, everything the policy decided is compared
            decision = decision.model_copy(update={"experiment": record.decision_model().experiment})
        if record.masked.paths and decision.id != stored.get("id"):
            # the id hashes the unmasked input, which the journal never keeps
            decision = decision.model_copy(update={"id": stored.get("id", "")})
            notes.append("decision id not re-derived: it hashes the unmasked input")
        text = decision.to_json()
        if text == record.decision:
            yield ReplayResult(record.seq, record.id, record.account_id, True, (), tuple(notes))
        else:
            diffs = _differences(stored, json.loads(text)) or ["the JSON text differs (formatting only)"]
            yield ReplayResult(record.seq, record.id, record.account_id, False, tuple(diffs), tuple(notes))


# ----------------------------------------------------------------- query


def _instant(record: JournalRecord) -> dt.datetime:
    return record.now_instant()


def query(
    journal: Journal,
    *,
    account: str | None = None,
    action: str | None = None,
    status: str | None = None,
    guard: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    address: str | None = None,
) -> Iterator[JournalRecord]:
    """Records matching every given filter. ``guard``: decisions in which that
    guard blocked something; ``since``/``until``: the decision instant in
    ``[since, until)``; ``address``: decisions whose input history used that
    contact address (needs the journal's masking key)."""
    label = journal.masking.pseudonym(address) if address is not None else None
    for record in iter_records(journal):
        if account is not None and record.account_id != account:
            continue
        when = _instant(record)
        if (since is not None and when < since) or (until is not None and when >= until):
            continue
        if label is not None and not any(e.get("address") == label for e in record.input.get("history", [])):
            continue
        if action is None and status is None and guard is None:
            yield record
            continue
        decision = record.decision_model()
        if action is not None and decision.action != action:
            continue
        if status is not None and decision.status != status:
            continue
        if guard is not None and not decision.blocked_by(guard):
            continue
        yield record


# ----------------------------------------------------------------- report


@dataclass
class GuardLine:
    """One guard over the period: the ``act`` decisions it covered
    (``contacts``), how many of them the trace shows it passed (``checked``),
    how often it blocked an action, and any contact it should have blocked."""

    guard: str
    source: str
    kind: str
    cite: str
    contacts: int = 0
    checked: int = 0
    blocked: int = 0
    violations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    """An ``act`` decision whose own record shows a guard blocking it."""

    seq: int
    id: str
    account_id: str
    guard: str
    why: str


@dataclass
class ComplianceReport:
    """Per guard, for a period: contacts decided, checks shown, violations."""

    journal: str
    since: dt.datetime | None
    until: dt.datetime | None
    decisions: int = 0
    acts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    guards: dict[tuple[str, str], GuardLine] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    unverified: int = 0

    @property
    def ok(self) -> bool:
        """No decision shows a contact a guard should have blocked."""
        return not self.violations


def report(
    journal: Journal, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> ComplianceReport:
    """The compliance report for decisions made in ``[since, until)``.

    For each ``act`` decision, every guard that applies to its action and
    channel must show in the trace as passed for that action and channel, and
    the action must not be listed as blocked; a record journaled without a
    trace is re-decided with one from its stored input."""
    from escalation._ladder import LadderPlan

    out = ComplianceReport(journal=journal.name, since=since, until=until)
    engines = _Engines(journal)
    plans: dict[str, LadderPlan] = {}
    for record in query(journal, since=since, until=until):
        fingerprint = record.policy.fingerprint
        if fingerprint not in plans:
            plan = LadderPlan.build(engines.policy(fingerprint))
            plans[fingerprint] = plan
            for rule in plan.policy.guards:
                key = (rule.source, rule.model.id)
                out.guards.setdefault(
                    key, GuardLine(rule.model.id, rule.source, rule.model.kind, rule.model.cite)
                )
        plan = plans[fingerprint]
        decision = record.decision_model()
        out.decisions += 1
        out.statuses[decision.status] = out.statuses.get(decision.status, 0) + 1
        sources = {r.model.id: r.source for r in plan.policy.guards}
        for item in decision.blocked:
            line = out.guards.get((sources.get(item.guard, ""), item.guard))
            if line is not None:
                line.blocked += 1
        if decision.status != "act" or decision.action is None or decision.channel is None:
            continue
        out.acts += 1
        action, channel = decision.action, decision.channel
        traced = decision if record.trace else engines.decide(record, trace=True)[0]
        for rule in plan.guards_for.get((action, Channel(channel)), ()):
            line = out.guards[(rule.source, rule.model.id)]
            line.contacts += 1
            entries = traced.trace_for("guard", rule.model.id, action=action, channel=channel)
            listed = any(
                b.guard == rule.model.id and b.action == action and b.channel == channel
                for b in decision.blocked
            )
            if listed or any(t.matched for t in entries):
                why = "listed as blocked" if listed else "its trace entry blocked it"
                out.violations.append(Violation(record.seq, record.id, record.account_id, rule.model.id, why))
                line.violations.append(record.id)
            elif entries:
                line.checked += 1
            else:
                out.unverified += 1
    return out
