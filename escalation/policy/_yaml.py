"""Strict YAML loading with source positions.

PyYAML's ``safe_load`` silently keeps the last of two duplicate keys, reads
``no``/``off``/``on`` as booleans, ``08:00`` as the sexagesimal integer 480
and ``010`` as octal. Policies are legal configuration, so this loader
accepts only a small, unsurprising subset: ``true``/``false`` booleans,
decimal integers and floats, ``null``/``~``, strings; no anchors, aliases,
custom tags or merge keys; a file-size limit. It builds plain Python data
and, beside it, the line/column of every node so later validation errors can
point at the offending text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from escalation.errors import PolicyIssue

__all__ = ["MAX_YAML_BYTES", "Located", "YamlLoadError", "load_yaml"]

MAX_YAML_BYTES = 1_000_000
MAX_DEPTH = 32

Path = tuple[str | int, ...]


class YamlLoadError(Exception):
    """Internal: carries the issue found while loading."""

    def __init__(self, issue: PolicyIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


@dataclass
class Located:
    """Loaded YAML data with the 1-based (line, column) of every value and key."""

    data: Any
    path: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def position(self, loc: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of ``loc``, or of its nearest located ancestor."""
        table = self.keys if key else self.values
        probe = tuple(loc)
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))


_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_BOOL = re.compile(r"^(?:true|false)$")
_NULL = re.compile(r"^(?:~|null|)$")

_STR = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class _StrictResolver(yaml.resolver.BaseResolver):
    """Resolves only the unsurprising implicit types listed in the module doc."""


_StrictResolver.yaml_implicit_resolvers = {}
_StrictResolver.add_implicit_resolver(_BOOL_TAG, _BOOL, list("tf"))
_StrictResolver.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_StrictResolver.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))
_StrictResolver.add_implicit_resolver(_NULL_TAG, _NULL, ["~", "n", ""])


class _StrictComposer(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _StrictResolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _StrictResolver.__init__(self)
        self.source_path = "<string>"
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise YamlLoadError(
                PolicyIssue(
                    self.source_path,
                    mark.line + 1,
                    mark.column + 1,
                    "yaml-anchor",
                    "anchors and aliases are not allowed; write the value out",
                )
            )
        if getattr(event, "tag", None) is not None:  # `!!str 3`, `!custom`: explicit tags
            mark = event.start_mark
            raise YamlLoadError(
                PolicyIssue(
                    self.source_path,
                    mark.line + 1,
                    mark.column + 1,
                    "yaml-tag",
                    "explicit tags are not allowed",
                )
            )
        # PyYAML composes recursively: bound the depth here, before Python's stack is
        self.depth += 1
        if self.depth > MAX_DEPTH:
            mark = event.start_mark
            raise YamlLoadError(
                PolicyIssue(
                    self.source_path,
                    mark.line + 1,
                    mark.column + 1,
                    "yaml-too-deep",
                    f"nesting deeper than {MAX_DEPTH} levels",
                )
            )
        try:
            node: Node | None = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        return node


def _issue(path: str, node: Node, code: str, message: str) -> YamlLoadError:
    mark = node.start_mark
    return YamlLoadError(PolicyIssue(path, mark.line + 1, mark.column + 1, code, message))


def _build(node: Node, loc: Path, out: Located, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _issue(out.path, node, "yaml-too-deep", f"nesting deeper than {MAX_DEPTH} levels")
    out.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, ScalarNode):
        tag, value = node.tag, node.value
        if tag == _STR:
            bad = next((c for c in value if unicodedata.category(c) == "Cc" and c not in "\t\n"), None)
            if bad is not None:
                raise _issue(
                    out.path, node, "control-character", f"control character U+{ord(bad):04X} in a string"
                )
            return value
        if tag == _INT_TAG and _INT.match(value):
            return int(value, 10)
        if tag == _FLOAT_TAG and _FLOAT.match(value):
            return float(value)
        if tag == _BOOL_TAG and _BOOL.match(value):
            return value == "true"
        if tag == _NULL_TAG and _NULL.match(value):
            return None
        raise _issue(out.path, node, "yaml-tag", f"tag `{tag}` is not allowed")
    if isinstance(node, SequenceNode):
        if node.tag != _SEQ:
            raise _issue(out.path, node, "yaml-tag", f"tag `{node.tag}` is not allowed")
        return [_build(item, (*loc, i), out, depth + 1) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        if node.tag != _MAP:
            raise _issue(out.path, node, "yaml-tag", f"tag `{node.tag}` is not allowed")
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
                raise _issue(out.path, key_node, "yaml-key", "mapping keys must be plain strings")
            key = key_node.value
            if key == "<<":
                raise _issue(out.path, key_node, "yaml-merge", "merge keys (`<<`) are not allowed")
            if key in result:
                first = out.keys[(*loc, key)]
                raise _issue(
                    out.path,
                    key_node,
                    "duplicate-key",
                    f"key `{key}` appears twice (first at line {first[0]})",
                )
            out.keys[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _build(value_node, (*loc, key), out, depth + 1)
        return result
    raise _issue(out.path, node, "yaml-syntax", "unsupported YAML node")


def load_yaml(text: str | bytes, path: str = "<string>") -> Located:
    """Load one YAML document strictly. Raises :class:`YamlLoadError`."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_YAML_BYTES:
        raise YamlLoadError(
            PolicyIssue(path, 1, 1, "file-too-large", f"larger than the limit of {MAX_YAML_BYTES} bytes")
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlLoadError(
                PolicyIssue(path, 1, 1, "yaml-syntax", f"not UTF-8 text ({exc.reason})")
            ) from None
    try:
        loader = _StrictComposer(text)
    except yaml.reader.ReaderError as exc:  # a control character or NUL in the text
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        message = (
            f"control character U+{exc.character:04X} is not allowed"
            if isinstance(exc.character, int)
            else "unreadable character"
        )
        raise YamlLoadError(PolicyIssue(path, line, col, "control-character", message)) from None
    loader.source_path = path
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise YamlLoadError(PolicyIssue(path, line, col, "yaml-syntax", problem)) from None
    except yaml.YAMLError as exc:
        raise YamlLoadError(PolicyIssue(path, 1, 1, "yaml-syntax", str(exc))) from None
    finally:
        loader.dispose()
    out = Located(data=None, path=path)
    if node is None:
        out.data = None
        return out
    out.data = _build(node, (), out, 0)
    return out
