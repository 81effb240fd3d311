"""Shared by the scale-out tests (Arrow batches, Spark, Ray): a generated
portfolio with corrupted rows, a changed candidate policy, and the local
dry-run's per-account results to compare against."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from escalation.portfolio.generate import generate

ROOT = Path(__file__).resolve().parent.parent
CN_POLICY = ROOT / "policies" / "consumer-credit-cn.yaml"
AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DECISION_KEYS = (
    "status", "action", "channel", "severity", "reason", "next_eligible_at", "hold",
    "blocked_guards", "policy_fingerprint",
)  # fmt: skip


def _corrupt(record: dict[str, Any], kind: int) -> str:
    """One corrupted line: a record the engine refuses, or a line that is no record."""
    bad = dict(record)
    if kind == 0:
        return json.dumps(bad)[:-7]  # truncated JSON
    if kind == 1:
        bad["currency"] = "USD"
    elif kind == 2:
        bad["balance"] = "12.345"  # more decimal places than CNY allows
    elif kind == 3:
        del bad["overdue_since"]
    elif kind == 4:
        bad["history"] = [{**e, "at": e["at"][:19]} for e in bad.get("history", [])] or "nope"  # no offset
    elif kind == 5:
        return "[1, 2, 3]"
    elif kind == 6:
        bad["amount_overdue"] = str(float(bad["balance"]) + 1)  # exceeds the balance
    else:
        bad["opt_out"] = ["pigeon"]
    return json.dumps(bad)


def write_portfolio(
    path: Path, accounts: int, *, every: int = 50, seed: int = 11
) -> list[tuple[int, dict[str, Any]]]:
    """``accounts`` generated CN accounts as JSONL, one in ``every`` corrupted
    (eight kinds at random). Returns the uncorrupted lines' (row, record)."""
    rng = random.Random(seed)
    clean: list[tuple[int, dict[str, Any]]] = []
    lines: list[str] = []
    for index, record in enumerate(generate(accounts, seed=seed, profile="cn-card", at=AT)):
        if index % every == every - 1:
            lines.append(_corrupt(record, rng.randrange(8)))
        else:
            clean.append((index + 1, record))
            lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return clean


def candidate_policy(folder: Path) -> Path:
    """The CN policy with its first tier starting a day later (a real change)."""
    text = CN_POLICY.read_text(encoding="utf-8")
    changed = text.replace("days_overdue >= 1", "days_overdue >= 2", 1)
    assert changed != text
    path = folder / "candidate.yaml"
    path.write_text(changed, encoding="utf-8")
    return path


def local_results(out: Path) -> tuple[dict[str, Any], dict[str, Any], dict[int, Any]]:
    """A local dry-run's output folder as (candidate by account id, baseline by
    account id, error rows by row number)."""
    decisions = {r["account_id"]: r for r in _jsonl(out / "decisions.jsonl")}
    baseline_file = out / "baseline.jsonl"
    baseline = {r["account_id"]: r for r in _jsonl(baseline_file)} if baseline_file.exists() else {}
    errors = {r["row"]: r for r in _jsonl(out / "errors.jsonl")}
    return decisions, baseline, errors


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def split_rows(
    rows: list[dict[str, Any]], baseline: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[int, Any]]:
    """Output rows of :func:`escalation.arrow.decide_batches` (as dicts) in the
    same shape as :func:`local_results`."""
    decisions: dict[str, Any] = {}
    base: dict[str, Any] = {}
    errors: dict[int, Any] = {}
    for row in rows:
        if row["error_code"] is not None:
            errors[row["row"]] = {
                "account_id": row["account_id"], "row": row["row"], "field": row["error_field"],
                "code": row["error_code"], "message": row["error_message"],
            }  # fmt: skip
            continue
        decisions[row["account_id"]] = {"account_id": row["account_id"], **{k: row[k] for k in DECISION_KEYS}}
        if baseline:
            base[row["account_id"]] = {
                "account_id": row["account_id"],
                **{k: row[f"baseline_{k}"] for k in DECISION_KEYS},
            }
    return decisions, base, errors


def comparable_errors(errors: dict[int, Any]) -> dict[int, Any]:
    """Error rows without their ``source`` (the file name differs by design);
    for invalid JSON, without the parser's position (a JSONL line is read with
    its newline, a table cell without)."""
    out = {}
    for row, error in errors.items():
        error = {k: v for k, v in error.items() if k != "source"}
        if error["code"] == "invalid-json":
            error["message"] = error["message"].split(":")[0]
        out[row] = error
    return out


def typed_table(records: list[dict[str, Any]]) -> Any:
    """Records as an Arrow table of typed record columns (money DECIMAL(38, 4),
    instants zoned timestamps, dates DATE), as a lender's warehouse holds them."""
    import pyarrow as pa

    text, money, when = pa.string(), pa.decimal128(38, 4), pa.timestamp("us", tz="UTC")
    event = pa.struct(
        [("at", when), ("action", text), ("channel", text), ("outcome", text), ("address", text)]
    )
    schema = pa.schema(
        [
            ("row", pa.int64()), ("id", text), ("currency", text), ("amount_overdue", money),
            ("balance", money), ("overdue_since", pa.date32()), ("timezone", text),
            ("timezones", pa.list_(text)), ("history", pa.list_(event)), ("flags", pa.list_(text)),
            ("opt_out", pa.list_(text)),
            ("promise_to_pay", pa.struct([("amount", money), ("due_date", pa.date32()), ("made_at", when)])),
            ("payment_plan", pa.struct([("status", text), ("next_due_date", pa.date32())])),
            ("last_payment_at", pa.date32()),
        ]
    )  # fmt: skip

    def typed(name: str, value: Any) -> Any:
        if value is None:
            return None
        if name in {"amount_overdue", "balance", "amount"}:
            return Decimal(value)
        if name in {"at", "made_at"}:
            return dt.datetime.fromisoformat(value)
        if name in {"overdue_since", "due_date", "next_due_date", "last_payment_at"}:
            return dt.date.fromisoformat(value)
        if isinstance(value, dict):
            return {k: typed(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(name, v) for v in value]
        return value

    rows = [{"row": number, **typed("", record)} for number, record in records]
    return pa.Table.from_pylist(rows, schema=schema)
