"""The contact audit: what was actually done, checked against the policy.

The engine's decisions are recommendations; what reaches a customer is what
a dialer, an SMS gateway, a letter vendor or an agency did, recorded in the
account's history. :func:`audit_contacts` re-evaluates every outbound contact
of a period as of the instant it was made — the holds, and every guard
covering that tier and channel, on the history strictly before it — and
reports each one a hold or guard would have blocked, as a legal,
self-regulatory or policy breach."""

from __future__ import annotations

from escalation.contacts._asof import as_of, undated_state
from escalation.contacts._check import Breach, ContactAuditor, Violation, breach_class
from escalation.contacts.run import ActorTally, ContactAuditResult, RuleTally, audit_contacts, summary_json

__all__ = [
    "ActorTally",
    "Breach",
    "ContactAuditResult",
    "ContactAuditor",
    "RuleTally",
    "Violation",
    "as_of",
    "audit_contacts",
    "breach_class",
    "summary_json",
    "undated_state",
]
