"""The simulation's files: ``summary.json`` (totals, differences, weekly
figures, rolls, segments, arms, conservation), ``daily.parquet`` (one row per
policy, run and day), ``actions.parquet`` (per policy, run, day, tier and
channel), ``errors.jsonl`` and ``report.html``. Deterministic: the same
result gives byte-identical files."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escalation.simulate._loop import SCALARS
from escalation.simulate._summary import FLOWS, MONEY, RunSummary

if TYPE_CHECKING:
    from escalation.simulate.run import SimulationResult

__all__ = ["money", "summary_json", "weekly", "write_outputs"]

_METRICS = (*FLOWS, "active", "balance_end", "arrears_end", "net")


def money(value: float, exponent: int) -> str:
    """Minor units (a mean may be fractional) as an amount, to the minor unit."""
    return str(Decimal(round(value)).scaleb(-exponent))


def _value(metric: str, value: float, exponent: int) -> Any:
    if metric in MONEY:
        return money(value, exponent)
    return round(value, 4) if isinstance(value, float) and not value.is_integer() else int(value)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def weekly(runs: list[RunSummary], dates: list[str]) -> list[dict[str, Any]]:
    """Flows per week (7 days from the first day), means over runs, money in minor units."""
    out = []
    for start in range(0, len(dates), 7):
        end = min(start + 7, len(dates))
        row: dict[str, Any] = {"week": start // 7 + 1, "from": dates[start], "to": dates[end - 1]}
        for metric in FLOWS:
            row[metric] = _mean([sum(r.daily[d][metric] for d in range(start, end)) for r in runs])
        actions: dict[str, float] = {}
        for r in runs:
            for key, per_day in r.actions.items():
                actions[key] = actions.get(key, 0.0) + sum(per_day[start:end]) / len(runs)
        row["by_action"] = dict(sorted(actions.items()))
        out.append(row)
    return out


def _merged(runs: list[RunSummary], name: str) -> dict[str, Any]:
    """A nested count table (rolls, segments, arms, holds, blocks), mean over runs."""
    out: dict[str, Any] = {}
    for r in runs:
        table = getattr(r, name)
        for key, value in table.items():
            if isinstance(value, dict):
                row = out.setdefault(key, {})
                for k, v in value.items():
                    row[k] = row.get(k, 0) + v / len(runs)
            else:
                out[key] = out.get(key, 0) + value / len(runs)
    return {k: (dict(sorted(v.items())) if isinstance(v, dict) else v) for k, v in sorted(out.items())}


def _money_rows(table: dict[str, Any], exponent: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, row in table.items():
        out[key] = {k: (money(v, exponent) if k in MONEY else _value(k, v, exponent)) for k, v in row.items()}
    return out


def summary_json(result: SimulationResult) -> dict[str, Any]:
    """Everything the report shows, as JSON data (money as decimal strings)."""
    e = result.exponent
    policies = {"candidate": result.candidate}
    if result.baseline is not None:
        policies["baseline"] = result.baseline
    first = result.runs["candidate"][0]
    doc: dict[str, Any] = {
        "simulation": {
            "start": result.start.isoformat(),
            "days": result.days,
            "runs": len(result.runs["candidate"]),
            "seed": result.seed,
            "backend": result.backend,
            "currency": result.currency,
            "model": {"id": result.model.model.id, "path": result.model_path},
            "accounts": first.end["accounts"],
            "error_rows": len(result.errors),
            "arms": {"share": result.arms.share, "salt": result.arms.salt} if result.arms else None,
        },
        "policies": {
            k: {"id": p.id, "version": p.version, "fingerprint": p.fingerprint} for k, p in policies.items()
        },
        "totals": {},
        "difference": {},
        "weekly": {},
        "actions": {},
        "holds": {},
        "guard_blocks": {},
        "rolls": {},
        "segments": {},
        "arms": {},
        "conservation": {},
    }
    for label, runs in result.runs.items():
        doc["totals"][label] = {m: _value(m, result.mean(label, m), e) for m in _METRICS}
        weeks = weekly(runs, result.dates)
        doc["weekly"][label] = [
            {k: (_value(k, v, e) if k in _METRICS else v) for k, v in w.items()} for w in weeks
        ]
        counts: dict[str, dict[str, Any]] = {}
        for key in sorted({k for r in runs for k in r.actions}):
            count = _mean([sum(r.actions.get(key, [])) for r in runs])
            cost = _mean([r.action_cost.get(key, 0) for r in runs])
            counts[key] = {"count": _value("count", count, e), "cost": money(cost, e)}
        doc["actions"][label] = counts
        doc["holds"][label] = {k: _value(k, v, e) for k, v in _merged(runs, "holds").items()}
        doc["guard_blocks"][label] = {k: _value(k, v, e) for k, v in _merged(runs, "blocks").items()}
        doc["rolls"][label] = _money_rows(_merged(runs, "rolls"), e)
        doc["segments"][label] = _money_rows(_merged(runs, "segments"), e)
        doc["arms"][label] = _money_rows(_merged(runs, "arms"), e)
        doc["conservation"][label] = [
            {**{k: money(v, e) for k, v in r.balance.items()}, **r.end} for r in runs
        ]
    if result.baseline is not None:
        for metric in _METRICS:
            diff = result.difference(metric)
            assert diff is not None
            doc["difference"][metric] = {
                k: (None if diff[k] is None else _value(metric, float(diff[k]), e))
                for k in ("mean", "low", "high")
            }
    return doc


def write_outputs(result: SimulationResult, folder: Path) -> SimulationResult:
    """Write every file into ``folder``; the result with their paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from escalation.simulate.report import write_report

    folder.mkdir(parents=True, exist_ok=True)
    e = result.exponent
    daily: dict[str, list[Any]] = {k: [] for k in ("policy", "run", "day", "date", *SCALARS)}
    actions: dict[str, list[Any]] = {
        k: [] for k in ("policy", "run", "day", "date", "action", "channel", "count")
    }
    for label, runs in result.runs.items():
        for run, summary in enumerate(runs):
            for day, row in enumerate(summary.daily):
                for k, v in (("policy", label), ("run", run), ("day", day), ("date", result.dates[day])):
                    daily[k].append(v)
                for metric in SCALARS:
                    daily[metric].append(Decimal(row[metric]).scaleb(-e) if metric in MONEY else row[metric])
            for key in sorted(summary.actions):
                tier, channel = key.split("/", 1)
                for day, count in enumerate(summary.actions[key]):
                    if count:
                        for k, v in (
                            ("policy", label),
                            ("run", run),
                            ("day", day),
                            ("date", result.dates[day]),
                            ("action", tier),
                            ("channel", channel),
                            ("count", count),
                        ):
                            actions[k].append(v)
    money_type = pa.decimal128(24, e)
    schema = pa.schema(
        [("policy", pa.string()), ("run", pa.int32()), ("day", pa.int32()), ("date", pa.string())]
        + [(m, money_type if m in MONEY else pa.int64()) for m in SCALARS]
    )
    files = {
        "summary": folder / "summary.json",
        "daily": folder / "daily.parquet",
        "actions": folder / "actions.parquet",
        "errors": folder / "errors.jsonl",
        "report": folder / "report.html",
    }
    pq.write_table(pa.Table.from_pydict(daily, schema=schema), files["daily"])
    action_schema = pa.schema(
        [
            ("policy", pa.string()),
            ("run", pa.int32()),
            ("day", pa.int32()),
            ("date", pa.string()),
            ("action", pa.string()),
            ("channel", pa.string()),
            ("count", pa.int64()),
        ]
    )
    pq.write_table(pa.Table.from_pydict(actions, schema=action_schema), files["actions"])
    with files["errors"].open("w", encoding="utf-8") as handle:
        for error in result.errors:
            handle.write(error.model_dump_json() + "\n")
    result = replace(result, files={k: str(v) for k, v in files.items()})
    doc = summary_json(result)
    files["summary"].write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report(result, doc, files["report"])
    return result
