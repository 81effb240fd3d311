"""Verify a journal's integrity: recompute every record's hash and link,
check the order and the head anchor, and rebuild every stored policy; name
the first bad record (edited, deleted, reordered, truncated)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from escalation.errors import JournalError
from escalation.journal.records import (
    GENESIS,
    Head,
    Journal,
    JournalRecord,
    RawEntry,
    parse_record,
    record_hash,
)

__all__ = ["Problem", "VerifyReport", "verify"]


@dataclass(frozen=True)
class Problem:
    """One integrity failure: what kind, which record, where, and why.

    Kinds: ``corrupt`` (not a readable record), ``edited`` (content does not
    match its hash), ``chain`` (does not link to the record before it),
    ``deleted``, ``reordered``, ``truncated``, ``anchor`` (the head anchor is
    missing or does not match), ``unanchored`` (records beyond the head),
    ``policy`` (a stored policy is missing or does not rebuild to its
    fingerprint)."""

    kind: str
    seq: int | None
    id: str | None
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclass
class VerifyReport:
    """The result of :func:`verify`: ``ok`` when no problem was found."""

    journal: str
    records: int = 0
    head: str | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    policies: int = 0

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first bad record's problem, in chain order."""
        return self.problems[0] if self.problems else None


def _parse(raw: RawEntry) -> tuple[JournalRecord | None, dict[str, Any] | None, str | None]:
    try:
        data = json.loads(raw.text)
        record = parse_record(raw.text)
    except ValueError as exc:
        return None, None, str(exc)[:200]
    except RecursionError:
        return None, None, "nested too deeply"
    return record, data, None


_LIVE_ATTEMPTS = 3


def _head_now(journal: Journal) -> Head | None:
    try:
        return journal.head()
    except JournalError:
        return None


def verify(
    journal: Journal,
    *,
    check_policies: bool = True,
    expect_head: str | None = None,
    allow_unanchored_tail: bool = False,
) -> VerifyReport:
    """Check the whole journal; the first problem names the first bad record.

    On a live journal a read can meet an append in progress: when a pass finds
    a problem *and* the head moved during that pass, the pass is repeated (up
    to three times). A journal at rest is reported on its first pass, so a real
    problem is never retried away."""
    for _ in range(_LIVE_ATTEMPTS):
        started = _head_now(journal)
        report = _verify_once(journal, check_policies, expect_head, allow_unanchored_tail)
        if not report.problems or _head_now(journal) == started:
            break  # whole, or at rest during this pass: its answer stands
    return report


def _verify_once(
    journal: Journal, check_policies: bool, expect_head: str | None, allow_unanchored_tail: bool
) -> VerifyReport:
    """One pass of :func:`verify`.

    Safe on a live journal: the head is read *before* the records (every
    record it anchors must then be present) and again after them (every
    record read must then be anchored), so writers appending meanwhile cause
    no false alarm. A record the head does not anchor is ``unanchored`` (a
    record appended outside the journal, or by a writer killed between its
    write and its head update): a problem unless ``allow_unanchored_tail``.

    ``expect_head`` (``SEQ:HASH`` or ``HASH``, as printed by an earlier
    verify and kept elsewhere) also checks that the chain still contains that
    record unchanged: it catches a chain rewritten from some point on,
    anchor included."""
    out = VerifyReport(journal=journal.name)
    try:
        before: Head | None = journal.head()
    except JournalError as exc:
        out.problems.append(Problem("anchor", None, None, journal.name, str(exc)))
        return out
    parsed: list[tuple[RawEntry, JournalRecord | None, dict[str, Any] | None, str | None]] = []
    torn: RawEntry | None = None
    for raw in journal.scan():
        if raw.torn:
            torn = raw
            continue
        parsed.append((raw, *_parse(raw)))
    position_of = {rec.seq: raw.where for raw, rec, _, _ in parsed if rec is not None}
    hashes: dict[int, str] = {}
    prev = GENESIS
    for index, (raw, rec, data, error) in enumerate(parsed, start=1):
        problem = _check_one(index, raw, rec, data, error, prev, position_of)
        if problem is not None:
            out.problems.append(problem)
            break
        assert rec is not None
        prev = rec.hash
        hashes[rec.seq] = rec.hash
    out.records = len(parsed)
    if not out.problems:
        _check_head(journal, out, hashes, torn, before, allow_unanchored_tail)
    if not out.problems and expect_head:
        _check_expected(expect_head, hashes, out)
    if not out.problems and torn is not None:
        out.notes.append(
            f"truncated tail: {torn.where} is an incomplete record ({len(torn.text.encode())} bytes), "
            "a write "
            f"that never completed and was never acknowledged; the {out.records} complete records verify"
        )
    if check_policies:
        _check_policies(journal, parsed, out)
    return out


