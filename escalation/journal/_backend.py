"""What the file and database backends share."""

from __future__ import annotations

import datetime as dt
import os
import threading

from escalation.decision import Decision
from escalation.journal.capture import emit_to_journal
from escalation.journal.masking import Masking
from escalation.policy import Policy
from escalation.record import Account


class _JournalBase:
    """What file-based backends share: masking, a write lock, fork safety."""

    def __init__(self, masking: Masking | None) -> None:
        self._masking = masking if masking is not None else Masking.from_env()
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @property
    def masking(self) -> Masking:
        """How inputs are masked before they are stored."""
        return self._masking

    def emit(
        self, decision: Decision, *, account: Account, now: dt.datetime, policy: Policy, trace: bool
    ) -> str:
        """Journal ``decision`` (the engine's :class:`~escalation.sink.DecisionSink` call)."""
        return emit_to_journal(self, decision, account=account, now=now, policy=policy, trace=trace)  # type: ignore[arg-type]

    def _forked(self) -> bool:
        # descriptors and connections must not be shared with a forked child
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            return True
        return False
