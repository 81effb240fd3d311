"""One fact over a batch of accounts (a leaf module: :mod:`._facts` and its helpers share it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    lists: Any = None  # "set": the Arrow list column, for membership without per-row Python
    members: dict[str, np.ndarray] = field(default_factory=dict)

    def member(self, item: object) -> np.ndarray:
        """Rows whose set holds ``item`` (kind "set")."""
        found = self.members.get(item) if isinstance(item, str) else None
        if found is None:
            if self.lists is None or not isinstance(item, str):
                found = np.fromiter((item in s for s in self.values), bool, len(self.values))
            else:
                import pyarrow.compute as pc

                flat = pc.list_flatten(self.lists)
                parents = np.asarray(pc.list_parent_indices(self.lists), dtype=np.int64)
                found = np.zeros(len(self.values), bool)
                found[parents[np.asarray(pc.equal(flat, item).fill_null(False), dtype=bool)]] = True
            if isinstance(item, str):
                self.members[item] = found
        return found
