"""The canonical text of an account record: what a decision id hashes
(:func:`escalation.decision.decision_id`). :func:`reference_canonical` is the
definition; :func:`canonical` writes the same text faster: the history (most of
a record) directly and once per account (kept in its memo, :mod:`escalation._account_memo`:
a dry-run decides each account twice), the other fields of the usual kinds
directly too, and only the rest (instants, nested records, dicts) through
pydantic. ``tests/test_fast_paths.py``, ``tests/test_dident_canonical.py`` and
``tests/test_dfacts_record.py`` hold them equal."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from itertools import compress
from json.encoder import encode_basestring
from operator import is_not, itemgetter
from typing import Any

from pydantic import TypeAdapter

from escalation._account_memo import memo_of
from escalation.record import Account, ActorType, Channel

__all__ = ["canonical", "reference_canonical"]

_INSTANTS: TypeAdapter[list[dt.datetime]] = TypeAdapter(list[dt.datetime])
# a JSON string with non-ASCII kept: what json.dumps(ensure_ascii=False) writes
_string: Any = encode_basestring
_OUTBOUND = "outbound"


def reference_canonical(account: Account) -> str:
    """The canonical text of a record, by definition: pydantic's JSON form
    without defaults, keys sorted, the sets ``flags`` and ``opt_out`` sorted.
    :func:`canonical` writes the same text faster (``tests/test_fast_paths.py``
    holds them equal)."""
    data = account.model_dump(mode="json", exclude_defaults=True)
    for name in ("flags", "opt_out"):  # sets: their order is not the record's meaning
        if name in data:
            data[name] = sorted(data[name])
    return _dumps(data)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# json.dumps builds a new encoder on every call with these options: build it once
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(account: Account) -> str:
    """:func:`reference_canonical`, with the history (most of a record) written
    directly: its instants in one pydantic call, the rest field by field; once
    per account. The rest of the record is written again each time unless its
    only mutable fields (the dicts ``attributes`` and ``opt_out_at``) are empty."""
    if account.__class__ is not Account:
        return reference_canonical(account)  # a subclass may add fields: the writer knows Account's
    memo = memo_of(account)
    frozen = not account.attributes and not account.opt_out_at
    if frozen and memo.record is not None:
        return memo.record
    history = memo.text
    if history is None:
        history = _history_text(memo.history)
        if history is None:
            return reference_canonical(account)
        if not frozen:
            memo.text = history
    text = _with_history(account, history)
    if frozen:
        memo.record = text
    return text


def _with_history(account: Account, history: str) -> str:
    """The record's canonical text around its history's (``history``): each
    field of a usual kind (text, money, a date, a list or set of text) written
    directly, any other field that is not its default by pydantic."""
    parts: list[str] = []
    slow: set[str] | None = None
    values = _all_fields(account.__dict__)
    # most of a record's fields hold their default object itself: those left out
    # in C (one pass), the others (about ten) looked at one by one below
    for index in compress(_INDEXES, map(is_not, values, _DEFAULTS)):
        value, default = values[index], _DEFAULTS[index]
        if value == default:
            continue  # exclude_defaults: pydantic compares with `==` too
        name, key, kind = _NAMES[index], _KEYS[index], _KINDS[index]
        cls = value.__class__
        if kind == _K_STR and cls is str:
            parts.append(key + _string(value))
        elif kind == _K_HISTORY:
            parts.append(key + history)
        elif kind == _K_MONEY and cls is Decimal:
            parts.append(key + '"' + str(value) + '"')
        elif kind == _K_DAY and cls is dt.date:
            parts.append(key + '"' + value.isoformat() + '"')
        elif kind == _K_INT and cls is int:
            parts.append(key + str(value))
        elif kind == _K_TEXTS and cls is tuple and all(v.__class__ is str for v in value):
            parts.append(key + "[" + ",".join(map(_string, value)) + "]")
        elif kind == _K_SET and cls is frozenset and all(v.__class__ is _ELEMENTS[index] for v in value):
            # a set's order is not the record's meaning: sorted, as the reference sorts it
            parts.append(key + "[" + ",".join(map(_string, sorted(value))) + "]")
        elif kind == _K_ACTOR and cls is ActorType:
            parts.append(key + _string(value))
        else:
            if slow is None:
                slow = set()
            slow.add(name)
            parts.append(name)  # a placeholder: written below
    if slow is not None:
        parts = _slow_parts(account, parts, slow)
    return "{" + ",".join(parts) + "}"


def _slow_parts(account: Account, parts: list[str], slow: set[str]) -> list[str]:
    """``parts`` with the placeholders of the fields in ``slow`` written by
    pydantic, as the reference writes them (left out if it leaves them out)."""
    data = account.model_dump(mode="json", exclude_defaults=True, include=slow)
    for name in _SETS:
        if name in data:
            data[name] = sorted(data[name])
    return [
        part if part not in slow else f'"{part}":{_encode(data[part])}'
        for part in parts
        if part not in slow or part in data
    ]


# how _with_history writes each field of the record, by name (sorted: the keys' order)
_K_STR, _K_MONEY, _K_DAY, _K_INT, _K_TEXTS, _K_SET, _K_ACTOR, _K_HISTORY, _K_PYDANTIC = range(9)
_FAST_KINDS = {
    **dict.fromkeys(("id", "currency", "timezone", "jurisdiction", "product", "segment"), _K_STR),
    **dict.fromkeys(("amount_overdue", "balance", "principal"), _K_MONEY),
    **dict.fromkeys(
        (
            *("overdue_since", "due_date", "last_payment_at", "charged_off_at"),
            *("default_notice_served_at", "default_notice_remedy_date", "letter_of_claim_at"),
        ),
        _K_DAY,
    ),
    "days_overdue": _K_INT,
    "timezones": _K_TEXTS,
    "flags": _K_SET,
    "opt_out": _K_SET,
    "actor_type": _K_ACTOR,
    "history": _K_HISTORY,
}
_SETS = ("flags", "opt_out")
_REQUIRED = object()  # the "default" of a required field: equal to no value


def _layout() -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], tuple[Any, ...], tuple[Any, ...]]:
    names = tuple(sorted(Account.model_fields))
    defaults = []
    for name in names:
        field = Account.model_fields[name]
        assert field.default_factory is None, name  # a default to compare with, as pydantic does
        defaults.append(_REQUIRED if field.is_required() else field.default)
    kinds = tuple(_FAST_KINDS.get(name, _K_PYDANTIC) for name in names)
    elements = tuple({"flags": str, "opt_out": Channel, "timezones": str}.get(name) for name in names)
    return names, tuple(f'"{name}":' for name in names), kinds, elements, tuple(defaults)


_NAMES, _KEYS, _KINDS, _ELEMENTS, _DEFAULTS = _layout()
_all_fields = itemgetter(*_NAMES)  # of a record's `__dict__`, in the keys' order
_INDEXES = range(len(_NAMES))
# the event fields _history_text writes, in sorted order (consent_until: by the reference)
_FIELDS = (
    *("action", "actor", "address", "amount", "channel"),
    *("consent_until", "direction", "misdirected", "offer", "outcome"),
)
_WRITTEN = frozenset({"at", *_FIELDS})
_KNOWN: set[type] = set()  # event classes whose fields are exactly _WRITTEN
_instants_json = _INSTANTS.serializer.to_json
_fields = itemgetter(*_FIELDS)  # of an event's `__dict__`: one call, no attribute lookups
# the usual event (a tier's outbound action with its outcome and address), as
# pieces of one join for the whole history (each event's text begins with the
# separator `,`: the first one's is dropped)
_A, _B, _C, _D, _E, _F = ',{"action":', ',"address":', ',"at":"', '","channel":"', '","outcome":"', '"}'


def _history_text(history: tuple[Any, ...]) -> str | None:
    """The history's canonical JSON text ("" when empty: left out as a default);
    None when an event has a field written the slow way (``consent_until``)."""
    if not history:
        return ""
    kind = type(history[0])
    if kind not in _KNOWN:
        if kind.model_fields.keys() != _WRITTEN:
            return None  # an event field this writer does not know: the reference writes it
        _KNOWN.add(kind)
    # pydantic writes the instants (in its format: `Z` for UTC); none holds `","`
    stamps = _instants_json([e.at for e in history]).decode()[2:-2].split('","')
    # every piece of the text, joined once at the end (not a string per event)
    out: list[str] = []
    # enum members are `str`s holding their value: joined, they write the value
    for event, at in zip(history, stamps, strict=True):
        action, actor, address, amount, channel, consent, direction, misdirected, offer, outcome = _fields(
            event.__dict__
        )
        if consent is not None:
            return None
        if (
            actor is None
            and amount is None
            and offer is None
            and direction == _OUTBOUND
            and not misdirected
            and action is not None
            and address is not None
            and channel is not None
            and outcome is not None
        ):
            out += (_A, _string(action), _B, _string(address), _C, at, _D, channel, _E, outcome, _F)
            continue
        # keys in sorted order; a field equal to its default is left out
        parts = [",{"]
        if action is not None:
            parts += ('"action":', _string(action), ",")
        if actor is not None:
            parts += ('"actor":', _string(actor), ",")
        if address is not None:
            parts += ('"address":', _string(address), ",")
        if amount is not None:
            parts += ('"amount":"', str(amount), '",')
        parts += ('"at":"', at, '"')
        if channel is not None:
            parts += (',"channel":"', channel, '"')
        if direction != _OUTBOUND:
            parts += (',"direction":"', direction, '"')
        if misdirected:
            parts.append(',"misdirected":true')
        if offer is not None:
            parts += (',"offer":', _string(offer))
        if outcome is not None:
            parts += (',"outcome":"', outcome, '"')
        parts.append("}")
        out.append("".join(parts))
    out[0] = "[" + out[0][1:]  # the first event's separator: the list's opening instead
    out.append("]")
    return "".join(out)
