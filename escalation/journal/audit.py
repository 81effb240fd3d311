"""Audit over a decision journal: verify the chain, replay decisions, query
records, and report compliance per guard for a period.

* :func:`verify` — recomputes every record's hash and link, checks the order
  and the head anchor, and rebuilds every stored policy; names the first bad
  record (edited, deleted, reordered, truncated).
* :func:`replay` — re-decides each record from its stored input, ``now`` and
  policy, and compares the decision JSON byte for byte. The engine version
  alone may differ (a newer package replaying an old record): it is reported
  as a note, and as a difference with ``strict_version=True``.
* :func:`query` and :func:`report` — what a compliance officer asks."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from escalation.decision import Decision
from escalation.engine import Engine, engine_version
from escalation.errors import BackendUnavailableError, EscalationError, JournalError
from escalation.journal.records import (
    GENESIS,
    Head,
    Journal,
    JournalRecord,
    RawEntry,
    parse_record,
    record_hash,
)
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


# ----------------------------------------------------------------- verify


@dataclass(frozen=True)
class Problem:
    """One integrity failure: what kind, which record, where, and why.

    Kinds: ``corrupt`` (not a readable record), ``edited`` (content does not
    match its hash), ``chain`` (does not link to the record before it),
    ``deleted``, ``reordered``, ``truncated``, ``anchor`` (the head anchor is
    missing or does not match), ``policy`` (a stored policy is missing or
    does not rebuild to its fingerprint)."""

    kind: str
    seq: int | None
    id: str | None
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclass
class VerifyReport:
    """The result of :func:`verify`: ``ok`` when no problem was found."""

    journal: str
    records: int = 0
    head: str | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    policies: int = 0

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first bad record's problem, in chain order."""
        return self.problems[0] if self.problems else None


def _parse(raw: RawEntry) -> tuple[JournalRecord | None, dict[str, Any] | None, str | None]:
    try:
        data = json.loads(raw.text)
        record = parse_record(raw.text)
    except ValueError as exc:
        return None, None, str(exc)
    return record, data, None


def verify(journal: Journal, *, check_policies: bool = True, expect_head: str | None = None) -> VerifyReport:
    """Check the whole journal; the first problem names the first bad record.

    ``expect_head`` (``SEQ:HASH`` or ``HASH``, as printed by an earlier
    verify and kept elsewhere) also checks that the chain still contains that
    record unchanged: it catches a chain rewritten from some point on,
    anchor included."""
    out = VerifyReport(journal=journal.name)
    parsed: list[tuple[RawEntry, JournalRecord | None, dict[str, Any] | None, str | None]] = []
    torn: RawEntry | None = None
    for raw in journal.scan():
        if raw.torn:
            torn = raw
            continue
        parsed.append((raw, *_parse(raw)))
    position_of = {rec.seq: raw.where for raw, rec, _, _ in parsed if rec is not None}
    hashes: dict[int, str] = {}
    prev = GENESIS
    for index, (raw, rec, data, error) in enumerate(parsed, start=1):
        problem = _check_one(index, raw, rec, data, error, prev, position_of)
        if problem is not None:
            out.problems.append(problem)
            break
        assert rec is not None
        prev = rec.hash
        hashes[rec.seq] = rec.hash
    out.records = len(parsed)
    if not out.problems:
        _check_head(journal, out, hashes, torn)
    if not out.problems and expect_head:
        _check_expected(expect_head, hashes, out)
    if not out.problems and torn is not None:
        out.notes.append(
            f"truncated tail: {torn.where} is an incomplete record ({len(torn.text.encode())} bytes), "
            "a write "
            f"that never completed and was never acknowledged; the {out.records} complete records verify"
        )
    if check_policies:
        _check_policies(journal, parsed, out)
    return out


def _check_one(
    index: int,
    raw: RawEntry,
    rec: JournalRecord | None,
    data: dict[str, Any] | None,
    error: str | None,
    prev: str,
    position_of: dict[int, str],
) -> Problem | None:
    if rec is None or data is None:
        return Problem(
            "corrupt", index, None, raw.where, f"record {index} is not a readable record ({error})"
        )
    if record_hash(data) != rec.hash:
        return Problem(
            "edited", rec.seq, rec.id, raw.where,
            f"record seq {rec.seq} (id {rec.id}) was edited: its content does not match its hash",
        )  # fmt: skip
    if rec.seq != index:
        if index in position_of:
            return Problem(
                "reordered", rec.seq, rec.id, raw.where,
                f"record seq {rec.seq} (id {rec.id}) stands where seq {index} belongs "
                f"(seq {index} is at {position_of[index]}): records were reordered",
            )  # fmt: skip
        missing = f"{index}" if rec.seq == index + 1 else f"{index}..{rec.seq - 1}"
        return Problem(
            "deleted", index, None, raw.where,
            f"record seq {missing} is missing before record seq {rec.seq} (id {rec.id}): deleted",
        )  # fmt: skip
    if rec.prev != prev:
        return Problem(
            "chain", rec.seq, rec.id, raw.where,
            f"record seq {rec.seq} (id {rec.id}) does not link to record seq {rec.seq - 1}: "
            f"that record was replaced (edited and re-hashed) or this one inserted",
        )  # fmt: skip
    return None


