"""Policy bundles: a fully included policy as one self-contained blob of
bytes, to send to processes, Spark executors or Ray tasks.

A bundle holds the policy file and the text of every rule pack it includes
(transitively; shipped ``pack:<name>`` packs by name), with the policy's id,
version and fingerprint. :func:`load_policy_bundle` rebuilds the policy from
that text alone (nothing is read from the receiving machine's policy folder,
nor from its shipped packs) and checks that the rebuilt policy has the
recorded fingerprint and the files their recorded digest: a bundle altered on
the way is a :class:`~escalation.errors.PolicyError`, never a different policy.

Format (version 1): UTF-8 JSON ``{"format": "escalation-policy-bundle/1",
"fingerprint", "id", "version", "root", "files": {relative path: text},
"digest"}``; shipped packs are stored under ``_packs/<name>.yaml``.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escalation.errors import PolicyError, PolicyIssue
from escalation.policy._compile import Policy

if TYPE_CHECKING:
    from escalation.policy._load import Loaded

__all__ = ["BUNDLE_FORMAT", "load_policy_bundle", "policy_files", "to_bundle"]

BUNDLE_FORMAT = "escalation-policy-bundle/1"
PACKS = "_packs"
_MAX_BUNDLE = 64 * 1024 * 1024
_CACHE_SIZE = 16
_cache: OrderedDict[str, Policy] = OrderedDict()
_lock = threading.Lock()


def _fail(code: str, message: str, where: str = "<policy bundle>") -> PolicyError:
    return PolicyError([PolicyIssue(where, 1, 1, code, message)])


def policy_files(root: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The root policy file and every file it includes, transitively, by
    absolute (lexically normalised) path — the walk ``load_policy`` does —
    and, apart, the shipped packs it names as ``pack:<name>``, by name."""
    found, shipped, _ = _walk(root, {})
    return found, shipped


# What a policy was built from, per file by absolute path: its bytes and the
# includes they name. Recorded by ``load_policy``: bundling a policy whose
# files are unchanged then neither parses them again nor rebuilds it.
Sources = dict[str, tuple[bytes, tuple[str, ...]]]


def remember_files(policy: Policy, loaded: list[Loaded]) -> None:
    """Record on ``policy`` the files ``load_policy`` built it from: their
    bytes and the includes they name."""
    sources = {os.path.abspath(f.located.path): (f.raw, _includes(f.located.data)) for f in loaded}
    object.__setattr__(policy, "_sources", sources)  # frozen dataclass: beside the fields, like `_bundle`


def _includes(data: Any) -> tuple[str, ...]:
    section = (data.get("policy") or data.get("pack")) if isinstance(data, dict) else None
    includes = section.get("include") if isinstance(section, dict) else None
    return tuple(name for name in includes if isinstance(name, str)) if isinstance(includes, list) else ()


def _walk(root: Path, known: Sources) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]:
    """``policy_files``'s walk, and every file it read by absolute path; a
    file whose bytes are those ``known`` holds is not parsed again."""
    from escalation.policy._load import PACK_PREFIX, packs_folder
    from escalation.policy._yaml import YamlLoadError, load_yaml

    found: dict[str, bytes] = {}
    shipped: dict[str, bytes] = {}
    read: dict[str, bytes] = {}
    pending: list[tuple[Path, bool]] = [(Path(os.path.abspath(root)), False)]
    while pending:
        path, by_name = pending.pop()
        table, key = (shipped, path.stem) if by_name else (found, str(path))
        if key in table:
            continue
        raw = table[key] = read[str(path)] = path.read_bytes()
        memo = known.get(str(path))
        if memo is not None and memo[0] == raw:
            names = memo[1]
        else:
            try:
                names = _includes(load_yaml(raw, str(path)).data)
            except YamlLoadError as exc:
                raise PolicyError([exc.issue]) from None
        for name in names:
            if name.startswith(PACK_PREFIX):
                folder = packs_folder()
                if folder is not None:
                    pack = name[len(PACK_PREFIX) :].strip()
                    pending.append((Path(os.path.abspath(folder / f"{pack}.yaml")), True))
            else:
                pending.append((Path(os.path.abspath(path.parent / name)), False))
    return found, shipped, read


