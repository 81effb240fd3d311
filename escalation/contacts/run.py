"""The contact audit over a portfolio: stream the accounts, audit each one's
contacts in the period, tally the violations and write the files.

Invariant, as for dry-runs: accounts read = accounts audited + error rows."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal

from escalation.contacts._asof import undated_state
from escalation.contacts._check import Breach, ContactAuditor, Violation
from escalation.contacts._fast import FastAuditor
from escalation.decision import ErrorRow, PolicyInfo, error_row
from escalation.engine import Engine
from escalation.errors import EvaluationError, RecordError, UsageError
from escalation.policy import Policy, load_policy
from escalation.portfolio.io import SourceRow, read_portfolio

__all__ = ["BREACHES", "ActorTally", "ContactAuditResult", "RuleTally", "audit_contacts", "summary_json"]

BREACHES: tuple[Breach, ...] = ("legal", "self-regulatory", "policy")
SAMPLE = 20
Progress = Callable[[int], None]
Evaluator = Literal["auto", "fast", "reference", "typed"]
EVALUATORS: tuple[Evaluator, ...] = ("auto", "fast", "reference", "typed")


def _chosen(evaluator: Evaluator, portfolio: str | Path) -> Evaluator:
    """``auto``: the typed path for a typed folder when its extra is installed
    (its speed comes from reading columns; typing JSON on the fly gains little),
    the fast screen otherwise. All evaluators report the same violations."""
    if evaluator != "auto":
        return evaluator
    folder = Path(portfolio)
    typed = (
        folder.is_dir() and (folder / "accounts.parquet").is_file() and (folder / "events.parquet").is_file()
    )
    return "typed" if typed and importlib.util.find_spec("pyarrow") is not None else "fast"


@dataclass(frozen=True)
class RuleTally:
    """The violations of one hold or guard."""

    id: str
    kind: str
    breach: Breach
    source: str
    authority: str | None
    cite: str | None
    violations: int
    accounts: int


@dataclass(frozen=True)
class ActorTally:
    """One actor's contacts in the period and their violations, by class."""

    contacts: int
    violations: dict[str, int]

    @property
    def total(self) -> int:
        """Violations of every class."""
        return sum(self.violations.values())


