"""Masking personal data in journaled account records.

A journal keeps the validated input of every decision so the decision can be
replayed years later. Contact addresses (phone numbers, e-mail addresses)
are personal data the decision does not need *as such*: the engine only
compares them with each other (per-address frequency guards, "every number
tried is not in service"). So each masked value is replaced by a keyed
pseudonym (HMAC-SHA256): equal addresses stay equal within a record, so a
replay makes the same decision, and nobody without the key can recover or
confirm an address.

* With a configured key (``Masking(key=...)`` or ``ESCALATION_AUDIT_KEY``)
  pseudonyms are stable across records: an auditor holding the key can find
  every decision about one number (``escalation audit query --address``).
* Without one, each record gets a fresh random key that is never stored:
  pseudonyms are consistent inside the record (replay still works) and
  unlinkable across records.

Mask only fields whose *equality* matters to the policy, never fields a
condition compares with a constant (``segment == 'vip'``): a replay would
then differ, and ``escalation audit replay`` reports it."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from escalation.errors import MaskingError

__all__ = ["DEFAULT_MASKED_PATHS", "KEY_ENV", "MaskResult", "Masking", "MaskingError", "mask_input"]

DEFAULT_MASKED_PATHS: tuple[str, ...] = ("history.*.address",)
KEY_ENV = "ESCALATION_AUDIT_KEY"
PREFIX = "hmac:"
_PATH = re.compile(r"^(\*|[a-z_][a-z0-9_]*)(\.(\*|[a-z_][a-z0-9_]*|\d+))*$")


class Masking(BaseModel):
    """Which fields of the input record a journal stores as keyed pseudonyms.

    ``paths`` are dotted paths into the record as JSON (``*`` matches every
    list item or mapping value): ``history.*.address`` by default. ``key`` is
    the HMAC key; ``None`` means a fresh, unstored key per record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: tuple[str, ...] = DEFAULT_MASKED_PATHS
    key: bytes | None = Field(default=None, repr=False, min_length=16)

    @field_validator("paths")
    @classmethod
    def _valid_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not _PATH.match(path):
                raise ValueError(f"`{path}` is not a dotted path like `history.*.address`")
        return value

    @classmethod
    def from_env(cls, paths: tuple[str, ...] = DEFAULT_MASKED_PATHS) -> Masking:
        """Masking keyed by ``$ESCALATION_AUDIT_KEY`` (UTF-8 text, at least 16
        bytes) when it is set, per-record keys otherwise."""
        raw = os.environ.get(KEY_ENV)
        if raw is None or raw == "":
            return cls(paths=paths)
        key = raw.encode()
        if len(key) < 16:
            raise MaskingError(f"`{KEY_ENV}` must be at least 16 bytes long")
        return cls(paths=paths, key=key)

    @property
    def key_id(self) -> str:
        """Identifies the key without revealing it (``ephemeral`` when none)."""
        if self.key is None:
            return "ephemeral"
        return "sha256:" + hashlib.sha256(b"escalation-key-id:" + self.key).hexdigest()[:16]

    def pseudonym(self, value: str, key: bytes | None = None) -> str:
        """The pseudonym of ``value`` under ``key`` (this masking's key by default)."""
        use = key if key is not None else self.key
        if use is None:
            raise MaskingError("no masking key is configured")
        return PREFIX + hmac.new(use, value.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class MaskResult:
    """A masked copy of a record: ``data``, the concrete ``paths`` masked
    (``history.2.address``) and each original value's pseudonym."""

    data: dict[str, Any]
    paths: tuple[str, ...]
    replaced: dict[str, str] = field(default_factory=dict)


def mask_input(data: dict[str, Any], masking: Masking) -> MaskResult:
    """Mask ``data`` (a record as JSON) per ``masking``; the input is not changed."""
    key = masking.key if masking.key is not None else os.urandom(32)
    out = _copy(data)
    masked: list[str] = []
    replaced: dict[str, str] = {}
    for pattern in masking.paths:
        for parent, last, concrete in _walk(out, pattern.split("."), ()):
            value = parent[last]
            if value is None:
                continue
            if not isinstance(value, str):
                raise MaskingError(
                    f"`{'.'.join(concrete)}` holds {type(value).__name__}; only text can be masked"
                )
            if value.startswith(PREFIX) and value in replaced.values():
                continue  # already masked by an overlapping pattern
            pseudonym = replaced.get(value) or masking.pseudonym(value, key)
            replaced[value] = pseudonym
            parent[last] = pseudonym
            masked.append(".".join(concrete))
    return MaskResult(out, tuple(sorted(set(masked), key=_path_order)), replaced)


def _path_order(path: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in path.split("."))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _walk(node: Any, parts: list[str], where: tuple[str, ...]) -> Iterator[tuple[Any, Any, tuple[str, ...]]]:
    """(container, key, concrete path) for every leaf matching ``parts``."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        keys: list[Any] = list(node) if head == "*" else [head] if head in node else []
    elif isinstance(node, list):
        if head == "*":
            keys = list(range(len(node)))
        elif head.isdigit() and int(head) < len(node):
            keys = [int(head)]
        else:
            keys = []
    else:
        return
    for key in keys:
        here = (*where, str(key))
        if rest:
            yield from _walk(node[key], rest, here)
        else:
            yield node, key, here
