"""Deciding Arrow record batches: the batch API under the Spark and Ray
adapters (and any engine that hands out Arrow batches).

:func:`decide_batches` takes record batches of account records and yields,
per input batch, one output batch with **one row per input row**: the
decision (and the baseline's), or the row's error. Rows are typed into the
columnar layout and decided by
:func:`decide_result` — the very step the dry-run's columnar path decides
with (:func:`~escalation.backends.columnar.decide_table`'s Arrow decision
tables; rows it does not vectorise go to the reference engine one by one) — so
the output equals a local dry-run's row for row.

Two input shapes:

* **record columns** (the default): each column is a record field
  (``id``, ``currency``, ``balance``, ``history`` as a list of structs, …).
  A null is an absent field. Money must be ``decimal`` (or text), instants
  timestamps *with* a time zone (or ISO text with an offset), dates ``date32``
  (or ISO text). A column of another type is refused once, for the whole
  input, with the cast to use — never one error row per account.
* **JSON text** (``json_column="record"``): one record per row as JSON text,
  read exactly as a JSONL line is (a malformed one is an error row).

A ``row`` column (``row_column``), when present, numbers the rows in the
output and in error rows; otherwise rows are numbered from ``first_row``
(``None``: left null, for inputs whose order means nothing).

Needs the ``[portfolio]`` extra (pyarrow, numpy)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from escalation._extras import require

require("portfolio", "escalation.arrow")

import pyarrow as pa  # noqa: E402 - after the extra check: a missing extra is one clear line

from escalation.engine import check_now  # noqa: E402
from escalation.errors import EvaluationError, UsageError  # noqa: E402
from escalation.policy import Policy, load_policy  # noqa: E402

__all__ = [
    "DECISION_COLUMNS",
    "MONEY_FIELDS",
    "check_schema",
    "decide_batches",
    "decide_result",
    "decide_typed",
    "output_batch",
    "output_schema",
]

Reasons = Literal["all", "changed", "none"]
#: A RecordBatch, a Table, a RecordBatchReader or an iterable of RecordBatches.
Batches = Any

#: Record fields holding money, at any depth (``history[].amount`` too).
MONEY_FIELDS = frozenset({"amount", "amount_overdue", "balance", "principal"})
_TEXT = pa.string()
#: A decision's columns, as in ``decisions.jsonl`` (the baseline's are prefixed ``baseline_``).
DECISION_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("status", _TEXT),
    ("action", _TEXT),
    ("channel", _TEXT),
    ("severity", pa.int32()),
    ("reason", _TEXT),
    ("next_eligible_at", _TEXT),
    ("hold", _TEXT),
    ("blocked_guards", pa.list_(_TEXT)),
    ("policy_fingerprint", _TEXT),
)
_HEAD = (
    ("row", pa.int64()),
    ("source", _TEXT),
    ("account_id", _TEXT),
    ("balance", pa.decimal128(38, 4)),
    ("days_overdue", pa.int32()),
)
_ERROR = (("error_code", _TEXT), ("error_field", _TEXT), ("error_message", _TEXT))


def output_schema(baseline: bool) -> pa.Schema:
    """The schema of :func:`decide_batches`' output: ``row``, ``source``,
    ``account_id``, ``balance`` (0 on error rows), ``days_overdue``, the
    decision's columns, the baseline's (``baseline_status``, … when
    ``baseline``) and ``error_code``/``error_field``/``error_message`` (null
    unless the row is an error row)."""
    fields = [*_HEAD, *DECISION_COLUMNS]
    if baseline:
        fields += [(f"baseline_{name}", kind) for name, kind in DECISION_COLUMNS]
    return pa.schema([*fields, *_ERROR])


# ----------------------------------------------------------------- input types


def _bad_type(path: str, kind: pa.DataType) -> str | None:
    leaf = path.rsplit(".", 1)[-1].removesuffix("[]")
    if pa.types.is_floating(kind) and leaf in MONEY_FIELDS:
        return (
            f"column `{path}` is {kind}: binary floating point cannot hold money exactly "
            f"(0.1 + 0.2 ≠ 0.3), so amounts become error rows; cast it to DECIMAL(38, 4) "
            f"(Spark: `col('{path.split('.')[0]}').cast('decimal(38,4)')`, pyarrow: `pa.decimal128(38, 4)`) "
            f"or to text, rounding to the currency's minor unit first"
        )
    if pa.types.is_timestamp(kind) and kind.tz is None:
        return (
            f"column `{path}` is a timestamp without a time zone (Spark TIMESTAMP_NTZ): an instant "
            f"needs one; cast it to a zoned timestamp (Spark: TIMESTAMP, i.e. "
            f"`to_utc_timestamp(col, '<the zone it was written in>')`; "
            f"pyarrow: `pa.timestamp('us', tz='UTC')`) "
            f"or to ISO text with an offset"
        )
    if pa.types.is_time(kind) or pa.types.is_duration(kind) or pa.types.is_interval(kind):
        return f"column `{path}` is {kind}: give it as ISO text"
    return None


def _walk(path: str, kind: pa.DataType, out: list[str]) -> None:
    why = _bad_type(path, kind)
    if why is not None:
        out.append(why)
    if pa.types.is_struct(kind):
        for index in range(kind.num_fields):
            child = kind.field(index)
            _walk(f"{path}.{child.name}", child.type, out)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        _walk(f"{path}[]" if not path.endswith("[]") else path, kind.value_type, out)
    elif pa.types.is_map(kind):
        _walk(f"{path}.value", kind.item_type, out)


def check_schema(schema: pa.Schema, *, json_column: str | None = None, row_column: str = "row") -> None:
    """Refuse, once, an input whose columns cannot hold records exactly:
    float money, zone-less timestamps (each message names the column and the
    cast to use). Raises :class:`~escalation.errors.UsageError`."""
    if json_column is not None:
        if json_column not in schema.names:
            raise UsageError(f"no column `{json_column}` holding the records' JSON (columns: {schema.names})")
        kind = schema.field(json_column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)):
            raise UsageError(f"column `{json_column}` is {kind}: the records' JSON must be text")
        return
    problems: list[str] = []
    for field in schema:
        if field.name != row_column:
            _walk(field.name, field.type, problems)
    if row_column in schema.names and not pa.types.is_integer(schema.field(row_column).type):
        problems.append(
            f"column `{row_column}` (row numbers) is {schema.field(row_column).type}: cast it to BIGINT"
        )
    if "id" not in schema.names:
        problems.append("no column `id`: every record needs its account id")
    if problems:
        raise UsageError(
            "the input's column types cannot hold account records exactly:\n  " + "\n  ".join(problems)
        )


def _plain(value: Any) -> Any:
    """An Arrow value (as Python) in the record format; a null is an absent field."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # an Arrow map
            return {str(k): _plain(v) for k, v in value if v is not None}
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _pairs(
    batch: pa.RecordBatch, json_column: str | None, row_column: str, first: int | None, source: str
) -> list[tuple[Any, Any]]:
    from escalation.portfolio.io import SourceRow

    n = batch.num_rows
    names = batch.schema.names
    given: list[Any] = batch.column(row_column).to_pylist() if row_column in names else [None] * n
    rows: list[Any] = [
        int(r) if r is not None else None if first is None else first + i for i, r in enumerate(given)
    ]
    if json_column is not None:
        out: list[tuple[Any, Any]] = []
        for row, text in zip(rows, batch.column(json_column).to_pylist(), strict=True):
            raw = text if isinstance(text, bytes) else (text or "").encode("utf-8")
            item = SourceRow(source, row, None, raw=raw).parsed()
            if item.error is not None or item.record is None:
                assert item.error is not None
                out.append((row, {"__error__": item.error.model_dump(mode="json")}))
            else:
                out.append((row, item.record))
        return out
    if row_column in names:
        batch = batch.drop_columns([row_column])
    return [(row, _plain(record)) for row, record in zip(rows, batch.to_pylist(), strict=True)]


