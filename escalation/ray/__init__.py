"""Decisions and dry-runs on Ray Data: the same decisions as the local
engine, on a Ray cluster.

Blocks are decided by :func:`escalation.arrow.decide_batches` in
``map_batches`` **tasks** (not an actor pool: on a small cluster a pool of
actors can hold every CPU and starve the reads feeding it; the policy is
rebuilt from its bundle once per worker process, so tasks cost little more).
Inputs are as for :mod:`escalation.spark`: record columns (money
``decimal``, instants zoned timestamps) or JSON text (``json_column``), with
an optional ``row`` column numbering the rows (else ``row`` is null).

Needs the ``[ray]`` extra (``pip install 'escalation[ray]'``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from escalation._extras import require

if TYPE_CHECKING:
    from escalation.policy import Policy

__all__ = ["RayDryRun", "decide", "dry_run", "local_cluster"]

Reasons = Literal["all", "changed", "none"]
BATCH = 4096
_DECISION = (
    "status", "action", "channel", "severity", "reason", "next_eligible_at", "hold",
    "blocked_guards", "policy_fingerprint",
)  # fmt: skip


def local_cluster(cpus: int = 2) -> None:
    """Start (or join) a local Ray with ``cpus`` CPUs, no dashboard and no
    progress bars: for trying ``escalation.ray`` on one machine. Workers run
    this interpreter. On a cluster, call ``ray.init(address=…)`` instead."""
    require("ray", "escalation.ray")
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False


def _policy(policy: str | Path | Policy) -> Policy:
    from escalation.policy import Policy, load_policy

    return policy if isinstance(policy, Policy) else load_policy(policy)


class _Decide:
    """A picklable batch function (called once per block, in a task)."""

    def __init__(
        self, bundle: bytes, baseline: bytes | None, at: dt.datetime, reasons: str,
        json_column: str | None, source: str,
    ) -> None:  # fmt: skip
        self.args = (bundle, baseline, at, reasons, json_column, source)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from escalation.arrow import decide_batches, output_schema
        from escalation.policy.bundle import load_policy_bundle

        bundle, baseline, at, reasons, json_column, source = self.args
        out = list(
            decide_batches(
                batch,
                load_policy_bundle(bundle),
                at=at,
                baseline=load_policy_bundle(baseline) if baseline is not None else None,
                reasons=reasons,  # type: ignore[arg-type]
                json_column=json_column,
                first_row=None,
                source=source,
            )
        )
        return pa.Table.from_batches(out, schema=output_schema(baseline is not None))


def decide(
    ds: Any,
    policy: str | Path | Policy,
    *,
    at: dt.datetime,
    baseline: str | Path | Policy | None = None,
    reasons: Reasons = "none",
    json_column: str | None = None,
    source: str = "<ray>",
    batch_size: int = BATCH,
) -> Any:
    """Every row of the Ray ``Dataset`` ``ds`` decided at ``at``: a Dataset
    with one row per input row (:func:`escalation.arrow.output_schema`).
    Column types that cannot hold records are refused here, once."""
    require("ray", "escalation.ray")
    from escalation.arrow import check_schema
    from escalation.engine import check_now

    check_now(at)
    schema = ds.schema()
    arrow = getattr(schema, "base_schema", schema)
    if arrow is not None and hasattr(arrow, "names"):
        check_schema(arrow, json_column=json_column)
    candidate = _policy(policy)
    base = _policy(baseline) if baseline is not None else None
    run = _Decide(candidate.to_bundle(), base.to_bundle() if base else None, at, reasons, json_column, source)
    return ds.map_batches(run, batch_format="pyarrow", batch_size=batch_size, zero_copy_batch=True)


def _label(status: Any, action: Any) -> str:
    return str(action) if status == "act" else f"({status})"


def _cells(batch: Any) -> Any:
    """Partial transition cells of one block (exact decimal sums as text)."""
    import pyarrow as pa

    cells: dict[tuple[str, str], list[Any]] = {}
    columns = batch.select(
        ["baseline_status", "baseline_action", "status", "action", "balance", "error_code"]
    )
    for row in columns.to_pylist():
        if row["error_code"] is not None:
            continue
        key = (_label(row["baseline_status"], row["baseline_action"]), _label(row["status"], row["action"]))
        cell = cells.setdefault(key, [0, Decimal(0)])
        cell[0] += 1
        cell[1] += row["balance"]
    return pa.table(
        {
            "baseline": [k[0] for k in cells],
            "candidate": [k[1] for k in cells],
            "accounts": pa.array([v[0] for v in cells.values()], pa.int64()),
            "balance": [str(v[1]) for v in cells.values()],
        }
    )


@dataclass(frozen=True)
class RayDryRun:
    """A dry-run's Datasets (``outcomes`` is materialised, so the others do
    not decide the book again); ``transitions`` is summed exactly on the
    driver from per-block cells (``balance`` as ``decimal128(38, 4)``)."""

    outcomes: Any
    decisions: Any
    baseline: Any
    errors: Any
    transitions: Any

    def counts(self) -> dict[str, int]:
        """``accounts`` (rows in), ``decided`` and ``errors``."""
        accounts = int(self.outcomes.count())
        errors = int(self.errors.count())
        return {"accounts": accounts, "decided": accounts - errors, "errors": errors}


def _sum_cells(parts: Iterable[dict[str, Any]]) -> Any:
    import pyarrow as pa

    total: dict[tuple[str, str], list[Any]] = {}
    for part in parts:
        cell = total.setdefault((part["baseline"], part["candidate"]), [0, Decimal(0)])
        cell[0] += part["accounts"]
        cell[1] += Decimal(part["balance"])
    keys = sorted(total)
    return pa.table(
        {
            "baseline": [k[0] for k in keys],
            "candidate": [k[1] for k in keys],
            "accounts": pa.array([total[k][0] for k in keys], pa.int64()),
            "balance": pa.array([total[k][1] for k in keys], pa.decimal128(38, 4)),
        }
    )


def dry_run(
    ds: Any,
    policy: str | Path | Policy,
    *,
    baseline: str | Path | Policy,
    at: dt.datetime,
    reasons: Reasons = "changed",
    json_column: str | None = None,
    source: str = "<ray>",
    batch_size: int = BATCH,
) -> RayDryRun:
    """A dry-run of ``policy`` beside ``baseline`` over ``ds`` at ``at``: the
    same per-account decisions, error rows and transition cells as
    :func:`escalation.dry_run` on the same records."""
    import ray

    out = decide(
        ds, policy, at=at, baseline=baseline, reasons=reasons, json_column=json_column,
        source=source, batch_size=batch_size,
    ).materialize()  # fmt: skip
    ok = out.filter(lambda r: r["error_code"] is None)
    decisions = ok.select_columns(["account_id", *_DECISION])
    base = ok.select_columns(["account_id", *(f"baseline_{n}" for n in _DECISION)]).rename_columns(
        {f"baseline_{n}": n for n in _DECISION}
    )
    errors = (
        out.filter(lambda r: r["error_code"] is not None)
        .select_columns(["account_id", "source", "row", "error_field", "error_code", "error_message"])
        .rename_columns({"error_field": "field", "error_code": "code", "error_message": "message"})
    )
    parts = out.map_batches(_cells, batch_format="pyarrow", zero_copy_batch=True).take_all()
    transitions = ray.data.from_arrow(_sum_cells(parts))
    return RayDryRun(out, decisions, base, errors, transitions)
