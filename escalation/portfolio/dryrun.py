"""Dry-runs: decide a whole portfolio at one instant under a candidate policy
(and optionally a baseline), and say what changes — for how many accounts and
how much balance.

Records stream through in chunks; with ``workers > 1`` chunks are decided in
worker processes (each builds its engines once) and results are consumed in
input order, so every output file is byte-identical whatever the number of
workers. Invariant: accounts read = decisions written + error rows."""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from escalation._extras import require
from escalation._facts import account_zone
from escalation._processes import pool_context, start_early
from escalation.decision import ErrorRow, PolicyInfo, error_row
from escalation.engine import Engine, check_now
from escalation.errors import EvaluationError, RecordError, UsageError
from escalation.experiment import Experiment, ExperimentEngine
from escalation.policy import Policy, load_policy
from escalation.portfolio._arms import ArmTallies, experiment_info
from escalation.portfolio._columnar_run import Reasons, columnar_results
from escalation.portfolio._fold import Plan, Tallies, merge
from escalation.portfolio.io import DecisionWriter, SourceRow, decision_row, read_portfolio
from escalation.portfolio.results import (
    AccountChange,
    DryRunResult,
    PolicySummary,
    SummaryBuilder,
    Tally,
    change_row,
    label,
    summary_json,
)
from escalation.portfolio.writer import decisions_file
from escalation.record import days_overdue_on

__all__ = ["AccountChange", "DryRunResult", "PolicySummary", "Tally", "compare", "dry_run", "summary_json"]


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One account's result in a dry-run: both decisions, or its error row."""

    row: int
    source: str
    account_id: str | None
    balance: Decimal
    days_overdue: int
    candidate: dict[str, Any] | None
    baseline: dict[str, Any] | None
    error: ErrorRow | None
    arm: str | None = None  # under an experiment: the account's arm


CHUNK = 500
Progress = Callable[[int], None]
Backend = Literal["auto", "columnar", "native"]


# ----------------------------------------------------------------- deciding


class _Decider:
    """Decides chunks of rows under the candidate (and baseline) engines."""

    def __init__(
        self,
        candidate: Policy,
        baseline: Policy | None,
        journal: Any = None,
        locale: Any = None,
        experiment: Experiment | None = None,
    ) -> None:
        self.candidate: Engine | ExperimentEngine = Engine(candidate, journal=journal, locale=locale)
        if experiment is not None:  # candidate = the challenger, baseline = the champion
            assert baseline is not None
            self.candidate = ExperimentEngine(experiment, baseline, candidate, journal=journal, locale=locale)
        self.baseline = Engine(baseline, locale=locale) if baseline is not None else None

    def one(self, item: SourceRow, at: dt.datetime) -> _Outcome:
        item = item.parsed()
        if item.error is not None or item.record is None:
            assert item.error is not None
            return _Outcome(
                item.row, item.source, item.error.account_id, Decimal(0), 0, None, None, item.error
            )
        ident = item.record.get("id")
        ident = ident if isinstance(ident, str) and 0 < len(ident) <= 128 and ident.isprintable() else None
        try:
            account = self.candidate.validate(item.record, now=at)  # validated once, for both policies
            decision = self.candidate.decide(account, now=at, trace=False)
            new = decision_row(decision)
            arm = decision.experiment.arm if decision.experiment is not None else None
            old = None if self.baseline is None else new if arm == "champion" else (
                decision_row(self.baseline.decide(account, now=at, trace=False))
            )  # fmt: skip
        except (RecordError, EvaluationError) as exc:
            error = error_row(exc, row=item.row, source=item.source, account_id=ident)
            return _Outcome(item.row, item.source, error.account_id, Decimal(0), 0, None, None, error)
        engine = self.candidate if isinstance(self.candidate, Engine) else self.candidate.engine_for(account)
        today = at.astimezone(account_zone(account, engine.policy)).date()
        days = days_overdue_on(account, today)
        return _Outcome(item.row, item.source, account.id, account.balance, days, new, old, None, arm)

    def chunk(self, rows: list[SourceRow], at: dt.datetime) -> list[_Outcome]:
        return [self.one(row, at) for row in rows]


_WORKER: _Decider | None = None  # set in each worker process by _start_worker


def _start_worker(
    candidate: str, baseline: str | None, locale: Any = None, experiment: Experiment | None = None
) -> None:
    global _WORKER
    base = load_policy(baseline) if baseline else None
    _WORKER = _Decider(load_policy(candidate), base, locale=locale, experiment=experiment)


def _work(rows: list[SourceRow], at: dt.datetime) -> list[_Outcome]:
    assert _WORKER is not None
    return _WORKER.chunk(rows, at)


