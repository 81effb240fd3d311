"""The typed contact audit's view of an account's state: the facts its
holds and state guards read, taken from the typed columns (the same at every
contact of an account the screen takes: its record has no dated state in
``rest``), as :class:`~escalation.contacts._screen.FactsAt` knows them; any
other fact refers the account to the per-account path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation.contacts._screen import NeedsReference
from escalation.guards import BlockGuard, ConsentGuard, InconvenientGuard
from escalation.policy import GuardRule
from escalation.record import Channel

__all__ = ["Columns", "Facts", "array", "state_clean", "state_column"]

_NEEDS = object()  # a fact the screen cannot know: reading it refers the account
_ABSENT = object()  # a fact the record does not have: the condition's default
_STATIC = ("currency", "balance", "amount_overdue", "segment", "product", "jurisdiction", "actor_type")


class Facts:
    """The facts of an account's state, as the compiled conditions read them."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name, _NEEDS)
        if value is _NEEDS:
            if name.startswith("attributes."):
                return default  # the record has none (they would be in `rest`)
            raise NeedsReference(name)
        return default if value is _ABSENT else value


class Columns:
    """An accounts table's columns as Python lists, read on first use."""

    def __init__(self, accounts: pa.Table, dated: dict[str, np.ndarray]) -> None:
        self.accounts = accounts
        self.lists: dict[str, list[Any]] = {k: v.tolist() for k, v in dated.items()}

    def __getitem__(self, name: str) -> list[Any]:
        found = self.lists.get(name)
        if found is None:
            found = self.lists[name] = self.accounts[name].to_pylist()
        return found


_EMPTY: frozenset[str] = frozenset()


def state_column(name: str, c: Columns, n: int) -> list[Any]:
    """One fact of every account's state (the same at each of its contacts),
    read from the columns; ``_NEEDS`` where the screen cannot know it."""
    if name in ("flags", "opt_out"):
        return [frozenset(v) if v else _EMPTY for v in c[name]]
    if name in _STATIC:
        return [_ABSENT if v is None else v for v in c[name]]
    if name == "plan_active":
        return [v == "active" for v in c["plan_status"]]
    if name == "cease_received":
        return ["cease_communication" in v if v else False for v in c["flags"]]
    # each of these is read from one column: (column, value when null/false, value otherwise)
    one: dict[str, tuple[str, Any, Any]] = {
        "plan_days_to_due": ("plan_next_due_date", _ABSENT, _NEEDS),
        "promise_active": ("promise_made_at", False, _NEEDS),
        "consent_day": ("consent", _ABSENT, _NEEDS),
        "in_validation_period": ("validation_notice_sent_at", _ABSENT, _NEEDS),
        # placement: only an event of a `place` or `recall` tier can place an account
        "placed": ("places", False, _NEEDS),
        "placed_with": ("places", _ABSENT, _NEEDS),
        "days_placed": ("places", _ABSENT, _NEEDS),
    }
    if name in one:
        column, off, on = one[name]
        return [on if v else off for v in c[column]]
    fixed: dict[str, Any] = {
        "letter_of_claim_reply": _EMPTY,
        "principal": _ABSENT,
        "dispute_open": False,  # no dispute_received_at (it would be in `rest`)
        "breathing_space_active": False,  # no breathing_space (idem)
    }
    value = fixed.get(name, _ABSENT if name.startswith("attributes.") else _NEEDS)
    return [value] * n


def array(column: Any, fill: int) -> np.ndarray:
    """A date, integer or timestamp column as int64 (``fill`` for nulls)."""
    if pa.types.is_date32(column.type):
        column = column.cast(pa.int32())  # days since the epoch
    column = column.cast(pa.int64())  # instants: µs since the epoch
    return np.asarray(pc.fill_null(column, fill).to_numpy(), np.int64)


def state_clean(rule: GuardRule, facts: Mapping[str, Any], channel: Channel) -> bool:
    """A state guard that certainly does not block (as ``_screen.state_clean``)."""
    model = rule.model
    if isinstance(model, BlockGuard):
        return rule.conditions["when"].truth(facts) is not True
    if isinstance(model, ConsentGuard) and not model.confirm_on:
        return channel.value not in facts.get("opt_out", frozenset())
    # no inconvenient times or places: they would be in `rest`
    return isinstance(model, InconvenientGuard)
