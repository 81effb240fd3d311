"""Decision rows of one batch as an Arrow table, built from the columnar
outcome arrays (no per-row Python for vectorised rows); rows the reference
engine decided are patched in from their decision rows. The label columns'
codes come along (:func:`decision_table`): the dry-run's fold reads
them instead of hashing those string columns again."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from escalation.backends.columnar._labels import NULL, arrow_strings
from escalation.backends.columnar._ladder import Outcome
from escalation.portfolio._coded import Codes
from escalation.portfolio.writer import decision_schema

__all__ = ["DECISION_SCHEMA", "decision_table"]

DECISION_SCHEMA = decision_schema()
_LABELS = ("status", "action", "channel", "next_eligible_at", "hold")


def _strings(
    n: int, out: Outcome | None, name: str, vectorised: np.ndarray, patches: dict[int, dict[str, Any]]
) -> tuple[pa.Array, Codes]:
    """Column ``name``: ``out``'s words where ``vectorised``, the patched rows' own, else
    null; and its codes (null: the code after the words')."""
    labels = getattr(out, name) if out is not None else None
    codes = np.where(vectorised, labels.codes, NULL) if labels is not None else np.full(n, NULL, np.int32)
    index = dict(labels.index) if labels is not None else {}
    for i, row in patches.items():
        word = row[name]
        codes[i] = NULL if word is None else index.setdefault(word, len(index))
    words = list(index)
    return arrow_strings(codes, words), Codes(np.where(codes < 0, len(words), codes), [*words, None])


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
    # (the ids taken from the few distinct ones by Arrow, not as a Python string each)
    values = pa.array(ordered, pa.string()).take(pa.array(g[order].astype(np.int32), pa.int32()))
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~valid))


# (fingerprint, rows) → the column of a batch without error rows: every full batch of a
# run has the same one (Arrow arrays are immutable, so one serves them all)
_FULL: dict[tuple[str, int], pa.Array] = {}


def _fingerprints(n: int, fingerprint: str, valid: np.ndarray) -> pa.Array:
    """The policy's fingerprint in every ``valid`` row, null elsewhere."""
    full = bool(valid.all())
    found = _FULL.get((fingerprint, n)) if full else None
    if found is None:
        found = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32), mask=None if full else ~valid),
            pa.array([fingerprint], pa.string()),
        ).cast(pa.string())
        if full:
            if len(_FULL) > 64:  # (bounded: a run has one or two policies and batch sizes)
                _FULL.clear()
            _FULL[(fingerprint, n)] = found
    return found


def decision_table(
    n: int,
    ids: pa.Array,
    fingerprint: str,
    out: Outcome | None,
    vectorised: np.ndarray,
    patches: dict[int, dict[str, Any]],
    valid: np.ndarray,
) -> tuple[pa.Table, dict[str, Codes]]:
    """One policy's decision rows for a batch: ``out`` where ``vectorised``,
    ``patches[i]`` (a decision row) elsewhere; null rows where not ``valid`` (error
    rows: ``ids`` is null there already). With them, the codes of the columns
    status, action, channel, next_eligible_at, hold and policy_fingerprint (each
    what :func:`~escalation.portfolio._coded.codes_of` gives up to the numbering)."""
    severity = np.where(vectorised, out.severity, 0) if out is not None else np.zeros(n, np.int64)
    for i, row in patches.items():
        severity[i] = row["severity"] or 0
    # no reasons unless a patched row brings one: a column of nulls, not n Python Nones read
    reasons = [(i, row["reason"]) for i, row in patches.items() if row["reason"] is not None]
    if reasons:
        texts = np.full(n, None, dtype=object)
        for i, text in reasons:
            texts[i] = text
        reason = pa.array(texts, pa.string())
    else:
        reason = pa.nulls(n, pa.string())
    built = {name: _strings(n, out, name, vectorised, patches) for name in _LABELS}
    cols = {name: column for name, (column, _) in built.items()}
    codes = {name: coded for name, (_, coded) in built.items()}
    # (an error row's fingerprint is null: code 1)
    codes["policy_fingerprint"] = Codes((~valid).astype(np.int32), [fingerprint, None])
    arrays = [
        ids,
        *(cols[name] for name in ("status", "action", "channel")),
        pa.array(severity.astype(np.int16), pa.int16(), mask=(severity == 0) | ~valid),
        reason,
        *(cols[name] for name in ("next_eligible_at", "hold")),
        _blocked(n, out, vectorised, patches, valid),
        _fingerprints(n, fingerprint, valid),
    ]
    return pa.Table.from_arrays(arrays, schema=DECISION_SCHEMA), codes