def _check_one(
    index: int,
    raw: RawEntry,
    rec: JournalRecord | None,
    data: dict[str, Any] | None,
    error: str | None,
    prev: str,
    position_of: dict[int, str],
) -> Problem | None:
    if rec is None or data is None:
        return Problem(
            "corrupt", index, None, raw.where, f"record {index} is not a readable record ({error})"
        )
    if record_hash(data) != rec.hash:
        return Problem(
            "edited", rec.seq, rec.id, raw.where,
            f"record seq {rec.seq} (id {rec.id}) was edited: its content does not match its hash",
        )  # fmt: skip
    if rec.seq != index:
        if index in position_of:
            return Problem(
                "reordered", rec.seq, rec.id, raw.where,
                f"record seq {rec.seq} (id {rec.id}) stands where seq {index} belongs "
                f"(seq {index} is at {position_of[index]}): records were reordered",
            )  # fmt: skip
        missing = f"{index}" if rec.seq == index + 1 else f"{index}..{rec.seq - 1}"
        return Problem(
            "deleted", index, None, raw.where,
            f"record seq {missing} is missing before record seq {rec.seq} (id {rec.id}): deleted",
        )  # fmt: skip
    if rec.prev != prev:
        return Problem(
            "chain", rec.seq, rec.id, raw.where,
            f"record seq {rec.seq} (id {rec.id}) does not link to record seq {rec.seq - 1}: "
            f"that record was replaced (edited and re-hashed) or this one inserted",
        )  # fmt: skip
    return None


def _check_head(
    journal: Journal,
    out: VerifyReport,
    hashes: dict[int, str],
    torn: RawEntry | None,
    before: Head | None,
    allow_unanchored: bool,
) -> None:
    try:
        after: Head | None = journal.head()
    except JournalError as exc:
        out.problems.append(Problem("anchor", None, None, journal.name, str(exc)))
        return
    count = out.records
    anchored = before if before is not None and before.seq > 0 else None
    if anchored is not None and anchored.seq > count:
        missing = f"{count + 1}" if anchored.seq == count + 1 else f"{count + 1}..{anchored.seq}"
        extra = f"; {torn.where} is a torn fragment" if torn is not None else ""
        out.problems.append(
            Problem(
                "truncated",
                count + 1,
                None,
                f"after record {count}",
                f"truncated: the head anchors record seq {anchored.seq} but only {count} records are "
                f"present; record seq {missing} is missing{extra}",
            )
        )
        return
    for head in (anchored, after):
        if head is not None and 0 < head.seq <= count and hashes.get(head.seq) != head.hash:
            out.problems.append(
                Problem(
                    "anchor", head.seq, None, "head", f"the head anchor does not match record seq {head.seq}"
                )
            )
            return
    last_anchored = after.seq if after is not None else 0
    if count and last_anchored == 0:
        out.problems.append(Problem("anchor", None, None, "head", "the head anchor is missing"))
        return
    if last_anchored < count:
        first = last_anchored + 1
        message = (
            f"record seq {first}..{count} lie beyond the head anchor (seq {last_anchored}): "
            "appended outside the journal, or by a writer stopped before its head update"
        )
        if allow_unanchored:
            out.notes.append(f"unanchored tail allowed: {message}")
        else:
            out.problems.append(Problem("unanchored", first, None, "head", message))
            return
    if hashes:
        last = max(hashes)
        out.head = f"{last}:{hashes[last]}"


def _check_expected(expect: str, hashes: dict[int, str], out: VerifyReport) -> None:
    seq_text, sep, digest = expect.partition(":")
    if not (sep and seq_text.isdigit()):
        seq_text, digest = "", expect
    if seq_text:
        seq = int(seq_text)
        if hashes.get(seq) != digest:
            out.problems.append(
                Problem(
                    "anchor", seq, None, f"seq {seq}", f"record seq {seq} no longer has the expected hash"
                )
            )
    elif digest not in hashes.values():
        out.problems.append(
            Problem("anchor", None, None, "chain", f"no record has the expected hash {digest}")
        )


def _check_policies(
    journal: Journal,
    parsed: list[tuple[RawEntry, JournalRecord | None, dict[str, Any] | None, str | None]],
    out: VerifyReport,
) -> None:
    first_use: dict[str, tuple[RawEntry, JournalRecord]] = {}
    for raw, rec, _, _ in parsed:
        if rec is not None and rec.policy.fingerprint not in first_use:
            first_use[rec.policy.fingerprint] = (raw, rec)
    for fingerprint, (raw, rec) in first_use.items():
        try:
            stored = journal.get_policy(fingerprint)
            if stored is None:
                raise JournalError(f"policy {fingerprint} is not stored")
            if "sha256:" + hashlib.sha256(stored.canonical.encode()).hexdigest() != fingerprint:
                raise JournalError(f"stored policy {fingerprint}: its canonical text does not match")
            stored.load()
        except JournalError as exc:
            out.problems.append(Problem("policy", rec.seq, rec.id, raw.where, str(exc)))
        else:
            out.policies += 1
