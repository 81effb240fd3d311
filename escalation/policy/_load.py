"""Reading policy files: the one include walker (rule packs, with cycle,
depth and kind checks) and the collector that turns every problem into a
located :class:`~escalation.errors.PolicyIssue`."""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from escalation._bundled import bundled
from escalation._language import EventFilter
from escalation.errors import PolicyError, PolicyIssue
from escalation.guards import KINDS, Prerequisite
from escalation.policy._yaml import MAX_YAML_BYTES, Located, YamlLoadError, load_yaml
from escalation.policy.schema import (
    AttributeEnum,
    Counts,
    Hold,
    Limitation,
    Limits,
    PackDocument,
    PackHeader,
    PolicyDocument,
    PolicyHeader,
    PromiseRules,
    Repeat,
    Tier,
)

__all__ = ["LANGUAGE_VERSION", "MAX_INCLUDE_DEPTH", "Collector", "Loaded", "hint", "load_tree"]

LANGUAGE_VERSION = 1
MAX_INCLUDE_DEPTH = 8


class Collector:
    """Collects every problem found while loading, each located in its file."""

    def __init__(self) -> None:
        self.issues: list[PolicyIssue] = []

    def add(
        self, located: Located, loc: tuple[str | int, ...], code: str, message: str, *, key: bool = False
    ) -> None:
        line, col = located.position(loc, key=key)
        self.issues.append(PolicyIssue(located.path, line, col, code, message))

    def validation(self, located: Located, exc: ValidationError) -> None:
        errors = exc.errors(include_url=False)
        # pydantic also reports a list as too short when its only items failed: noise
        failed = [e["loc"] for e in errors if e["type"] != "too_short"]
        for err in errors:
            if err["type"] == "too_short" and any(f[: len(err["loc"])] == err["loc"] for f in failed):
                continue
            loc = _data_loc(located.data, err["loc"])
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            code = "invalid-value"
            key = False
            if err["type"] == "extra_forbidden":
                code, key = "unknown-key", True
                field_name = loc[-1] if loc else ""
                msg = f"unknown key `{field_name}`" + _key_hint(str(field_name))
            elif err["type"] == "missing":
                code = "missing-key"
                msg = f"missing key `{err['loc'][-1]}`"
            elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                code = "unknown-kind"
                kinds = ", ".join(KINDS)
                msg = f"guard `kind` must be one of: {kinds}"
            elif loc == ("escalation",):
                code = "language-version"
                msg = f"`escalation` must be {LANGUAGE_VERSION}"
            self.add(located, loc, code, msg[:1].lower() + msg[1:], key=key)


def _key_hint(name: str) -> str:
    return hint(name, _KNOWN_KEYS)


_KEYED_MODELS: tuple[type[BaseModel], ...] = (
    PolicyDocument, PolicyHeader, Hold, Tier, Repeat, EventFilter, PackDocument, PackHeader,
    Limitation, Limits, PromiseRules, Counts, AttributeEnum, Prerequisite,
    *(kind.model for kind in KINDS.values()),
)  # fmt: skip
_KNOWN_KEYS = sorted(
    {info.alias or name for model in _KEYED_MODELS for name, info in model.model_fields.items()}
)


