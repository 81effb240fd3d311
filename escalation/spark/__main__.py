"""``python -m escalation.spark`` (or ``spark-submit`` of this file): decide
or dry-run a book on Spark and write the results.

    spark-submit --master yarn -m escalation.spark \\
        --policy policies/candidate.yaml --baseline policies/current.yaml \\
        --input /data/book.parquet --at 2026-11-23T10:00:00+08:00 --out /data/dry-run

Input: ``--input`` a Parquet folder/file of record columns (``--format
parquet``, the default), a JSONL file of records (``--format jsonl``, each
line decided as the local reader decides it) or a table (``--format table``,
``--input catalog.schema.book``). Output: ``decisions``, ``baseline``,
``errors`` and ``transitions`` as Parquet folders under ``--out``, or as
tables ``<prefix>_decisions``, … with ``--table-prefix``. Prints the counts
(accounts = decided + errors) and the transition cells. Exit 0 on success,
2 for a usage error (bad types, bad arguments), 3 for an invalid policy."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from escalation.errors import MissingExtraError, PolicyError, UsageError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m escalation.spark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", required=True, help="the (candidate) policy file")
    parser.add_argument("--baseline", help="the current policy: a dry-run with transitions")
    parser.add_argument("--input", required=True, help="Parquet path, JSONL path or table name")
    parser.add_argument("--format", choices=("parquet", "jsonl", "table"), default="parquet")
    parser.add_argument("--at", required=True, help="the instant, ISO 8601 with an offset")
    parser.add_argument("--out", help="folder for the Parquet outputs")
    parser.add_argument("--table-prefix", help="write tables <prefix>_decisions, … instead")
    parser.add_argument("--reasons", choices=("changed", "all", "none"), default="changed")
    parser.add_argument("--local", type=int, metavar="CORES", help="run on a local[CORES] session")
    return parser


def _read(spark: Any, fmt: str, where: str) -> tuple[Any, str | None]:
    if fmt == "table":
        return spark.table(where), None
    if fmt == "jsonl":
        return spark.read.text(where).withColumnRenamed("value", "record"), "record"
    return spark.read.parquet(where), None


def _write(frame: Any, name: str, args: argparse.Namespace) -> None:
    if args.table_prefix:
        frame.write.mode("overwrite").saveAsTable(f"{args.table_prefix}_{name}")
    else:
        frame.write.mode("overwrite").parquet(f"{args.out.rstrip('/')}/{name}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.out and not args.table_prefix:
        print("error: give --out or --table-prefix", file=sys.stderr)
        return 2
    try:
        at = dt.datetime.fromisoformat(args.at)
        from escalation import spark as adapter

        if args.local:
            session = adapter.local_session(args.local)
        else:
            from pyspark.sql import SparkSession

            session = SparkSession.builder.appName("escalation").getOrCreate()
        df, json_column = _read(session, args.format, args.input)
        source = args.input
        if args.baseline is None:
            decided = adapter.decide(df, args.policy, at=at, reasons=args.reasons, json_column=json_column,
                                     source=source)  # fmt: skip
            _write(decided, "decisions", args)
            return 0
        result = adapter.dry_run(df, args.policy, baseline=args.baseline, at=at, reasons=args.reasons,
                                 json_column=json_column, source=source)  # fmt: skip
        for name in ("decisions", "baseline", "errors", "transitions"):
            _write(getattr(result, name), name, args)
        counts = result.counts()
        print(f"accounts {counts['accounts']} = decided {counts['decided']} + errors {counts['errors']}")
        for row in result.transitions.collect():
            print(f"{row['baseline']} -> {row['candidate']}: {row['accounts']} accounts, {row['balance']}")
        result.unpersist()
        return 0
    except (UsageError, MissingExtraError, ValueError) as exc:
        if isinstance(exc, PolicyError):
            print(str(exc), file=sys.stderr)
            return 3
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run() -> None:
    """The ``escalation-spark`` command."""
    sys.exit(main())


if __name__ == "__main__":
    run()
