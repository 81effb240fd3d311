"""Decision rows of one batch as an Arrow table, built from the columnar
outcome arrays (no per-row Python for vectorised rows); rows the reference
engine decided are patched in from their decision rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from escalation.backends.columnar._ladder import Outcome
from escalation.portfolio.writer import decision_schema

__all__ = ["DECISION_SCHEMA", "decision_table"]

DECISION_SCHEMA = decision_schema()
_PATCHED = ("status", "action", "channel", "reason", "next_eligible_at", "hold")


def _blocked(n: int, out: Outcome | None, vectorised: np.ndarray, patches: dict[int, dict[str, Any]],
             valid: np.ndarray) -> pa.Array:  # fmt: skip
    """Each row's sorted guard ids as a list column (null where ``valid`` is false)."""
    names = set(out.blocked) if out is not None else set()
    for row in patches.values():
        names.update(row["blocked_guards"])
    ordered = sorted(names)
    index = {name: k for k, name in enumerate(ordered)}
    rows: list[np.ndarray] = [np.zeros(0, np.int64)]
    guards: list[np.ndarray] = [np.zeros(0, np.int64)]
    if out is not None:
        for name, mask in out.blocked.items():
            hit = np.flatnonzero(mask & vectorised)
            rows.append(hit)
            guards.append(np.full(len(hit), index[name], np.int64))
    extra = [(i, index[g]) for i, row in patches.items() for g in row["blocked_guards"]]
    if extra:
        pairs = np.asarray(extra, np.int64)
        rows.append(pairs[:, 0])
        guards.append(pairs[:, 1])
    r, g = np.concatenate(rows), np.concatenate(guards)
    order = np.lexsort((g, r))
    counts = np.bincount(r[order], minlength=n)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    values = pa.array(np.asarray(ordered, dtype=object)[g[order]] if len(ordered) else [], pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~valid))


def decision_table(
    n: int,
    ids: pa.Array,
    fingerprint: str,
    out: Outcome | None,
    vectorised: np.ndarray,
    patches: dict[int, dict[str, Any]],
    valid: np.ndarray,
) -> pa.Table:
    """One policy's decision rows for a batch: ``out`` where ``vectorised``,
    ``patches[i]`` (a decision row) elsewhere; null rows where not ``valid`` (error
    rows: ``ids`` is null there already)."""
    cols: dict[str, np.ndarray] = {}
    for name in _PATCHED:
        if out is not None and name != "reason":
            cols[name] = np.asarray(np.where(vectorised, getattr(out, name), None), dtype=object)
        else:
            cols[name] = np.full(n, None, dtype=object)
    severity = np.where(vectorised, out.severity, 0) if out is not None else np.zeros(n, np.int64)
    for i, row in patches.items():
        for name in _PATCHED:
            cols[name][i] = row[name]
        severity[i] = row["severity"] or 0
    # no reasons unless a patched row brings one: a column of nulls, not n Python Nones read
    reasons = any(row["reason"] is not None for row in patches.values())
    reason = pa.array(cols["reason"], pa.string()) if reasons else pa.nulls(n, pa.string())
    arrays = [
        ids,
        *(pa.array(cols[name], pa.string()) for name in ("status", "action", "channel")),
        pa.array(severity.astype(np.int16), pa.int16(), mask=(severity == 0) | ~valid),
        reason,
        *(pa.array(cols[name], pa.string()) for name in ("next_eligible_at", "hold")),
        _blocked(n, out, vectorised, patches, valid),
        pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32), mask=~valid), pa.array([fingerprint], pa.string())
        ).cast(pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=DECISION_SCHEMA)
