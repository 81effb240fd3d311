"""Reasons of changed rows from the reference engine, with the record
validated once for every policy.

:meth:`Engine.decide` validates its record on every call; a changed row is
decided under two policies, so validating the rebuilt record once and handing
the validated account (and its event timestamps) to each policy's evaluation
saves the second and third validations. The evaluation is the engine's own
(:meth:`Engine._evaluated`, ``trace=False``); a policy whose
record checks differ from the first one's (flags, currency, channels filled
from tiers, attributes, time zone), an engine with a sink, or logging turned
on takes :meth:`Engine.decide` itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

from escalation import _logging
from escalation.decision import Decision
from escalation.engine import Engine, check_now
from escalation.record import Account

__all__ = ["Explainer"]


def _checks(engine: Engine) -> tuple[Any, ...]:
    """What :meth:`Engine.validate` checks a record against."""
    header = engine.policy.header
    return (engine._flags, engine._currency, engine._single, header.attributes, header.timezone)


class Explainer:
    """Decides validated accounts under each of ``engines`` (the first validates)."""

    def __init__(self, engines: list[Engine], now: dt.datetime) -> None:
        check_now(now)
        self.engines, self.now = engines, now
        first = _checks(engines[0])
        self.same = [_checks(e) == first and e._sink is None for e in engines]

    def decisions(self, record: object) -> list[Decision]:
        """Each engine's decision of ``record`` (``trace=False``); raises as
        :meth:`Engine.decide` does."""
        now = self.now
        account, stamps = self.engines[0]._checked(record, now)  # type: ignore[arg-type]
        fast = not _logging.enabled()
        return [
            self._decide(engine, account, stamps)
            if fast and same
            else engine.decide(account, now=now, trace=False)
            for engine, same in zip(self.engines, self.same, strict=True)
        ]

    def _decide(self, engine: Engine, account: Account, stamps: tuple[float, ...]) -> Decision:
        # the engine's own evaluation (and fail-closed mapping), without a second validation
        return engine._evaluated(account, stamps, self.now, False, engine.locale)
