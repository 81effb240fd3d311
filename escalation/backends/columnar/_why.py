"""Why a row goes to the reference engine: one small code per row (the first
reason found wins), counted per reason in :class:`~._table.TableResult`.

Marking costs two boolean passes over the batch, so every check that sends
rows to the reference engine names itself without slowing the common path."""

from __future__ import annotations

import numpy as np

__all__ = ["REASONS", "Why", "count"]

#: Every reason a row can be decided by the reference engine (code = index + 1).
REASONS = (
    "raw record",  # could not be typed (a record error, offers made, a placement, …)
    "fields in rest",  # record fields without a typed column (notices, attributes, …)
    "time zone",  # a zone the columns do not know
    "days overdue",  # inconsistent or missing overdue dates
    "currency",  # not the policy's currency
    "unknown flag",
    "date after now",  # a record date (validation notice, last payment) after `now`
    "event shape",  # channel/outcome unknown, misdirected, consent window, outbound without channel
    "event after now",
    "promise",  # the record's promise cannot be judged over columns
    "money overflow",
    "limitation interrupted",  # barred without interruptions: may not be barred with them
    "guard",  # a guard check was unsure (parameters or a kind not vectorised)
    "offer action",  # the acting tier makes an offer: status `offer` comes from the reference engine
    "policy not covered",
    "reasons asked",  # reasons="all": every row through the reference engine
    "batch not vectorised",  # the vectorised path raised: the whole batch by the reference engine
)
_CODE = {name: code for code, name in enumerate(REASONS, start=1)}


class Why:
    """The rows marked for the reference engine (``mask``) and why (``code``)."""

    __slots__ = ("code", "mask")

    def __init__(self, n: int) -> None:
        self.mask = np.zeros(n, bool)
        self.code = np.zeros(n, np.int8)

    def mark(self, reason: str, rows: np.ndarray) -> None:
        """Mark ``rows`` (a boolean mask, or row indices) for ``reason``."""
        if rows.dtype != bool:
            picked = np.zeros(len(self.mask), bool)
            picked[rows] = True
            rows = picked
        new = rows & ~self.mask
        if new.any():
            self.code[new] = _CODE[reason]
            self.mask |= new


def count(codes: np.ndarray, rows: np.ndarray) -> dict[str, int]:
    """Rows per reason among ``rows`` (indices), reasons in :data:`REASONS` order."""
    tally = np.bincount(codes[rows], minlength=len(REASONS) + 1)
    return {REASONS[c - 1]: int(tally[c]) for c in range(1, len(REASONS) + 1) if tally[c]}