def _check_head(journal: Journal, out: VerifyReport, hashes: dict[int, str], torn: RawEntry | None) -> None:
    try:
        head: Head | None = journal.head()
    except JournalError as exc:
        out.problems.append(Problem("anchor", None, None, journal.name, str(exc)))
        return
    count = out.records
    may_lag = bool(getattr(journal, "head_may_lag", False))
    if head is None or head.seq == 0:
        if count:
            out.problems.append(Problem("anchor", None, None, "head", "the head anchor is missing"))
        return
    out.head = f"{head.seq}:{head.hash}"
    if head.seq > count:
        missing = f"{count + 1}" if head.seq == count + 1 else f"{count + 1}..{head.seq}"
        extra = f"; {torn.where} is a torn fragment" if torn is not None else ""
        out.problems.append(
            Problem(
                "truncated",
                count + 1,
                None,
                f"after record {count}",
                f"truncated: the head anchors record seq {head.seq} but only {count} records are present; "
                f"record seq {missing} is missing{extra}",
            )
        )
    elif head.seq < count and not (may_lag and head.seq == count - 1):
        out.problems.append(
            Problem(
                "anchor", head.seq + 1, None, "head",
                f"records after the anchored head (seq {head.seq}) were added outside the journal",
            )
        )  # fmt: skip
    elif hashes.get(head.seq) != head.hash:
        out.problems.append(
            Problem("anchor", head.seq, None, "head", f"the head anchor does not match record seq {head.seq}")
        )
    elif head.seq < count:
        out.notes.append(
            f"the head anchor lags by one record (seq {count}): a writer stopped after its fsync"
        )
    if not out.problems:
        last = max(hashes)
        out.head = f"{last}:{hashes[last]}"


def _check_expected(expect: str, hashes: dict[int, str], out: VerifyReport) -> None:
    seq_text, sep, digest = expect.partition(":")
    if not (sep and seq_text.isdigit()):
        seq_text, digest = "", expect
    if seq_text:
        seq = int(seq_text)
        if hashes.get(seq) != digest:
            out.problems.append(
                Problem(
                    "anchor", seq, None, f"seq {seq}", f"record seq {seq} no longer has the expected hash"
                )
            )
    elif digest not in hashes.values():
        out.problems.append(
            Problem("anchor", None, None, "chain", f"no record has the expected hash {digest}")
        )


def _check_policies(
    journal: Journal,
    parsed: list[tuple[RawEntry, JournalRecord | None, dict[str, Any] | None, str | None]],
    out: VerifyReport,
) -> None:
    first_use: dict[str, tuple[RawEntry, JournalRecord]] = {}
    for raw, rec, _, _ in parsed:
        if rec is not None and rec.policy.fingerprint not in first_use:
            first_use[rec.policy.fingerprint] = (raw, rec)
    for fingerprint, (raw, rec) in first_use.items():
        try:
            stored = journal.get_policy(fingerprint)
            if stored is None:
                raise JournalError(f"policy {fingerprint} is not stored")
            if "sha256:" + hashlib.sha256(stored.canonical.encode()).hexdigest() != fingerprint:
                raise JournalError(f"stored policy {fingerprint}: its canonical text does not match")
            stored.load()
        except JournalError as exc:
            out.problems.append(Problem("policy", rec.seq, rec.id, raw.where, str(exc)))
        else:
            out.policies += 1


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

    def decide(self, record: JournalRecord, *, trace: bool | None = None) -> tuple[Decision, str | None]:
        engine, note = self.engine(record.policy.fingerprint, record.engine.backend)
        # the engine's own validation path: an edited input is a reported
        # difference (a RecordError), never a raw validation traceback
        decision = engine.decide(
            dict(record.input), now=record.now_instant(), trace=record.trace if trace is None else trace
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
        recorded_engine = stored.get("engine", {})
        if recorded_engine.get("version") != current:
            notes.append(f"engine version {recorded_engine.get('version')} recorded, {current} replayed")
        if not strict_version:
            decision = decision.model_copy(update={"engine": record.decision_model().engine})
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
