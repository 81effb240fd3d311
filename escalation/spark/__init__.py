"""Decisions and dry-runs on Spark: the same decisions as the local engine,
where a lender's book already lives (Databricks, EMR, a Spark cluster).

Each partition is decided by :func:`escalation.arrow.decide_batches` inside
``mapInArrow`` (the policy travels as its bundle, rebuilt once per executor
process): one output row per input row, decisions or error rows, equal to a
local dry-run's. Input DataFrames hold either record columns (``id``,
``balance`` as ``DECIMAL``, ``history`` as ``ARRAY<STRUCT<at: TIMESTAMP, …>>``,
…; see :data:`RECORD_DDL`) or one record per row as JSON text
(``json_column``). Column types that cannot hold a record exactly (``DOUBLE``
money, ``TIMESTAMP_NTZ`` instants) are refused on the driver, once, with the
cast to use.

Needs the ``[spark]`` extra (``pip install 'escalation[spark]'``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from escalation._extras import require
from escalation.spark._session import local_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from escalation.policy import Policy

__all__ = ["RECORD_DDL", "SparkDryRun", "decide", "dry_run", "local_session"]

Reasons = Literal["all", "changed", "none"]

#: The account record as Spark column types (a schema for ``spark.read.json``
#: and the shape of a table to decide): money ``DECIMAL(38,4)``, instants
#: ``TIMESTAMP``, dates ``DATE``. Fields a book does not use may be left out;
#: fields not listed here (``attributes``, notices, …) may be added as columns
#: of the record format's shape.
RECORD_DDL = (
    "id STRING, currency STRING, amount_overdue DECIMAL(38,4), balance DECIMAL(38,4), "
    "days_overdue INT, overdue_since DATE, due_date DATE, timezone STRING, timezones ARRAY<STRING>, "
    "jurisdiction STRING, product STRING, segment STRING, "
    "history ARRAY<STRUCT<at: TIMESTAMP, action: STRING, channel: STRING, outcome: STRING, "
    "direction: STRING, address: STRING, amount: DECIMAL(38,4)>>, "
    "flags ARRAY<STRING>, opt_out ARRAY<STRING>, "
    "promise_to_pay STRUCT<amount: DECIMAL(38,4), due_date: DATE, made_at: TIMESTAMP>, "
    "payment_plan STRUCT<status: STRING, next_due_date: DATE>, last_payment_at DATE, "
    "actor_type STRING, validation_notice_sent_at TIMESTAMP"
)
_DECISION = (
    "status", "action", "channel", "severity", "reason", "next_eligible_at", "hold",
    "blocked_guards", "policy_fingerprint",
)  # fmt: skip


def _policy(policy: str | Path | Policy) -> Policy:
    from escalation.policy import Policy, load_policy

    return policy if isinstance(policy, Policy) else load_policy(policy)


def _mapper(
    bundle: bytes, baseline: bytes | None, at: dt.datetime, reasons: str, json_column: str | None, source: str
) -> Any:
    def run(batches: Any) -> Any:
        from escalation.arrow import decide_batches
        from escalation.policy.bundle import load_policy_bundle

        yield from decide_batches(
            batches,
            load_policy_bundle(bundle),
            at=at,
            baseline=load_policy_bundle(baseline) if baseline is not None else None,
            reasons=reasons,  # type: ignore[arg-type]
            json_column=json_column,
            source=source,
        )

    return run


def decide(
    df: DataFrame,
    policy: str | Path | Policy,
    *,
    at: dt.datetime,
    baseline: str | Path | Policy | None = None,
    reasons: Reasons = "none",
    json_column: str | None = None,
    source: str = "<spark>",
) -> DataFrame:
    """Every row of ``df`` decided at ``at``: a DataFrame with one row per
    input row (columns of :func:`escalation.arrow.output_schema`: ``row``,
    ``account_id``, ``balance``, ``days_overdue``, the decision, the
    baseline's ``baseline_*`` with ``baseline``, ``error_*`` on error rows).

    ``row``: the input's ``row`` column when it has one (line numbers, a
    sequence), else a unique id from ``monotonically_increasing_id() + 1``.
    ``reasons``: ``none`` (the default: a reason is rendered by the reference
    engine, one account at a time), ``changed`` (rows whose decision differs
    from the baseline's) or ``all``. Lazy, like every DataFrame."""
    require("spark", "escalation.spark")
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    from escalation.arrow import check_schema, output_schema
    from escalation.engine import check_now

    check_now(at)
    check_schema(to_arrow_schema(df.schema, timezone="UTC"), json_column=json_column)  # once, on the driver
    if "row" not in df.columns:
        df = df.withColumn("row", F.monotonically_increasing_id() + 1)
    candidate = _policy(policy)
    base = _policy(baseline) if baseline is not None else None
    run = _mapper(candidate.to_bundle(), base.to_bundle() if base else None, at, reasons, json_column, source)
    schema = from_arrow_schema(output_schema(base is not None), prefer_timestamp_ntz=False)
    return df.mapInArrow(run, schema)


def _label(prefix: str) -> Any:
    from pyspark.sql import functions as F

    status = F.col(f"{prefix}status")
    return F.when(status == "act", F.col(f"{prefix}action")).otherwise(
        F.concat(F.lit("("), status, F.lit(")"))
    )


@dataclass(frozen=True)
class SparkDryRun:
    """A dry-run's DataFrames. ``outcomes`` (one row per input row) is
    persisted, so the others do not decide the book again; call
    :meth:`unpersist` when done.

    * ``decisions``/``baseline``: the columns of ``decisions.jsonl``;
    * ``errors``: the columns of ``errors.jsonl`` (``row``, ``code``, …);
    * ``transitions``: ``baseline``, ``candidate`` (decision labels),
      ``accounts`` and ``balance`` (an exact ``DECIMAL(38,4)`` sum)."""

    outcomes: DataFrame
    decisions: DataFrame
    baseline: DataFrame
    errors: DataFrame
    transitions: DataFrame

    def counts(self) -> dict[str, int]:
        """``accounts`` (rows in), ``decided`` and ``errors``: accounts = decided + errors."""
        from pyspark.sql import functions as F

        row = self.outcomes.agg(
            F.count(F.lit(1)).alias("accounts"),
            F.count(F.when(F.col("error_code").isNull(), 1)).alias("decided"),
            F.count(F.when(F.col("error_code").isNotNull(), 1)).alias("errors"),
        ).first()
        assert row is not None
        return {
            "accounts": int(row["accounts"]),
            "decided": int(row["decided"]),
            "errors": int(row["errors"]),
        }

    def unpersist(self) -> None:
        """Release the persisted outcomes."""
        self.outcomes.unpersist()


def dry_run(
    df: DataFrame,
    policy: str | Path | Policy,
    *,
    baseline: str | Path | Policy,
    at: dt.datetime,
    reasons: Reasons = "changed",
    json_column: str | None = None,
    source: str = "<spark>",
) -> SparkDryRun:
    """A dry-run of ``policy`` beside ``baseline`` over ``df`` at ``at``: the
    same per-account decisions, error rows and transition cells as
    :func:`escalation.dry_run` on the same records."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    out = decide(
        df, policy, at=at, baseline=baseline, reasons=reasons, json_column=json_column, source=source
    )
    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    ok = out.where(F.col("error_code").isNull())
    decisions = ok.select("account_id", *_DECISION)
    base = ok.select("account_id", *(F.col(f"baseline_{name}").alias(name) for name in _DECISION))
    errors = out.where(F.col("error_code").isNotNull()).select(
        "account_id",
        "source",
        "row",
        F.col("error_field").alias("field"),
        F.col("error_code").alias("code"),
        F.col("error_message").alias("message"),
    )
    transitions = (
        ok.groupBy(_label("baseline_").alias("baseline"), _label("").alias("candidate"))
        .agg(F.count(F.lit(1)).alias("accounts"), F.sum("balance").cast("decimal(38,4)").alias("balance"))
        .orderBy("baseline", "candidate")
    )
    return SparkDryRun(out, decisions, base, errors, transitions)
