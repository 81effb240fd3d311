"""Where decisions go after they are made: the engine emits each decision to
an optional :class:`DecisionSink` before returning it, and never knows what
the sink is (a journal, a queue, a test double). Every journal backend is a
sink; :class:`ListSink` keeps decisions in memory for tests."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from escalation.decision import Decision

if TYPE_CHECKING:
    from escalation.policy import Policy
    from escalation.record import Account

__all__ = ["DecisionSink", "ListSink", "SinkEntry"]


@runtime_checkable
class DecisionSink(Protocol):
    """Receives every decision the engine makes, before it is returned.

    ``emit`` must raise (an :class:`~escalation.errors.EscalationError`) when it
    cannot keep the decision: the engine then fails the call instead of
    returning a decision that was not kept (fail closed). It returns an
    identifier of what it stored (logged with the decision), or ``None``."""

    def emit(
        self, decision: Decision, *, account: Account, now: dt.datetime, policy: Policy, trace: bool
    ) -> str | None:
        """Keep one decision made by ``policy`` for ``account`` at ``now``."""


@dataclass(frozen=True)
class SinkEntry:
    """One decision as a sink received it."""

    decision: Decision
    account: Account
    now: dt.datetime
    trace: bool


class ListSink:
    """A sink that keeps every decision in memory (thread-safe), for tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[SinkEntry] = []

    def emit(
        self, decision: Decision, *, account: Account, now: dt.datetime, policy: Policy, trace: bool
    ) -> str:
        """Append the decision; its position is its id."""
        with self._lock:
            self.entries.append(SinkEntry(decision, account, now, trace))
            return str(len(self.entries))
