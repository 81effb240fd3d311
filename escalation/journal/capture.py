"""Recording decisions: turn a decision and its input into a masked, chained
journal record. Every journal backend is a :class:`~escalation.sink.DecisionSink`
through :func:`emit_to_journal`."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import threading
import uuid
import weakref
from typing import Any

from escalation.decision import Decision
from escalation.errors import JournalError
from escalation.journal.masking import mask_input
from escalation.journal.records import Journal, JournalRecord, capture_policy
from escalation.policy import Policy
from escalation.record import Account


class _Known:
    """Fingerprints already stored, per journal object (weakly keyed, so a
    new journal never inherits a collected one's memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

    def ensure(self, journal: Journal, policy: Policy) -> None:
        with self._lock:
            try:
                if policy.fingerprint in self._seen.get(journal, set()):
                    return
            except TypeError:  # not weakly referenceable: ask the journal every time
                pass
        if journal.get_policy(policy.fingerprint) is None:
            journal.put_policy(capture_policy(policy))
        with self._lock, contextlib.suppress(TypeError):
            self._seen.setdefault(journal, set()).add(policy.fingerprint)


_known = _Known()


def _relabel(decision_json: str, replaced: dict[str, str]) -> str:
    """The decision text as it reads on the masked input: masked values
    replaced by their pseudonyms. (Address labels need no change: they number
    addresses in order of first use, which masking keeps.)"""
    text = decision_json
    for original, masked in replaced.items():
        text = text.replace(json.dumps(original, ensure_ascii=False), json.dumps(masked, ensure_ascii=False))
    return text


def record_decision(
    journal: Journal,
    account: Account | dict[str, Any],
    now: dt.datetime,
    decision: Decision,
    policy: Policy,
    *,
    trace: bool | None = None,
) -> JournalRecord:
    """Journal one decision made by ``policy`` for ``account`` at ``now``.

    This is what ``Engine(..., journal=...)`` calls after every decision; call
    it yourself from a pipeline that decides otherwise (portfolio dry-runs).
    ``trace`` says whether the decision was made with a trace (by default:
    whether it has one), so that replay decides the same way. Raises
    :class:`JournalError` when the record cannot be committed."""
    if decision.policy.fingerprint != policy.fingerprint:
        raise JournalError("the decision was not made by this policy")
    if trace is None:
        trace = bool(decision.trace)
    if not isinstance(account, Account):
        from escalation.record import parse_account

        account = parse_account(account)
    _known.ensure(journal, policy)
    data = account.model_dump(mode="json")
    for name in ("flags", "opt_out"):  # sets: stored sorted, so records are deterministic
        data[name] = sorted(data[name])
    masking = journal.masking
    masked = mask_input(data, masking)
    returned = decision.to_json()
    draft = {
        "id": str(uuid.uuid4()),
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "account_id": masked.data["id"],
        "now": now.isoformat(),
        "input": masked.data,
        "masked": {"paths": list(masked.paths), "method": "hmac-sha256", "key_id": masking.key_id},
        "trace": trace,
        "decision": _relabel(returned, masked.replaced) if masked.replaced else returned,
        "decision_sha256": "sha256:" + hashlib.sha256(returned.encode()).hexdigest(),
        "policy": decision.policy.model_dump(mode="json"),
        "engine": decision.engine.model_dump(mode="json"),
    }
    return journal.append(draft)


def emit_to_journal(
    journal: Journal, decision: Decision, *, account: Account, now: dt.datetime, policy: Policy, trace: bool
) -> str:
    """A journal as a :class:`~escalation.sink.DecisionSink`: record the
    decision and return the record's id."""
    return record_decision(journal, account, now, decision, policy, trace=trace).id
