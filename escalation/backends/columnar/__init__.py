"""The ``columnar`` evaluator: whole batches of accounts over Arrow/numpy
columns, for portfolio dry-runs.

:func:`decide_table` takes a :class:`~escalation.portfolio.arrow.TypedBatch`
(accounts and their events in the typed layout) and returns one output row per
input row. Facts are derived once per batch and shared by every policy with
the same tiers (candidate and baseline); holds, tiers and guards are
vectorised (see :mod:`._ladder`); each account the vectorised path does not
cover is decided by the reference engine (``native``), one by one, and counted.

Needs the ``[portfolio]`` extra (pyarrow, numpy)."""

from __future__ import annotations

from escalation.backends.columnar._table import (
    ColumnarPolicy,
    TableResult,
    choose_backend,
    covers,
    decide_table,
)

__all__ = ["ColumnarPolicy", "TableResult", "choose_backend", "covers", "decide_table"]
