"""Evaluators: how each named condition of a policy is answered for one
situation. The ladder, guards and reasons are shared; only condition truth
comes from the backend.

* ``native`` — the compiled Python closures (three-valued logic); the
  default and the source of truth. The ladder calls the closures of holds
  and tiers directly (its plan holds them; the evaluator says so with
  ``direct``, which the engine hands to ``_ladder.evaluate``) and asks
  ``truth(name)`` only for the rest.
* ``rete`` — the conditions lowered to :mod:`escalation.policy._condition` and
  compiled into one durable-rules ruleset (see :mod:`escalation.backends.rete`).
  Durable sees only field-vs-constant comparisons over integers (money in
  minor units) and strings; comparisons between two facts, arithmetic and
  set membership are computed into derived 0/1 fields first."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from escalation._currencies import minor_units
from escalation._facts import Situation, policy_catalogue
from escalation.errors import EvaluationError
from escalation.policy import Policy
from escalation.policy._expr import Compiled, FactType
from escalation.policy._lowering import Lowering, field_name, simplify

Truth = Callable[[str], bool]
BACKENDS = ("native", "rete")


def named_conditions(policy: Policy) -> dict[str, Compiled]:
    """Every condition of the policy under its stable name."""
    out: dict[str, Compiled] = {}
    for hold in policy.holds:
        out[f"hold:{hold.model.id}"] = hold.when
    for tier in policy.tiers:
        out[f"tier:{tier.model.id}"] = tier.when
    for guard in policy.guards:
        for field, compiled in guard.conditions.items():
            out[f"guard:{guard.model.id}:{field}"] = compiled
        if guard.unless is not None:
            out[f"guard:{guard.model.id}:unless"] = guard.unless
    for offer in policy.offers:
        out[f"offer:{offer.model.id}"] = offer.when
    return out


class Conditions(Protocol):
    """Answers the policy's named conditions for one situation.

    ``direct``: every answer is the compiled closure's (``compiled.truth(values)
    is True``), so the ladder may call the closures it holds instead of asking
    ``truth(name)``; an evaluator that answers any other way says ``False``."""

    name: str
    direct: bool

    def truth_for(self, sit: Situation) -> Truth: ...


class NativeConditions:
    """Condition truth from the compiled closures."""

    name = "native"
    direct = True  # truth_for answers with the compiled closures themselves

    def __init__(self, policy: Policy) -> None:
        self._compiled = named_conditions(policy)
        # each name's closure looked up once here, not its Compiled on every question
        self._truth = {name: compiled.truth for name, compiled in self._compiled.items()}

    def truth_for(self, sit: Situation) -> Truth:
        values = sit.values
        truth = self._truth
        return lambda name: truth[name](values) is True


class ReteConditions:
    """Condition truth from durable-rules, one event per evaluation."""

    name = "rete"
    direct = False

    def __init__(self, policy: Policy) -> None:
        from escalation.backends.rete import MAX_SAFE_INT, ReteMatcher

        self._max = MAX_SAFE_INT
        lowering = Lowering(money_scale=10 ** minor_units(policy.header.currency))
        conditions = {
            name: simplify(lowering.lower(compiled.tree))
            for name, compiled in named_conditions(policy).items()
        }
        self._derived = dict(lowering.derived)
        catalogue = policy_catalogue(policy)
        used = set().union(*(c.facts for c in named_conditions(policy).values()))
        self._fields: list[tuple[str, str, FactType]] = [
            (name, field_name(name), catalogue[name])
            for name in sorted(used)
            if catalogue[name] is not FactType.SET
            # fractional numbers (lender attributes) are only read by derived fields
            and not (catalogue[name] is FactType.NUMBER and name.startswith("attributes."))
        ]
        self._scale = 10 ** minor_units(policy.header.currency)
        self._matcher = ReteMatcher(conditions)

    def _event(self, values: dict[str, Any]) -> dict[str, int | str]:
        event: dict[str, int | str] = {}
        for name, fname, ftype in self._fields:
            if name not in values:
                continue
            raw = values[name]
            if ftype is FactType.STRING:
                event[fname] = str(raw)
                continue
            if ftype is FactType.BOOL:
                number = int(bool(raw))
            elif ftype is FactType.MONEY:
                scaled = Decimal(raw) * self._scale
                if scaled != scaled.to_integral_value():
                    raise EvaluationError(f"`{name}` is not a whole number of minor units")
                number = int(scaled)
            else:
                number = int(raw)
            if abs(number) > self._max:
                raise EvaluationError(f"`{name}` is too large for the rete backend")
            event[fname] = number
        for fname, truth in self._derived.items():
            value = truth(values)
            if value is not None:
                event[fname] = int(value)
        return event

    def truth_for(self, sit: Situation) -> Truth:
        matched: frozenset[str] = self._matcher.matching(self._event(sit.values))
        return matched.__contains__


def make_conditions(policy: Policy, backend: str) -> Conditions:
    """The evaluator called ``backend`` for ``policy``."""
    if backend == "native":
        return NativeConditions(policy)
    if backend == "rete":
        return ReteConditions(policy)
    raise ValueError(f"unknown backend `{backend}`; choose one of: {', '.join(BACKENDS)}")