@dataclass(frozen=True)
class ContactAuditResult:
    """What :func:`audit_contacts` found."""

    policy: PolicyInfo
    start: dt.datetime
    end: dt.datetime
    at: dt.datetime
    accounts: int
    audited: int
    errors: int
    contacts: int
    violations: int
    contacts_in_breach: int
    by_breach: dict[str, int]
    by_rule: dict[str, RuleTally]
    by_actor: dict[str, ActorTally]
    by_day: dict[str, dict[str, int]]
    undated_accounts: int
    sample: tuple[Violation, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    #: the fast evaluator's work: contacts ``referred`` to the reference, and
    #: contacts ``reused`` (given the violations it wrote for their state)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def legal(self) -> int:
        """Violations of the law or of a regulator's binding rules."""
        return self.by_breach.get("legal", 0)

    def per_thousand(self, count: int, contacts: int | None = None) -> float:
        """``count`` per 1,000 contacts (of all, or of ``contacts``)."""
        base = self.contacts if contacts is None else contacts
        return 1000 * count / base if base else 0.0


class _Tallies:
    def __init__(self) -> None:
        self.by_breach: dict[str, int] = dict.fromkeys(BREACHES, 0)
        self.rules: dict[str, list[Any]] = {}
        self.rule_accounts: dict[str, set[str]] = {}
        self.actor_contacts: dict[str, int] = {}
        self.actor_violations: dict[str, dict[str, int]] = {}
        self.by_day: dict[str, dict[str, int]] = {}
        self.contacts = self.violations = self.in_breach = self.undated = 0
        self.sample: list[Violation] = []

    def add(self, contacts: dict[str, int], found: list[Violation]) -> None:
        for actor, n in contacts.items():
            self.contacts += n
            self.actor_contacts[actor] = self.actor_contacts.get(actor, 0) + n
        self.in_breach += len({v.event_index for v in found})
        for v in found:
            self.violations += 1
            self.by_breach[v.breach] += 1
            entry = self.rules.setdefault(v.id, [v, 0])
            entry[1] += 1
            self.rule_accounts.setdefault(v.id, set()).add(v.account_id)
            mix = self.actor_violations.setdefault(v.actor, dict.fromkeys(BREACHES, 0))
            mix[v.breach] += 1
            day = self.by_day.setdefault(v.at.date().isoformat(), dict.fromkeys(BREACHES, 0))
            day[v.breach] += 1
            if len(self.sample) < SAMPLE:
                self.sample.append(v)

    def rule_tallies(self) -> dict[str, RuleTally]:
        out = {}
        for key, (v, count) in self.rules.items():
            out[key] = RuleTally(
                v.id, v.kind, v.breach, v.source, v.authority, v.cite, count, len(self.rule_accounts[key])
            )
        order = {b: i for i, b in enumerate(BREACHES)}
        return dict(sorted(out.items(), key=lambda kv: (order[kv[1].breach], -kv[1].violations, kv[0])))


def _rows(
    rows: Iterable[SourceRow],
    engine: Engine,
    auditor: ContactAuditor | FastAuditor,
    span: tuple[dt.datetime, ...],
) -> Iterator[tuple[SourceRow, dict[str, int], list[Violation], bool, ErrorRow | None]]:
    start, end, at = span
    for item in rows:
        item = item.parsed()
        if item.error is not None or item.record is None:
            assert item.error is not None
            yield item, {}, [], False, item.error
            continue
        ident = item.record.get("id")
        try:
            account = engine.validate(item.record, now=at)
            contacts, found = auditor.audit(account, start, end, at)
        except (RecordError, EvaluationError) as exc:
            error = error_row(
                exc, row=item.row, source=item.source, account_id=ident if isinstance(ident, str) else None
            )
            yield item, {}, [], False, error
            continue
        yield item, contacts, found, bool(undated_state(account)), None


def audit_contacts(
    policy: str | Path | Policy,
    portfolio: str | Path,
    *,
    start: dt.datetime,
    end: dt.datetime,
    at: dt.datetime | None = None,
    out: str | Path | None = None,
    history: str | Path | None = None,
    progress: Progress | None = None,
    evaluator: Evaluator = "auto",
) -> ContactAuditResult:
    """Audit the contacts actually made: every outbound history event dated in
    [``start``, ``end``) is re-evaluated under ``policy`` as of its own instant,
    on the history strictly before it, and each hold or guard that would have
    blocked it is a :class:`~escalation.contacts.Violation`.

    ``at`` is when the records were exported (default: now): they are validated
    as of then, and a bare ``days_overdue`` is counted from then. With ``out``,
    writes ``violations.jsonl``, ``errors.jsonl``, ``summary.json`` and a
    self-contained ``report.html`` (the report needs the ``[portfolio]`` extra).

    ``evaluator="auto"`` (the default) is ``"typed"`` for a typed folder
    (with the ``[portfolio]`` extra) and ``"fast"`` otherwise. ``"fast"`` screens each contact cheaply and
    re-evaluates only those the screen cannot clear; ``"reference"``
    re-evaluates every contact; ``"typed"`` reads the typed layout (a typed
    portfolio folder, or any portfolio typed on the fly; needs the
    ``[portfolio]`` extra) and screens whole accounts over its columns,
    sending only the accounts it cannot clear through the fast path. All
    three report the same violations, error rows and summary.
    """
    if evaluator not in EVALUATORS:
        raise UsageError(f"`evaluator` must be one of {', '.join(EVALUATORS)}, not `{evaluator}`")
    evaluator = _chosen(evaluator, portfolio)
    for name, value in (("start", start), ("end", end), ("at", at)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise UsageError(f"`{name}` must be a timezone-aware datetime")
    if end <= start:
        raise UsageError(
            f"the period is empty: `end` {end.isoformat()} is not after `start` {start.isoformat()}"
        )
    exported = at if at is not None else dt.datetime.now(dt.UTC).replace(microsecond=0)
    loaded = policy if isinstance(policy, Policy) else load_policy(policy)
    engine = Engine(loaded)
    reference = ContactAuditor(loaded)
    auditor = reference if evaluator == "reference" else FastAuditor(reference)
    span = (start, end, exported)
    stats: dict[str, int] = {}
    folder = Path(out) if out is not None else None
    handles: dict[str, IO[str]] = {}
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("violations", "errors"):
            handles[name] = (folder / f"{name}.jsonl").open("w", encoding="utf-8")
    tallies = _Tallies()
    accounts = audited = errors = 0
    unreported = 0
    try:
        if evaluator == "typed":
            from escalation._extras import require

            require("portfolio", 'audit_contacts(evaluator="typed")')  # pyarrow, numpy: one-line hint
            from escalation.contacts._typed_run import typed_results

            results: Iterator[Any] = typed_results(
                portfolio, history, reference, span, lambda rows: _rows(rows, engine, auditor, span), stats
            )
        else:
            results = _rows(read_portfolio(portfolio, history=history), engine, auditor, span)
        for item in results:
            if not isinstance(item, tuple):  # a typed batch's cleared accounts: audited, nothing found
                accounts += item.accounts
                audited += item.accounts
                unreported += item.accounts
                tallies.undated += item.undated
                tallies.add(item.contacts, [])
            else:
                _, contacts, found, undated, error = item
                accounts += 1
                unreported += 1
            if progress is not None and unreported >= 1000:
                progress(unreported)
                unreported = 0
            if not isinstance(item, tuple):
                continue
            if error is not None:
                errors += 1
                if "errors" in handles:
                    handles["errors"].write(error.model_dump_json() + "\n")
                continue
            audited += 1
            tallies.undated += undated
            tallies.add(contacts, found)
            if "violations" in handles:
                for v in found:
                    handles["violations"].write(json.dumps(v.to_json(), ensure_ascii=False) + "\n")
        if progress is not None:
            progress(unreported)
    finally:
        for handle in handles.values():
            handle.close()
    result = ContactAuditResult(
        policy=PolicyInfo(id=loaded.id, version=loaded.version, fingerprint=loaded.fingerprint),
        start=start,
        end=end,
        at=exported,
        accounts=accounts,
        audited=audited,
        errors=errors,
        contacts=tallies.contacts,
        violations=tallies.violations,
        contacts_in_breach=tallies.in_breach,
        by_breach=tallies.by_breach,
        by_rule=tallies.rule_tallies(),
        by_actor={
            actor: ActorTally(n, tallies.actor_violations.get(actor, dict.fromkeys(BREACHES, 0)))
            for actor, n in sorted(tallies.actor_contacts.items())
        },
        by_day=dict(sorted(tallies.by_day.items())),
        undated_accounts=tallies.undated,
        sample=tuple(tallies.sample),
        stats={"referred": auditor.referred, "reused": auditor.reused, **stats}
        if isinstance(auditor, FastAuditor)
        else {},
    )
    if folder is not None:
        files = {name: str(folder / f"{name}.jsonl") for name in ("violations", "errors")}
        files["summary"] = str(folder / "summary.json")
        files["report"] = str(folder / "report.html")
        result = replace(result, files=files)
        (folder / "summary.json").write_text(
            json.dumps(summary_json(result), indent=2, ensure_ascii=False) + "\n"
        )
        from escalation.contacts.report_html import write_report

        write_report(result, folder / "report.html")
    return result


def summary_json(result: ContactAuditResult) -> dict[str, Any]:
    """The plain-JSON form of the result (``summary.json``)."""
    return {
        "policy": result.policy.model_dump(mode="json"),
        "period": {"start": result.start.isoformat(), "end": result.end.isoformat(), "end_excluded": True},
        "exported_at": result.at.isoformat(),
        "accounts": result.accounts,
        "audited": result.audited,
        "errors": result.errors,
        "contacts": result.contacts,
        "violations": result.violations,
        "contacts_in_breach": result.contacts_in_breach,
        "per_1000_contacts": round(result.per_thousand(result.violations), 3),
        "by_breach": result.by_breach,
        "by_rule": {
            key: {
                "kind": t.kind,
                "breach": t.breach,
                "source": t.source,
                "authority": t.authority,
                "cite": t.cite,
                "violations": t.violations,
                "accounts": t.accounts,
                "per_1000_contacts": round(result.per_thousand(t.violations), 3),
            }
            for key, t in result.by_rule.items()
        },
        "by_actor": {
            actor: {
                "contacts": t.contacts,
                "violations": t.violations,
                "per_1000_contacts": round(result.per_thousand(t.total, t.contacts), 3),
            }
            for actor, t in result.by_actor.items()
        },
        "by_day": result.by_day,
        "undated_accounts": result.undated_accounts,
        "files": result.files,
    }
