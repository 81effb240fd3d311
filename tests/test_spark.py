"""escalation.spark on a local[2] session bound to 127.0.0.1: per-account
equality with the local dry-run on a corrupted 5,000-account book.

Marked ``spark``: the default run deselects them; ``pytest -m spark`` runs
them (CI does), and they skip when pyspark or Java is missing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.spark
pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - CI installs a JRE
    pytest.skip("Spark needs Java (apt-get install default-jre-headless)", allow_module_level=True)

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import escalation  # noqa: E402
from escalation import UsageError  # noqa: E402

from ._scaleout import (  # noqa: E402
    AT,
    CN_POLICY,
    DECISION_KEYS,
    ROOT,
    candidate_policy,
    comparable_errors,
    local_results,
    split_rows,
    write_portfolio,
)

ACCOUNTS = 5_000


@pytest.fixture(scope="module")
def spark() -> Any:
    from escalation.spark import local_session

    session = local_session(2, partition_bytes=512 << 10)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("spark-book")
    path = folder / "book.jsonl"
    clean = write_portfolio(path, ACCOUNTS, every=50)
    candidate = candidate_policy(folder)
    result = escalation.dry_run(candidate, path, at=AT, baseline=CN_POLICY, out=folder / "local")
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = folder / "lines.parquet"  # line numbers beside the text, as a lender's staging table would
    pq.write_table(
        pa.table({"row": range(1, len(lines) + 1), "record": lines}), numbered, row_group_size=1000
    )
    return {
        "folder": folder,
        "path": path,
        "numbered": numbered,
        "candidate": candidate,
        "clean": clean,
        "result": result,
        "local": local_results(folder / "local"),
    }


def test_dry_run_equals_the_local_dry_run_per_account(spark: Any, book: dict[str, Any]) -> None:
    from escalation.spark import dry_run

    df = spark.read.parquet(str(book["numbered"]))
    assert df.rdd.getNumPartitions() >= 2  # really spread over both cores
    result = dry_run(df, book["candidate"], baseline=CN_POLICY, at=AT, json_column="record")
    try:
        counts = result.counts()
        rows = [r.asDict(recursive=True) for r in result.outcomes.collect()]
        transitions = {
            (r["baseline"], r["candidate"]): (r["accounts"], r["balance"])
            for r in result.transitions.collect()
        }
        error_rows = {r["row"]: r.asDict() for r in result.errors.collect()}
        decisions = {r["account_id"]: r.asDict(recursive=True) for r in result.decisions.collect()}
    finally:
        result.unpersist()
    local = book["result"]
    assert counts == {"accounts": ACCOUNTS, "decided": local.decided, "errors": local.errors}
    assert local.errors >= 90  # the corrupted rows are there
    spark_decisions, spark_baseline, spark_errors = split_rows(rows, baseline=True)
    local_decisions, local_baseline, local_errors = book["local"]
    assert spark_decisions == local_decisions
    assert spark_baseline == local_baseline
    assert comparable_errors(spark_errors) == comparable_errors(local_errors)
    assert comparable_errors(error_rows) == comparable_errors(local_errors)
    assert decisions == local_decisions  # the `decisions` frame has exactly decisions.jsonl's columns
    assert transitions == {k: (t.accounts, t.balance) for k, t in local.transitions.items()}
    assert any(old != new for old, new in transitions)  # the candidate really changes something


def test_typed_columns_decide_like_the_local_engine(spark: Any, book: dict[str, Any]) -> None:
    from escalation.spark import RECORD_DDL, decide

    clean = book["folder"] / "clean.jsonl"
    lines = book["path"].read_text(encoding="utf-8").splitlines()
    clean.write_text("\n".join(lines[row - 1] for row, _ in book["clean"][:1500]) + "\n", encoding="utf-8")
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")  # decisions do not depend on it
    try:
        df = spark.read.schema(RECORD_DDL).json(str(clean))
        out = decide(df, book["candidate"], at=AT).collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    local = book["local"][0]
    keys = [k for k in DECISION_KEYS if k != "reason"]
    assert len(out) == 1500
    assert all(r["error_code"] is None for r in out), [r["error_message"] for r in out if r["error_code"]][:3]
    for row in out:
        assert {k: row[k] for k in keys} == {k: local[row["account_id"]][k] for k in keys}


def test_unusable_types_are_refused_on_the_driver(spark: Any) -> None:
    from escalation.spark import decide

    floats = spark.createDataFrame([("A-1", 10.5)], "id STRING, balance DOUBLE")
    with pytest.raises(UsageError, match=r"column `balance` is double.*decimal\(38,4\)"):
        decide(floats, CN_POLICY, at=AT)
    ntz = spark.sql("SELECT 'A-1' AS id, TIMESTAMP_NTZ '2026-11-20 10:00:00' AS validation_notice_sent_at")
    with pytest.raises(UsageError, match="TIMESTAMP_NTZ"):
        decide(ntz, CN_POLICY, at=AT)


def test_job_entry_point_writes_the_tables(spark: Any, book: dict[str, Any], capsys: Any) -> None:
    from escalation.spark.__main__ import main

    out = book["folder"] / "job"
    code = main(
        [
            "--policy", str(book["candidate"]), "--baseline", str(CN_POLICY), "--format", "jsonl",
            "--input", str(book["path"]), "--at", AT.isoformat(), "--out", str(out), "--local", "2",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    local = book["result"]
    assert f"accounts {ACCOUNTS} = decided {local.decided} + errors {local.errors}" in printed
    decisions = pq.read_table(out / "decisions")
    assert decisions.num_rows == local.decided
    assert pq.read_table(out / "errors").num_rows == local.errors
    cells = pq.read_table(out / "transitions").to_pylist()
    assert {(c["baseline"], c["candidate"]): c["accounts"] for c in cells} == {
        k: t.accounts for k, t in local.transitions.items()
    }


def test_job_refuses_a_bad_policy(spark: Any, book: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    from escalation.spark.__main__ import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("escalation: 1\npolicy: {}\n", encoding="utf-8")
    args = ["--policy", str(bad), "--input", str(book["path"]), "--format", "jsonl", "--at", AT.isoformat()]
    assert main([*args, "--out", str(tmp_path / "o"), "--local", "2"]) == 3
    assert "missing-key" in capsys.readouterr().err


def test_the_guides_local_commands_run_as_written(tmp_path: Path) -> None:
    """docs/spark.md's ```sh block under "Try it locally", then its ```python
    block, run as written in an empty folder."""
    import os
    import re
    import subprocess
    import sys

    text = (ROOT / "docs" / "spark.md").read_text(encoding="utf-8")
    section = text.split("## Try it locally", 1)[1].split("\n## ", 1)[0]
    shell = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    python = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert shell is not None and python is not None
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell.group(1)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "accounts 2000 = decided 2000 + errors 0" in ran.stdout
    assert re.search(r"^\(none\) -> \(none\): \d+ accounts, \d+\.\d{4}$", ran.stdout, re.MULTILINE)
    for name in ("decisions", "baseline", "errors", "transitions"):
        assert (tmp_path / "dry-run" / name).is_dir()
    ran = subprocess.run(
        [sys.executable, "-c", python.group(1)], cwd=tmp_path, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "{'accounts': 2000, 'decided': 2000, 'errors': 0}" in ran.stdout