def _data_loc(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Map a pydantic error location onto the YAML data path (dropping union tags)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and part == "from_" and "from" in node:
            out.append("from")
            node = node["from"]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_union_tag(part):
            out.append(part)  # a missing or unknown key: point at its parent
            node = None
    return tuple(out)


def _is_union_tag(part: str) -> bool:
    return part in KINDS


def _read(
    path: Path, collector: Collector, origin: tuple[Located, tuple[str | int, ...]] | None
) -> tuple[Located, bytes] | None:
    try:
        raw = read_regular(path, MAX_YAML_BYTES)
    except (OSError, ValueError) as exc:
        why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or "invalid path"
        if origin is not None:
            shown = repr(str(path))[1:-1][:200]
            collector.add(origin[0], origin[1], "include-not-found", f"cannot read `{shown}`: {why}")
        else:
            collector.issues.append(PolicyIssue(str(path), 1, 1, "file-not-found", f"cannot read: {why}"))
        return None
    try:
        return load_yaml(raw, str(path)), raw
    except YamlLoadError as exc:
        collector.issues.append(exc.issue)
        return None


_Doc = TypeVar("_Doc", bound=BaseModel)


def load_document(
    path: Path, model: type[_Doc], *, marker: str, code: str, message: str, error: type[PolicyError]
) -> _Doc:
    """A strict-YAML file other than a policy (an experiment, a response
    model): read as a regular file within the size limit, its top level a
    mapping holding ``marker`` (else ``code``/``message`` at 1:1), validated as
    ``model``; every problem located and raised as ``error``."""
    try:
        raw = read_regular(path, MAX_YAML_BYTES)
    except (OSError, ValueError) as exc:
        why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        raise error([PolicyIssue(str(path), 1, 1, "file-not-found", f"cannot read: {why}")]) from None
    try:
        located = load_yaml(raw, str(path))
    except YamlLoadError as exc:
        raise error([exc.issue]) from None
    if not isinstance(located.data, dict) or marker not in located.data:
        raise error([PolicyIssue(str(path), 1, 1, code, message)])
    try:
        return model.model_validate(located.data)
    except ValidationError as exc:
        collector = Collector()
        collector.validation(located, exc)
        raise error(collector.issues) from None


def read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file at ``path``: a FIFO, a
    device (``/dev/zero``) or a directory is refused before it is read, and a
    huge file is never read whole. Raises ``OSError`` or ``ValueError``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@dataclass
class Loaded:
    """One file of the include tree, its document (None when invalid) and its
    bytes as read (a policy's bundle is checked against them, not re-parsed)."""

    located: Located
    document: PolicyDocument | PackDocument | None
    raw: bytes = b""


def load_tree(
    path: Path,
    collector: Collector,
    stack: tuple[Path, ...],
    origin: tuple[Located, tuple[str | int, ...]] | None,
    out: list[Loaded],
    seen: set[Path],
    packs: Path | None = None,
) -> None:
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL in the name
        message = "cannot resolve the path (a symlink loop or an invalid name)"
        if origin is None:
            collector.issues.append(PolicyIssue(repr(str(path))[1:-1][:200], 1, 1, "file-not-found", message))
        else:
            collector.add(origin[0], origin[1], "include-not-found", message)
        return
    if resolved in stack:
        assert origin is not None
        chain = " -> ".join(p.name for p in (*stack, resolved))
        collector.add(origin[0], origin[1], "include-cycle", f"include cycle: {chain}")
        return
    if resolved in seen:
        return  # included twice through different routes: load once
    if len(stack) > MAX_INCLUDE_DEPTH:
        assert origin is not None
        collector.add(
            origin[0], origin[1], "include-too-deep", f"includes nested deeper than {MAX_INCLUDE_DEPTH}"
        )
        return
    seen.add(resolved)
    read = _read(path, collector, origin)
    if read is None:
        return
    located, raw = read
    data = located.data
    is_root = not stack
    if not isinstance(data, dict):
        collector.add(located, (), "invalid-value", "the file must be a YAML mapping")
        return
    model: type[PolicyDocument] | type[PackDocument] = PolicyDocument if is_root else PackDocument
    if is_root and "pack" in data and "policy" not in data:
        collector.add(located, (), "not-a-policy", "this is a rule pack; give a policy that includes it")
        return
    if not is_root and "policy" in data:
        collector.add(origin[0], origin[1], "include-not-pack", "only rule packs can be included")  # type: ignore[index]
        return
    document: PolicyDocument | PackDocument | None
    try:
        document = model.model_validate(data)
    except ValidationError as exc:
        collector.validation(located, exc)
        document = None
    out.append(Loaded(located, document, raw))
    section = data.get("policy" if is_root else "pack")
    includes = section.get("include") if isinstance(section, dict) else None
    if isinstance(includes, list):
        for index, name in enumerate(includes):
            if isinstance(name, str):
                loc: tuple[str | int, ...] = ("policy" if is_root else "pack", "include", index)
                target = include_path(path, name, collector, (located, loc), packs)
                if target is not None:
                    load_tree(target, collector, (*stack, resolved), (located, loc), out, seen, packs)


PACK_PREFIX = "pack:"


def packs_folder(packs: Path | None = None) -> Path | None:
    """Where ``pack:<name>`` includes are found: ``packs`` when given (a
    journal's stored copies), else the rule packs shipped with the package."""
    if packs is not None:
        return packs
    try:
        return bundled("rules")
    except FileNotFoundError:  # pragma: no cover - a broken installation
        return None


def shipped_packs(packs: Path | None = None) -> list[str]:
    """The names ``pack:<name>`` can include."""
    folder = packs_folder(packs)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder is not None else []


def include_path(
    path: Path,
    name: str,
    collector: Collector,
    origin: tuple[Located, tuple[str | int, ...]],
    packs: Path | None = None,
) -> Path | None:
    """The file an ``include`` names: ``pack:<name>`` is a rule pack shipped
    with the package (found wherever the policy lives); anything else is a
    path relative to the including file."""
    if not name.startswith(PACK_PREFIX):
        return path.parent / name
    pack = name[len(PACK_PREFIX) :].strip()
    known = shipped_packs(packs)
    if pack not in known:
        shown = repr(pack)[1:-1][:100]
        message = f"no shipped rule pack `{shown}`" + (hint(pack, known) or f" (shipped: {', '.join(known)})")
        collector.add(origin[0], origin[1], "include-not-found", message)
        return None
    folder = packs_folder(packs)
    assert folder is not None
    return folder / f"{pack}.yaml"


def hint(name: str, known: list[str]) -> str:
    """``; did you mean `x`?`` for the closest known name, or nothing."""
    match = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean `{match[0]}`?" if match else ""
