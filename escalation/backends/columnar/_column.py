"""One fact over a batch of accounts (a leaf module: :mod:`._facts` and its helpers share it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Column"]


@dataclass
class Column:
    """A fact over the batch: values and where they are known."""

    kind: (
        str  # "num" (int64), "money" (int64, 1/10,000), "str" (object), "bool", "set" (object of frozensets)
    )
    values: np.ndarray
    known: np.ndarray
