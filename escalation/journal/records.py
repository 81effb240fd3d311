"""Journal records, stored policies and the backend interface: what a
record holds, how it is hashed and chained, and what every backend offers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from escalation.decision import Decision, EngineInfo, PolicyInfo
from escalation.errors import JournalError, PolicyError
from escalation.journal.masking import Masking
from escalation.policy import Policy, load_policy
from escalation.record import Account

GENESIS = "sha256:" + "0" * 64
RECORD_FORMAT = 1
_MODEL = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------- records


def canonical_json(value: Any) -> str:
    """The canonical JSON text that hashes are computed over: sorted keys,
    no spaces, UTF-8 (not ``\\u`` escapes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(body: dict[str, Any]) -> str:
    """``sha256:<hex>`` over the canonical JSON of ``body`` without its ``hash``."""
    content = {k: v for k, v in body.items() if k != "hash"}
    return "sha256:" + hashlib.sha256(canonical_json(content).encode()).hexdigest()


class Masked(BaseModel):
    """How the input was masked: the concrete paths and the key's id."""

    model_config = _MODEL

    paths: tuple[str, ...] = ()
    method: str = "hmac-sha256"
    key_id: str = "ephemeral"


class JournalRecord(BaseModel):
    """One journaled decision (see ``docs/audit.md`` for every field)."""

    model_config = _MODEL

    format: int = RECORD_FORMAT
    seq: int = Field(ge=1)
    id: str
    recorded_at: str
    account_id: str
    now: str
    input: dict[str, Any]
    masked: Masked
    trace: bool
    decision: str
    decision_sha256: str
    policy: PolicyInfo
    engine: EngineInfo
    prev: str
    hash: str

    def decision_model(self) -> Decision:
        """The stored decision as a :class:`~escalation.decision.Decision`."""
        return Decision.model_validate_json(self.decision)

    def now_instant(self) -> dt.datetime:
        """The ``now`` the decision was made at, exactly as given."""
        return dt.datetime.fromisoformat(self.now)


@dataclass(frozen=True)
class RawEntry:
    """A stored record as text, in storage order, for verification.

    ``index`` is its 1-based position; ``where`` names it for a person
    (``line 7``, ``row 7``); ``torn`` marks an incomplete last line."""

    index: int
    where: str
    text: str
    torn: bool = False


@dataclass(frozen=True)
class Head:
    """The journal's anchor: the last committed record's ``seq`` and ``hash``."""

    seq: int
    hash: str


# ----------------------------------------------------------------- policies


class StoredPolicy(BaseModel):
    """A policy's full text, stored once per fingerprint: the canonical form
    (what it means) and the original files (root and rule packs, with paths
    relative to their common folder) from which it is rebuilt."""

    model_config = _MODEL

    fingerprint: str
    id: str
    version: str
    canonical: str
    root: str
    files: dict[str, str]

    def load(self) -> Policy:
        """Rebuild the :class:`~escalation.policy.Policy` from the stored files
        (written to a temporary folder) and check its fingerprint."""
        with tempfile.TemporaryDirectory(prefix="escalation-policy-") as tmp:
            base = Path(tmp).resolve()
            for relative, text in self.files.items():
                target = (base / relative).resolve()
                if base not in target.parents:
                    raise JournalError(f"stored policy {self.fingerprint}: unsafe path `{relative}`")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            packs = base / PACKS if any(r.startswith(f"{PACKS}/") for r in self.files) else None
            try:
                policy = load_policy(base / self.root, packs=packs)
            except PolicyError as exc:
                raise JournalError(f"stored policy {self.fingerprint} does not load: {exc}") from exc
        if policy.fingerprint != self.fingerprint:
            raise JournalError(
                f"stored policy {self.fingerprint} rebuilds with fingerprint {policy.fingerprint}"
            )
        return policy


#: Where a stored policy keeps the shipped packs it names as ``pack:<name>``.
PACKS = "_packs"


def _policy_files(root: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The root policy file and every rule pack it includes (the policy
    bundle's walk, :func:`escalation.policy.bundle.policy_files`), with a file
    that no longer parses reported as a journal error."""
    from escalation.policy.bundle import policy_files

    try:
        return policy_files(root)
    except PolicyError as exc:
        raise JournalError(f"cannot re-read policy file: {exc.issues[0]}") from exc


def capture_policy(policy: Policy) -> StoredPolicy:
    """The :class:`StoredPolicy` for a policy loaded from files.

    Re-reads the files and rebuilds the policy from them, so a file changed on
    disk since the policy was loaded is caught (:class:`JournalError`) instead
    of storing text that did not make the decisions."""
    try:
        raw, shipped = _policy_files(Path(policy.path))
    except OSError as exc:
        raise JournalError(f"cannot re-read policy `{policy.path}`: {exc.strerror}") from exc
    base = os.path.commonpath([os.path.dirname(p) for p in raw])
    try:
        files = {os.path.relpath(p, base): data.decode("utf-8") for p, data in sorted(raw.items())}
        files.update({f"{PACKS}/{name}.yaml": data.decode("utf-8") for name, data in sorted(shipped.items())})
    except UnicodeDecodeError as exc:
        raise JournalError(f"policy `{policy.path}` is not UTF-8 text") from exc
    stored = StoredPolicy(
        fingerprint=policy.fingerprint,
        id=policy.id,
        version=policy.version,
        canonical=policy.canonical,
        root=os.path.relpath(os.path.abspath(policy.path), base),
        files=files,
    )
    stored.load()  # raises when the files on disk no longer make this policy
    return stored


# ----------------------------------------------------------------- interface


@runtime_checkable
class Journal(Protocol):
    """Where decision records go: append-only, hash-chained, durable.

    ``append`` seals a draft (assigns ``seq``, ``prev`` and ``hash`` under the
    journal's write lock) and returns only once the record is committed."""

    @property
    def name(self) -> str:
        """The journal's location, for messages (never a password)."""

    @property
    def masking(self) -> Masking:
        """How inputs are masked before they are stored."""

    def append(self, draft: dict[str, Any]) -> JournalRecord:
        """Chain, commit and return one record built from ``draft``."""

    def put_policy(self, stored: StoredPolicy) -> None:
        """Store a policy's text under its fingerprint (idempotent)."""

    def get_policy(self, fingerprint: str) -> StoredPolicy | None:
        """The stored policy with ``fingerprint``, if any."""

    def scan(self) -> Iterator[RawEntry]:
        """Every stored record as text, in storage order."""

    def head(self) -> Head | None:
        """The anchor: last committed ``seq`` and ``hash`` (``None``: none yet)."""

    def close(self) -> None:
        """Release files and connections."""

    def emit(
        self, decision: Decision, *, account: Account, now: dt.datetime, policy: Policy, trace: bool
    ) -> str | None:
        """Journal one decision: every journal is a :class:`~escalation.sink.DecisionSink`."""


def seal(draft: dict[str, Any], seq: int, prev: str) -> tuple[JournalRecord, str]:
    """The record for ``draft`` at position ``seq`` after ``prev``, and its text."""
    body = {**draft, "format": RECORD_FORMAT, "seq": seq, "prev": prev}
    body["hash"] = record_hash(body)
    record = JournalRecord.model_validate(body)
    return record, canonical_json(body)


def parse_record(text: str) -> JournalRecord:
    """A stored record from its text (raises ``ValueError`` when malformed)."""
    try:
        return JournalRecord.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
