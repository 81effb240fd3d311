"""Output rows (with reasons) of changed rows from the reference engine, the
record validated once and its facts derived once for every policy.

:meth:`Engine.decide` validates its record and derives its facts on every
call; a changed row is decided under two policies. Here the rebuilt record is
validated once, the facts are derived once for the policies whose facts'
inputs are equal (:func:`facts_inputs`: a dry-run's candidate and baseline
usually differ in conditions only), and each policy runs the engine's own
ladder (:func:`~escalation._ladder.evaluate`, ``trace=False``) on its own copy
of the situation. The ladder is asked for the output row alone (``row=True``:
no decision id, no offers of an ``act``), which is all
:func:`~escalation.portfolio.writer.decision_row` reads. A policy whose record
checks differ from the first one's (flags, currency, channels filled from
tiers, attributes, time zone), an engine with a sink, or logging turned on
takes :meth:`Engine.decide` itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from escalation import _logging
from escalation._facts import Situation, derive
from escalation._facts_static import policy_static
from escalation.decision import Decision
from escalation.engine import Engine, check_now
from escalation.policy import Policy
from escalation.portfolio.writer import decision_row
from escalation.record import Account

__all__ = ["Explainer", "facts_inputs"]


def _checks(engine: Engine) -> tuple[Any, ...]:
    """What :meth:`Engine.validate` checks a record against."""
    header = engine.policy.header
    return (engine._flags, engine._currency, engine._single, header.attributes, header.timezone)


def facts_inputs(policy: Policy) -> tuple[Any, ...]:
    """Everything :func:`~escalation._facts.derive` reads of ``policy``: two
    policies with equal inputs derive equal facts for every account (the zone,
    the tier lookups and the facts conditions read, the promise rules, the
    limitation period and the tier tags its interruptions match)."""
    static = policy_static(policy)
    header = policy.header
    return (
        header.timezone,
        header.promise,
        header.limitation,
        tuple((t.model.id, t.model.tags) for t in policy.tiers),
        tuple(getattr(static, f.name) for f in dataclasses.fields(static) if f.name != "policy"),
    )


class Explainer:
    """Output rows of validated accounts under each of ``engines`` (the first validates)."""

    def __init__(self, engines: list[Engine], now: dt.datetime) -> None:
        check_now(now)
        self.engines, self.now = engines, now
        first = _checks(engines[0])
        self.same = [_checks(e) == first and e._sink is None for e in engines]
        # each engine's facts come from the first earlier engine with equal inputs (itself if none)
        inputs = [facts_inputs(e.policy) for e in engines]
        self.facts_of = [inputs.index(key) for key in inputs]

    def rows(self, record: object) -> list[dict[str, Any]]:
        """Each engine's output row (``decision_row``) for ``record``, with its
        reason; raises as :meth:`Engine.decide` does."""
        now = self.now
        account, stamps = self.engines[0]._checked(record, now)  # type: ignore[arg-type]
        if _logging.enabled():  # the decisions are logged: made by decide itself
            return [decision_row(e.decide(account, now=now, trace=False)) for e in self.engines]
        situations: dict[int, Situation] = {}
        return [
            decision_row(self._row_decision(p, account, stamps, situations))
            if same
            else decision_row(engine.decide(account, now=now, trace=False))
            for p, (engine, same) in enumerate(zip(self.engines, self.same, strict=True))
        ]

    def _row_decision(
        self, p: int, account: Account, stamps: tuple[float, ...], situations: dict[int, Situation]
    ) -> Decision:
        # the engine's own evaluation (and fail-closed mapping) with the facts shared;
        # its decision holds what decision_row reads only
        engine, now, source = self.engines[p], self.now, self.facts_of[p]

        def facts() -> Situation:
            shared = situations.get(source)
            if shared is None:
                made = situations[source] = derive(account, now, engine.policy, stamps, read_only=True)
                return made
            return dataclasses.replace(shared, cache={})  # the same facts; a fresh per-decision memo

        return engine._evaluated(account, stamps, now, False, engine.locale, facts=facts, row=True)
