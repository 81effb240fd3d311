"""``simulate()``: advance a portfolio day by day under a policy and a
baseline, with the same customer answers for both (common random numbers),
over K runs; the totals, the candidate − baseline difference with an
interval, and the files (``summary.json``, Parquet tables, ``report.html``)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from escalation._extras import require
from escalation.decision import ErrorRow, error_row
from escalation.engine import check_now
from escalation.errors import RecordError, UsageError
from escalation.policy import Policy, load_policy
from escalation.record import parse_account, zone
from escalation.simulate._state import ERROR, Book
from escalation.simulate._summary import RunSummary, difference
from escalation.simulate.experiment import arm_of
from escalation.simulate.model import ResponseModel, bundled_model, load_response_model

__all__ = ["Arms", "SimulationResult", "simulate"]

Backend = Literal["auto", "columnar", "native"]
_BY_CURRENCY = {"CNY": "cn-card", "USD": "us-card", "GBP": "uk-loan"}


@dataclass(frozen=True)
class Arms:
    """A champion/challenger split: the challenger gets ``share`` of accounts
    by a salted hash of each id (see :func:`escalation.simulate.arm_of`)."""

    share: float
    salt: str = "escalation"

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise UsageError(f"the challenger's share must be between 0 and 100 %, not {self.share:.0%}")


@dataclass(frozen=True)
class SimulationResult:
    """Both policies' runs, their means and the candidate − baseline differences."""

    start: dt.datetime
    days: int
    seed: int
    model: ResponseModel
    model_path: str
    currency: str
    exponent: int
    candidate: Policy
    baseline: Policy | None
    runs: dict[str, list[RunSummary]]  # "candidate" / "baseline" → one per run
    errors: list[ErrorRow]
    backend: str
    arms: Arms | None
    dates: list[str]
    files: dict[str, str] = field(default_factory=dict)

    def mean(self, label: str, metric: str) -> float:
        """The mean over runs of a total (money in minor units)."""
        values = [r.totals[metric] for r in self.runs[label]]
        return sum(values) / len(values)

    def difference(self, metric: str) -> dict[str, Any] | None:
        """Candidate − baseline for a total: mean and 95 % interval over runs."""
        if "baseline" not in self.runs:
            return None
        return difference(
            [r.totals[metric] for r in self.runs["candidate"]],
            [r.totals[metric] for r in self.runs["baseline"]],
        )


def _load_book(portfolio: str | Path, currency: str, at: dt.datetime, policy_zone: str) -> Book:
    """Every row of the portfolio as one typed batch; rows that cannot be
    simulated become error rows (kept, counted, never dropped)."""
    from escalation.portfolio.arrow import TypedBatch, is_typed, read_typed, to_batch
    from escalation.portfolio.io import read_portfolio

    path = Path(portfolio)
    if is_typed(path):
        import pyarrow as pa

        parts = list(read_typed(path, 1 << 30))
        if len(parts) == 1:
            batch = parts[0]
        else:
            offsets = np.cumsum([0] + [len(p) for p in parts])
            events = [
                p.events.set_column(
                    0, "account", pa.array(np.asarray(p.events.column("account")) + offsets[k], pa.int64())
                )
                for k, p in enumerate(parts)
            ]
            batch = TypedBatch(
                pa.concat_tables([p.accounts for p in parts]), pa.concat_tables(events), str(path)
            )
    else:
        rows = []
        for item in read_portfolio(path):
            if item.error is not None or item.record is None:
                assert item.error is not None
                rows.append((item.row, {"__error__": item.error.model_dump(mode="json")}))
            else:
                rows.append((item.row, item.record))
        batch = to_batch(rows, str(path))
    book = Book.start(batch, currency, at, policy_zone)
    raws = batch.accounts.column("raw").to_pylist()
    numbers = batch.accounts.column("row").to_pylist()
    for i in np.flatnonzero(book.status == ERROR).tolist():
        book.errors[i] = _why(raws[i], numbers[i], str(path), book.ids[i], currency)
    return book


def _why(raw: str | None, row: int, source: str, ident: str, currency: str) -> ErrorRow:
    if raw is None:
        return ErrorRow(
            account_id=ident,
            source=source,
            row=row,
            field="currency",
            code="simulate-currency",
            message=f"the account's currency is not the policy's ({currency})",
        )
    record = json.loads(raw)
    if isinstance(record, dict) and set(record) == {"__error__"}:
        return ErrorRow(**{**record["__error__"], "source": source})
    try:
        parse_account(record)
    except RecordError as exc:
        return error_row(exc, row=row, source=source, account_id=None)
    return ErrorRow(
        account_id=ident,
        source=source,
        row=row,
        code="simulate-unsupported",
        message="the simulation cannot update this record's shape (decide it with dry-run)",
    )


