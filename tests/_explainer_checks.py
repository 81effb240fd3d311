"""Shared by the tests of the columnar dry-run's reasons (``test_reasons_changed``,
``test_share_reasons``): a record's output rows from the reference engine and
from the explainer, or the error each raises, so the two compare as values."""

from __future__ import annotations

import datetime as dt
from typing import Any

from escalation import Engine
from escalation.backends.columnar._explain import Explainer
from escalation.errors import EscalationError
from escalation.portfolio.writer import decision_row

NOW = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")


def reference_rows(engines: list[Engine], record: object) -> list[dict[str, Any]] | str:
    """Each engine's output row for ``record`` at :data:`NOW`, or the error raised."""
    try:
        return [decision_row(e.decide(record, now=NOW, trace=False)) for e in engines]  # type: ignore[arg-type]
    except EscalationError as exc:
        return f"{type(exc).__name__}: {exc}"


def explained_rows(explainer: Explainer, record: object) -> list[dict[str, Any]] | str:
    """The explainer's output rows for ``record``, or the error raised."""
    try:
        return explainer.rows(record)
    except EscalationError as exc:
        return f"{type(exc).__name__}: {exc}"