def _digest(files: dict[str, str]) -> str:
    text = json.dumps(files, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_bundle(policy: Policy) -> bytes:
    """The bundle of ``policy``: its files re-read from disk and checked to
    still make this policy (a file changed since loading raises
    :class:`~escalation.errors.PolicyError`): when every file holds the bytes
    ``load_policy`` read, that is the check; otherwise the bundle is rebuilt
    into a policy and its fingerprint compared. Memoised on the policy."""
    cached = policy.__dict__.get("_bundle")
    if isinstance(cached, bytes):
        return cached
    known: Sources = policy.__dict__.get("_sources") or {}
    try:
        raw, shipped, read = _walk(Path(policy.path), known)
    except OSError as exc:
        why = f"cannot re-read the policy to bundle it: {exc.strerror}"
        raise _fail("file-not-found", why, policy.path) from None
    base = os.path.commonpath([os.path.dirname(p) for p in raw])
    try:
        files = {os.path.relpath(p, base): data.decode("utf-8") for p, data in sorted(raw.items())}
        files.update({f"{PACKS}/{name}.yaml": data.decode("utf-8") for name, data in sorted(shipped.items())})
    except UnicodeDecodeError:
        raise _fail("yaml-syntax", "a policy file is not UTF-8 text", policy.path) from None
    document = {
        "format": BUNDLE_FORMAT,
        "fingerprint": policy.fingerprint,
        "id": policy.id,
        "version": policy.version,
        "root": os.path.relpath(os.path.abspath(policy.path), base),
        "files": files,
        "digest": _digest(files),
    }
    data = json.dumps(document, sort_keys=True, ensure_ascii=False).encode("utf-8")
    if known and read == {path: memo[0] for path, memo in known.items()}:
        # exactly the bytes the policy was built from, file for file: rebuilding
        # them makes this policy (and a receiver checks the fingerprint anyway)
        object.__setattr__(policy, "_bundle", data)
        return data
    rebuilt = _load(data, check=False)  # raises when the files on disk no longer make this policy
    if rebuilt.fingerprint != policy.fingerprint:
        raise _fail(
            "bundle-mismatch",
            f"the policy files changed since policy `{policy.id}` was loaded "
            f"(fingerprint {policy.fingerprint[:19]}…, files now {rebuilt.fingerprint[:19]}…); reload it",
            policy.path,
        )
    object.__setattr__(policy, "_bundle", data)  # frozen dataclass: memoise beside the fields
    return data


def load_policy_bundle(data: bytes) -> Policy:
    """The :class:`~escalation.policy.Policy` in a bundle made by
    :meth:`Policy.to_bundle`. Raises :class:`~escalation.errors.PolicyError`
    when the bundle is not one, is altered (digest or fingerprint do not
    match) or its policy does not load. Policies are cached per process by
    the bundle's hash, so unpickling one engine per task is cheap."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _fail("invalid-bundle", f"a policy bundle is bytes, not {type(data).__name__}")
    data = bytes(data)
    key = hashlib.sha256(data).hexdigest()
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    policy = _load(data)
    object.__setattr__(policy, "_bundle", data)
    with _lock:
        _cache[key] = policy
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return policy


def _parse(data: bytes) -> dict[str, Any]:
    if len(data) > _MAX_BUNDLE:
        raise _fail("invalid-bundle", f"larger than the limit of {_MAX_BUNDLE} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _fail("invalid-bundle", "not a policy bundle (not UTF-8 JSON)") from None
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise _fail("invalid-bundle", f"not a policy bundle (expected format `{BUNDLE_FORMAT}`)")
    files: Any = document.get("files")
    fields_ok = all(isinstance(document.get(k), str) for k in ("fingerprint", "root", "digest"))
    files_ok = isinstance(files, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    )
    if not (fields_ok and files_ok and document["root"] in files):
        raise _fail("invalid-bundle", "a policy bundle needs `fingerprint`, `root`, `digest` and `files`")
    if _digest(files) != document["digest"]:
        raise _fail("bundle-tampered", "the bundle's files do not match its digest (altered or truncated)")
    return document


def _folder() -> Path:
    """This process's folder of unpacked bundles (removed at exit): a policy
    loaded from a bundle keeps a readable ``path`` for as long as it lives."""
    global _root
    if _root is None or _root[0] != os.getpid():
        folder = Path(tempfile.mkdtemp(prefix="escalation-bundles-")).resolve()
        atexit.register(shutil.rmtree, folder, True)
        _root = (os.getpid(), folder)
    return _root[1]


_root: tuple[int, Path] | None = None


def _load(data: bytes, *, check: bool = True) -> Policy:
    from escalation.policy import load_policy

    document = _parse(data)
    files: dict[str, str] = document["files"]
    with _lock:
        base = _folder() / document["digest"][:32]
        if not base.is_dir():
            staging = Path(tempfile.mkdtemp(dir=base.parent))
            for relative, text in files.items():
                target = (staging / relative).resolve()
                if staging not in target.parents:
                    shutil.rmtree(staging, True)
                    raise _fail("invalid-bundle", f"unsafe path `{relative[:200]}` in the bundle")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            # an empty folder when none: a bundle never reaches the receiver's shipped packs
            (staging / PACKS).mkdir(exist_ok=True)
            staging.rename(base)
    try:
        policy = load_policy(base / document["root"], packs=base / PACKS)
    except PolicyError as exc:
        issues = [
            PolicyIssue(i.path.replace(str(base), "<bundle>"), i.line, i.column, i.code, i.message)
            for i in exc.issues
        ]
        raise PolicyError(issues) from None
    if check and policy.fingerprint != document["fingerprint"]:
        raise _fail(
            "bundle-tampered",
            f"the bundle says fingerprint {document['fingerprint'][:19]}… but its files make "
            f"{policy.fingerprint[:19]}… (altered)",
        )
    return policy