# ----------------------------------------------------------------- deciding


def _policy(policy: str | Path | Policy) -> Policy:
    return policy if isinstance(policy, Policy) else load_policy(policy)


def _batches(batches: Batches) -> Iterator[pa.RecordBatch]:
    if isinstance(batches, pa.RecordBatch):
        yield batches
    elif isinstance(batches, pa.Table):
        yield from batches.to_batches()
    else:
        yield from batches


def decide_batches(
    batches: Batches,
    policy: str | Path | Policy,
    *,
    at: dt.datetime,
    baseline: str | Path | Policy | None = None,
    reasons: Reasons = "changed",
    json_column: str | None = None,
    row_column: str = "row",
    first_row: int | None = 1,
    source: str = "<arrow>",
) -> Iterator[pa.RecordBatch]:
    """Decide every row of ``batches`` at ``at`` under ``policy`` (and
    ``baseline``): one output batch (:func:`output_schema`) per non-empty
    input batch, one output row per input row, in input order.

    ``reasons`` as in :func:`escalation.dry_run`: ``changed`` renders reasons
    for rows whose decision differs from the baseline's, ``all`` for every
    row, ``none`` for none. Raises :class:`~escalation.errors.UsageError` for
    an input whose column types cannot hold records (see :func:`check_schema`);
    a bad record is an error row, never a stop."""
    from escalation.backends.columnar import ColumnarPolicy

    check_now(at)
    candidate = _policy(policy)
    policies = [ColumnarPolicy(candidate)]
    if baseline is not None:
        policies.append(ColumnarPolicy(_policy(baseline)))
    checked: pa.Schema | None = None
    first = first_row
    for batch in _batches(batches):
        if checked is None or not batch.schema.equals(checked):
            check_schema(batch.schema, json_column=json_column, row_column=row_column)
            checked = batch.schema
        if batch.num_rows == 0:
            continue
        pairs = _pairs(batch, json_column, row_column, first, source)
        first = first + batch.num_rows if first is not None else None
        yield _decide(pairs, policies, at, reasons, source)


