"""What is derived from an account's history alone, kept beside the account
for as long as it lives: its events' POSIX timestamps and the history's
canonical text (what decision ids hash). A dry-run validates an account and
decides it under two policies, and a caller may decide one account at several
instants: each conversion then runs once per account, not once per call.

Safe because a history is immutable all the way down (a tuple of frozen events
holding strings, enums, decimals, datetimes and booleans): an entry is used
only for the same live account *and* the same history tuple, and it is dropped
when the account is collected (a weak reference), so nothing outlives the
account. Threads racing to fill an entry each compute the same value. A leaf."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from escalation.record import Account

__all__ = ["Memo", "memo_of"]


class Memo:
    """One account's derived values (``None``: not computed yet)."""

    __slots__ = ("channels", "history", "ordered", "record", "ref", "stamps", "text")

    def __init__(self, history: tuple[Any, ...], ref: weakref.ref[Account] | None) -> None:
        self.history = history
        self.ref = ref
        self.stamps: tuple[float, ...] | None = None
        self.ordered: bool | None = None  # whether the stamps are oldest first
        self.channels: bool | None = None  # whether every event names its channel
        # the history's canonical text, kept only for a record whose own text cannot be
        # (a frozen one keeps `record`, which holds it: not the same 4 KB twice)
        self.text: str | None = None
        # the whole record's, for an account whose only mutable fields (the dicts
        # `attributes` and `opt_out_at`) are empty: read only while they still are
        self.record: str | None = None


# id(account) → its memo; an entry leaves with its account (the weak reference's callback)
_MEMOS: dict[int, Memo] = {}


def memo_of(account: Account) -> Memo:
    """The memo of ``account`` (a new, unshared one when it cannot be kept)."""
    key = id(account)
    found = _MEMOS.get(key)
    if (
        found is not None
        and found.history is account.history
        and found.ref is not None
        and found.ref() is account
    ):
        return found
    history = account.history
    if not history:
        return Memo(history, None)  # nothing worth keeping
    try:
        ref = weakref.ref(account, _forget(key))
    except TypeError:  # pragma: no cover - every pydantic model takes weak references
        return Memo(history, None)
    found = _MEMOS[key] = Memo(history, ref)
    return found


def _forget(key: int) -> Any:
    def forget(ref: weakref.ref[Account]) -> None:
        entry = _MEMOS.get(key)
        if entry is not None and entry.ref is ref:  # not a newer entry for the same id
            _MEMOS.pop(key, None)

    return forget