def _chunks(rows: Iterable[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    chunk: list[SourceRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _outcomes(
    rows: Iterable[SourceRow],
    at: dt.datetime,
    candidate: Policy,
    baseline: Policy | None,
    workers: int,
    journal: Any,
    locale: Any = None,
    experiment: Experiment | None = None,
) -> Iterator[_Outcome]:
    if workers <= 1:
        decider = _Decider(candidate, baseline, journal, locale, experiment)
        for chunk in _chunks(rows, CHUNK):
            yield from decider.chunk(chunk, at)
        return
    if journal is not None:
        raise UsageError("journaling a dry-run needs --workers 1 (one writer keeps the chain in order)")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=pool_context(),
        initializer=_start_worker,
        initargs=(candidate.path, baseline.path if baseline else None, locale, experiment),
    ) as pool:
        pending: deque[Future[list[_Outcome]]] = deque()
        for chunk in _chunks(rows, CHUNK):
            pending.append(pool.submit(_work, chunk, at))
            if len(pending) >= workers * 3:  # bounded: memory stays flat
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


# ----------------------------------------------------------------- summaries


def _summary(policy: Policy) -> SummaryBuilder:
    return SummaryBuilder(PolicyInfo(id=policy.id, version=policy.version, fingerprint=policy.fingerprint))


def dry_run(
    policy: str | Path | Policy | ExperimentEngine,
    portfolio: str | Path,
    *,
    at: dt.datetime,
    baseline: str | Path | Policy | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    fmt: Literal["jsonl", "parquet"] = "jsonl",
    history: str | Path | None = None,
    sample: int = 50,
    journal: Any = None,
    progress: Progress | None = None,
    backend: Backend = "auto",
    reasons: Reasons = "changed",
    locale: Any = None,
) -> DryRunResult:
    """Decide every account of ``portfolio`` at ``at`` under ``policy`` (and
    ``baseline``). With ``out``, writes ``decisions.<fmt>`` (and
    ``baseline.<fmt>``, ``changes.jsonl``), ``errors.jsonl``, ``summary.json``
    and a self-contained ``report.html`` there.

    ``backend``: ``columnar`` decides in batches over Arrow columns (accounts
    it does not vectorise go to the reference engine, counted in the result);
    ``native`` decides every account with the reference engine; ``auto`` (the
    default) is ``columnar`` when it covers both policies and no journal is
    kept. ``reasons`` (columnar): ``changed`` renders reasons (through the
    reference engine) for changed accounts only, ``all`` for every account,
    ``none`` for none but the reference engine's own rows. ``locale`` (``en``,
    ``zh-CN``) is the language of the reasons and the report; a locale other than
    the policy's own is rendered by the reference engine (``auto`` picks ``native``).

    ``policy`` may be an :class:`~escalation.experiment.ExperimentEngine`
    (champion/challenger; its sink is not used, pass ``journal``): each account
    is decided by its arm's policy, the champion is the baseline for every
    account, and the result counts by arm (``experiment``, ``share``, ``arms``)."""
    require("portfolio", "dry_run()")
    check_now(at)
    if workers > 1:  # the workers' server imports the package while the policies load
        start_early()
    experiment = policy.experiment if isinstance(policy, ExperimentEngine) else None
    base: Policy | None
    if isinstance(policy, ExperimentEngine):
        if baseline is not None:
            raise UsageError("an experiment's baseline is its champion: give no baseline")
        candidate, base = policy.challenger.policy, policy.champion.policy
    else:
        candidate = policy if isinstance(policy, Policy) else load_policy(policy)
        base = baseline if isinstance(baseline, Policy) or baseline is None else load_policy(baseline)
    arms = ArmTallies(experiment, base, candidate) if experiment is not None and base is not None else None
    folder = Path(out) if out is not None else None
    writers: dict[str, DecisionWriter] = {}
    error_file = changes_file = None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        writers["decisions"] = DecisionWriter(decisions_file(folder, "decisions", fmt), fmt)
        if base is not None:
            writers["baseline"] = DecisionWriter(decisions_file(folder, "baseline", fmt), fmt)
            changes_file = (folder / "changes.jsonl").open("w", encoding="utf-8")
        error_file = (folder / "errors.jsonl").open("w", encoding="utf-8")

    new_summary = _summary(candidate)
    if arms is not None:  # the candidate is the experiment: each account under its arm's policy
        new_summary = SummaryBuilder(experiment_info(arms.experiment, arms.champion, candidate))
    old_summary = _summary(base) if base is not None else None
    transitions: dict[tuple[str, str], list[Any]] = {}
    changes: list[AccountChange] = []
    accounts = decided = errors = changed = 0
    changed_balance = Decimal(0)
    changed_days: dict[int, dict[str, int]] = {}
    stats = {"vectorised": 0, "fallback": 0}
    from escalation.backends.columnar import choose_backend

    if locale is not None and str(locale) != str(candidate.header.locale) and backend == "auto":
        backend = "native"  # reasons in another language come from the reference engine
    chosen = choose_backend(backend, candidate, base, journal is not None)
    try:
        if chosen == "columnar":
            tallies = Tallies(
                [new_summary] + ([old_summary] if old_summary is not None else []),
                writers, error_file, changes_file, sample, transitions, changes, changed_days, arms=arms,
            )  # fmt: skip
            tallied = experiment if arms is not None else None
            plan = Plan(fmt if folder is not None else None, base is not None, sample, tallied, folder)
            parts = columnar_results(
                Path(portfolio), history, at, candidate, base, reasons, stats, workers, plan
            )
            with closing(parts):  # on an error too: the workers stop and their spool goes
                for part in parts:
                    merge(part, tallies, progress)
            accounts, decided, errors = tallies.accounts, tallies.decided, tallies.errors
            changed, changed_balance = tallies.changed, tallies.changed_balance
            outcomes: Iterable[_Outcome] = ()
        else:
            rows = read_portfolio(portfolio, history=history, lazy=workers > 1)
            outcomes = _outcomes(rows, at, candidate, base, workers, journal, locale, experiment)
        for outcome in outcomes:
            accounts += 1
            if progress is not None and accounts % 1000 == 0:
                progress(1000)
            if outcome.error is not None:
                errors += 1
                if error_file is not None:
                    error_file.write(outcome.error.model_dump_json() + "\n")
                continue
            decided += 1
            new = outcome.candidate
            assert new is not None
            new_summary.add(new, outcome.balance, outcome.days_overdue)
            if "decisions" in writers:
                writers["decisions"].write(new)
            old = outcome.baseline
            if old is None or old_summary is None:
                continue
            old_summary.add(old, outcome.balance, outcome.days_overdue)
            if "baseline" in writers:
                writers["baseline"].write(old)
            key = (label(old), label(new))
            entry = transitions.setdefault(key, [0, Decimal(0)])
            entry[0] += 1
            entry[1] += outcome.balance
            moved = (old["status"], old["action"], old["channel"]) != (
                new["status"],
                new["action"],
                new["channel"],
            )
            if arms is not None and outcome.arm is not None:
                arms.add(outcome.arm, new, old, outcome.balance, outcome.days_overdue, moved)
            if moved:
                changed += 1
                changed_balance += outcome.balance
                day = changed_days.setdefault(outcome.days_overdue, {})
                day[f"{key[0]} → {key[1]}"] = day.get(f"{key[0]} → {key[1]}", 0) + 1
                change = AccountChange(
                    account_id=str(outcome.account_id),
                    balance=outcome.balance,
                    days_overdue=outcome.days_overdue,
                    baseline=label(old),
                    candidate=label(new),
                    baseline_reason=old["reason"],
                    candidate_reason=new["reason"],
                )
                if len(changes) < sample:
                    changes.append(change)
                if changes_file is not None:
                    changes_file.write(json.dumps(change_row(change), ensure_ascii=False) + "\n")
        if progress is not None and chosen != "columnar":
            progress(accounts % 1000)
    finally:
        for writer in writers.values():
            writer.close()
        for handle in (error_file, changes_file):
            if handle is not None:
                handle.close()

    result = DryRunResult(
        at=at,
        accounts=accounts,
        decided=decided,
        errors=errors,
        candidate=new_summary.freeze(),
        baseline=old_summary.freeze() if old_summary else None,
        transitions={k: Tally(v[0], v[1]) for k, v in sorted(transitions.items())},
        changed=changed,
        changed_balance=changed_balance,
        sample=tuple(changes),
        files={name: str(w.path) for name, w in writers.items()},
        backend=chosen,
        vectorised=stats["vectorised"],
        fallback=stats["fallback"],
        currency=candidate.header.currency,
        order=_order(candidate, base),
        changed_days=dict(sorted(changed_days.items())),
        locale=str(locale or candidate.header.locale),
        experiment=experiment.id if experiment is not None else None,
        share=experiment.challenger.share if experiment is not None else None,
        arms=arms.freeze() if arms is not None else {},
    )
    if folder is not None:
        from escalation.portfolio.report_html import write_report

        files = dict(result.files)
        files["errors"] = str(folder / "errors.jsonl")
        if changes_file is not None:
            files["changes"] = str(folder / "changes.jsonl")
        files["summary"] = str(folder / "summary.json")
        files["report"] = str(folder / "report.html")
        result = DryRunResult(**{**result.__dict__, "files": files})
        (folder / "summary.json").write_text(
            json.dumps(summary_json(result), indent=2, ensure_ascii=False) + "\n"
        )
        write_report(result, folder / "report.html")
    return result


def _order(candidate: Policy, baseline: Policy | None) -> tuple[str, ...]:
    """Decision labels from the mildest to the most severe: the statuses that
    do nothing, then every tier in ladder order (the baseline's extra tiers last)."""
    tiers = [t.model.id for t in candidate.tiers]
    if baseline is not None:
        tiers += [t.model.id for t in baseline.tiers if t.model.id not in tiers]
    return ("(hold)", "(none)", "(wait)", *tiers)


def compare(
    baseline: str | Path | Policy,
    candidate: str | Path | Policy,
    portfolio: str | Path,
    *,
    at: dt.datetime,
    **options: Any,
) -> DryRunResult:
    """Dry-run ``candidate`` beside ``baseline``: the transition matrix, the
    changed accounts and both summaries."""
    return dry_run(candidate, portfolio, at=at, baseline=baseline, **options)