def _decide(
    pairs: list[tuple[Any, Any]],
    policies: list[Any],
    at: dt.datetime,
    reasons: Reasons,
    source: str,
) -> pa.RecordBatch:
    from escalation.portfolio.arrow import to_batch

    return decide_typed(to_batch(pairs, source), policies, at=at, reasons=reasons)


def decide_typed(
    typed: Any,
    policies: list[Any],
    *,
    at: dt.datetime,
    reasons: Reasons = "changed",
    stats: dict[str, int] | None = None,
) -> pa.RecordBatch:
    """One :class:`~escalation.portfolio.arrow.TypedBatch` decided under
    ``policies`` (:class:`~escalation.backends.columnar.ColumnarPolicy`:
    the candidate, then the baseline) as one :func:`output_schema` batch: the
    step under :func:`decide_batches`, for callers that already hold the typed
    layout (a dry-run of a typed folder). ``stats`` as in :func:`decide_result`."""
    return output_batch(typed, decide_result(typed, policies, at=at, reasons=reasons, stats=stats))


def decide_result(
    typed: Any,
    policies: list[Any],
    *,
    at: dt.datetime,
    reasons: Reasons = "changed",
    stats: dict[str, int] | None = None,
) -> Any:
    """The one deciding step, shared by the dry-run's columnar path
    (:func:`escalation.portfolio._columnar_run.columnar_results`) and
    :func:`decide_typed`/:func:`decide_batches` (so the Spark and Ray
    adapters): :func:`~escalation.backends.columnar.decide_table` with Arrow
    decision tables (``dicts=False``), and, for a batch the vectorised path
    cannot take, every row decided by the reference engine
    (:func:`~escalation.backends.columnar._table.decide_reference`) — fail closed per
    account, never dropped or stopped. Returns the
    :class:`~escalation.backends.columnar.TableResult`; ``stats`` (when given)
    counts the rows ``vectorised``, decided by the reference engine
    (``fallback``) and explained for ``reasons``."""
    from escalation.backends.columnar import decide_table
    from escalation.backends.columnar._table import decide_reference

    try:
        result = decide_table(typed, policies, now=at, reasons=reasons, dicts=False)
    except UsageError:
        raise
    except (
        ArithmeticError,
        TypeError,
        ValueError,
        LookupError,
        AttributeError,
        NotImplementedError,
        EvaluationError,
    ):
        # an evaluation the reference engine refuses while explaining a changed
        # row (EvaluationError) too: each row then meets its own fate, one error row at most
        result = decide_reference(typed, policies, now=at, reasons=reasons)
    if stats is not None:
        stats["vectorised"] = stats.get("vectorised", 0) + result.vectorised
        stats["fallback"] = stats.get("fallback", 0) + result.fallback
        stats["reasons"] = stats.get("reasons", 0) + result.reasons_rendered
    return result


def _array(column: Any) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _balances(units: Any, minor: int) -> pa.Array:
    """Balances in minor units as ``decimal128(38, 4)``, built from the integers."""
    import numpy as np

    if minor > 4:
        unit = Decimal(1).scaleb(-minor)
        return pa.array([Decimal(int(u)) * unit for u in units.tolist()], pa.decimal128(38, 4))
    low = np.asarray(units, np.int64) * 10 ** (4 - minor)
    words = np.empty((len(low), 2), np.int64)
    words[:, 0], words[:, 1] = low, np.where(low < 0, -1, 0)  # two's complement, little-endian
    return pa.Array.from_buffers(pa.decimal128(38, 4), len(low), [None, pa.py_buffer(words.tobytes())])


def output_batch(typed: Any, result: Any) -> pa.RecordBatch:
    """A decided batch (:func:`decide_result`) as one :func:`output_schema`
    batch, column by column from its Arrow decision tables; only error rows
    are visited one by one."""
    import numpy as np

    n = len(typed)
    valid = result.decided
    ids = np.asarray(_array(result.tables[0].column("account_id")).to_numpy(zero_copy_only=False), object)
    errors = np.full((3, n), None, dtype=object)
    for i, err in enumerate(result.errors):
        if err is not None:
            ids[i] = err.account_id
            errors[:, i] = (err.code, err.field, err.message)
    columns = [
        _array(typed.accounts.column("row")).cast(pa.int64()),  # null where rows are not numbered
        pa.array(np.full(n, typed.source, dtype=object), _TEXT),
        pa.array(ids, _TEXT),
        _balances(np.where(valid, result.balance_units, 0), result.minor_units),
        pa.array(np.where(valid, result.days_overdue, 0).astype(np.int32), pa.int32()),
    ]
    for table in result.tables:
        columns += [_array(table.column(name)).cast(kind) for name, kind in DECISION_COLUMNS]
    columns += [pa.array(errors[k], _TEXT) for k in range(3)]
    return pa.RecordBatch.from_arrays(columns, schema=output_schema(len(result.tables) > 1))