def _model(model: str | Path | ResponseModel | None, policy: Policy) -> tuple[ResponseModel, str]:
    if isinstance(model, ResponseModel):
        return model, "<in memory>"
    if model is None:
        name = _BY_CURRENCY.get(policy.header.currency)
        if name is None:
            raise UsageError(f"no bundled response model for {policy.header.currency}; give one with --model")
        return load_response_model(bundled_model(name)), f"bundled:{name}"
    if str(model) in _BY_CURRENCY.values():
        return load_response_model(bundled_model(str(model))), f"bundled:{model}"
    return load_response_model(model), str(model)


def _check_coverage(model: ResponseModel, policy: Policy) -> None:
    """Every tier and channel of the policy has a rule whatever the segment and days."""
    missing = []
    for tier in policy.tiers:
        for channel in tier.model.channel_order:
            if model.default_rule(channel.value, tier.model.id, frozenset(tier.model.tags)) is None:
                missing.append(f"{tier.model.id}/{channel.value}")
        if (
            tier.model.offer_first
            and model.default_rule("phone", tier.model.id, frozenset(tier.model.tags)) is None
        ):
            missing.append(f"{tier.model.id}/phone (its offers are presented by phone)")
    if missing:
        raise UsageError(
            f"the response model `{model.model.id}` has no rule (for every segment and days overdue) "
            f"answering {', '.join(missing)}; add one, or a catch-all rule without `when`"
        )


def _instants(at: dt.datetime, days: int, tz: str) -> list[dt.datetime]:
    """One batch instant a day: the local wall time of ``at`` in the policy's zone."""
    local = at.astimezone(zone(tz))
    return [
        dt.datetime.combine(
            local.date() + dt.timedelta(days=d), local.timetz().replace(tzinfo=None), zone(tz)
        )
        for d in range(days)
    ]


def simulate(
    policy: str | Path | Policy,
    portfolio: str | Path,
    *,
    at: dt.datetime,
    days: int = 90,
    baseline: str | Path | Policy | None = None,
    model: str | Path | ResponseModel | None = None,
    runs: int = 1,
    seed: int = 1,
    out: str | Path | None = None,
    backend: Backend = "auto",
    arms: Arms | None = None,
    workers: int = 1,
) -> SimulationResult:
    """Simulate ``policy`` (and ``baseline``) on ``portfolio`` for ``days``
    days from ``at`` (each day's batch runs at the local time of ``at`` in the
    policy's zone), ``runs`` times with seeds ``(seed, run)``.

    ``model`` is a response-model file, a bundled profile (``cn-card``,
    ``us-card``, ``uk-loan``) or, by default, the bundled model for the
    policy's currency. ``backend``: ``columnar`` (the default under ``auto``)
    decides whole batches, falling back to the reference engine for the
    accounts it does not cover; ``native`` decides every account with the
    reference engine. ``workers`` > 1 runs the (run, policy) simulations in
    that many processes (same output). ``arms`` splits accounts into champion (baseline) and
    challenger (candidate) arms and reports results by arm. With ``out``,
    writes ``summary.json``, ``daily.parquet``, ``actions.parquet``,
    ``errors.jsonl`` and ``report.html`` there. Same inputs and seed →
    byte-identical files."""
    require("portfolio", "simulate()")
    from escalation.backends.columnar import covers
    from escalation.simulate._parallel import Plan, run_all

    check_now(at)
    if not 1 <= days <= 3650 or not 1 <= runs <= 1000:
        raise UsageError("days must be 1..3650 and runs 1..1000")
    candidate = policy if isinstance(policy, Policy) else load_policy(policy)
    base = baseline if isinstance(baseline, Policy) or baseline is None else load_policy(baseline)
    if arms is not None and base is None:
        raise UsageError("a champion/challenger split needs a baseline (the champion)")
    response_model, model_path = _model(model, candidate)
    for p in (candidate, base):
        if p is None:
            continue
        if p.header.currency != response_model.model.currency:
            raise UsageError(
                f"the response model is in {response_model.model.currency}, "
                f"the policy `{p.id}` in {p.header.currency}"
            )
        _check_coverage(response_model, p)
    header = candidate.header
    book = _load_book(portfolio, header.currency, at, header.timezone)
    instants = _instants(at, days, header.timezone)
    split = np.array([arm_of(i, arms.salt, arms.share) for i in book.ids], bool) if arms else None
    policies = {"candidate": candidate} | ({"baseline": base} if base is not None else {})
    if backend == "columnar":
        for label, p in policies.items():
            why = covers(p)
            if why is not None:
                raise UsageError(f"the columnar backend does not cover the {label} policy: {why}")
    chosen = "native" if backend == "native" else "columnar"
    plan = Plan(book, response_model, instants, seed, split, chosen == "native")
    results, errors = run_all(plan, policies, runs, workers)
    result = SimulationResult(
        start=instants[0],
        days=days,
        seed=seed,
        model=response_model,
        model_path=model_path,
        currency=header.currency,
        exponent=book.exponent,
        candidate=candidate,
        baseline=base,
        runs=results,
        errors=[errors[i] for i in sorted(errors)],
        backend=chosen,
        arms=arms,
        dates=[i.date().isoformat() for i in instants],
    )
    if out is not None:
        from escalation.simulate._output import write_outputs

        result = write_outputs(result, Path(out))
    return result
