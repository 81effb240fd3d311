"""The ``rete`` evaluator's adapter: the only module that imports durable-rules.

Conditions arrive already lowered (:mod:`escalation.policy._condition`: negation
normal form over integer and string fields). Each named condition becomes one
rule of a single durable ruleset; an evaluation asserts the flattened facts as
one fact, collects the names of every rule whose action fires, then retracts
the fact, so nothing is carried from one call to the next.

Design choices forced by durable-rules 2.0.28 (see docs/backends.md):

* the low-level engine API, never ``Host``: the host starts timer threads
  that can crash the process;
* one durable session (``sid``) for the whole matcher and a lock around each
  evaluation: the C engine keeps per-ruleset state that is not safe to drive
  from several threads, and sessions are capped (1024) and hashed to 32 bits;
* every comparison is paired with an existence test, so a missing field never
  matches whatever durable's own null semantics are;
* the ruleset definition is built fresh (durable mutates what it is given),
  numbers are integers (durable fails on exponent notation), and durable's
  exceptions never leave this module.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
from collections.abc import Mapping
from typing import Any

from escalation.errors import BackendUnavailableError, EvaluationError
from escalation.policy._condition import AllOf, AnyOf, Atom, Cond, Const

__all__ = ["MAX_SAFE_INT", "ReteMatcher", "rete_unavailable_reason"]

# Measured with durable-rules 2.0.28: integers compare exactly across the whole
# signed 64-bit range (2**53 + 1 > 2**53, 2**62 + 1 != 2**62, 2**63 - 2 ± 1);
# the caller refuses anything larger rather than let durable reinterpret it.
MAX_SAFE_INT = 2**63 - 1

_OPS = {"==": None, "!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_MARK = "escalation_fact__"  # always present: a catch-all rule keeps durable from raising
_names = itertools.count()
_names_lock = threading.Lock()


def _engine() -> Any:
    from durable import engine  # the one durable import in the package

    return engine.durable_rules_engine


def rete_unavailable_reason() -> str | None:
    """``None`` when durable-rules imports and works here; otherwise why not."""
    try:
        _engine()
    except ModuleNotFoundError as exc:
        if sys.version_info >= (3, 13):
            return (
                "durable-rules is not installed: release 2.0.28 does not import on Python "
                f"{sys.version_info.major}.{sys.version_info.minor} "
                "(the [rete] extra installs it on Python < 3.13 only)"
            )
        return (
            f"durable-rules is not installed ({exc}): pip install 'escalation[rete]' "
            "(Python < 3.13; durable-rules builds from source with a C compiler)"
        )
    except Exception as exc:  # a broken native extension
        return (
            f"durable-rules does not import on Python {sys.version_info.major}.{sys.version_info.minor}: "
            f"{type(exc).__name__}: {exc}"
        )
    return None


def _expression(cond: Cond) -> dict[str, Any]:
    if isinstance(cond, Atom):
        op = _OPS[cond.op]
        test = {cond.field: cond.value} if op is None else {op: {cond.field: cond.value}}
        return {"$and": [{"$ex": {cond.field: 1}}, test]}
    if isinstance(cond, AllOf):
        return {"$and": [_expression(item) for item in cond.items]}
    if isinstance(cond, AnyOf):
        return {"$or": [_expression(item) for item in cond.items]}
    raise AssertionError(f"constant {cond!r} reached the durable compiler")  # pragma: no cover


def _flatten(cond: Cond) -> Cond:
    """Drop empty conjunctions/disjunctions durable cannot express."""
    if isinstance(cond, AllOf | AnyOf):
        items = tuple(_flatten(i) for i in cond.items)
        if not items:
            return Const(isinstance(cond, AllOf))
        if any(isinstance(i, Const) for i in items):
            conj = isinstance(cond, AllOf)
            if any(isinstance(i, Const) and i.value != conj for i in items):
                return Const(not conj)
            items = tuple(i for i in items if not isinstance(i, Const))
            if not items:
                return Const(conj)
        return type(cond)(items)
    return cond


class ReteMatcher:
    """Which of a set of named conditions hold for one event, answered by
    durable-rules. Thread-safe; holds no state between calls."""

    def __init__(self, conditions: Mapping[str, Cond]) -> None:
        reason = rete_unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"the rete backend is unavailable: {reason}")
        self._engine = _engine()
        self._always: frozenset[str] = frozenset()
        self._rule_names: dict[str, str] = {}
        always = []
        rules: dict[str, Any] = {"catch_all": {"all": [{"m": {"$ex": {_MARK: 1}}}]}}
        for index, (name, cond) in enumerate(sorted(conditions.items())):
            flat = _flatten(cond)
            if isinstance(flat, Const):
                if flat.value:
                    always.append(name)
                continue
            rule = f"c{index}"
            self._rule_names[rule] = name
            rules[rule] = {"all": [{"m": _expression(flat)}]}
        self._always = frozenset(always)
        with _names_lock:
            ruleset = f"escalation_{next(_names)}"
        try:
            self._handle = self._engine.create_ruleset(ruleset, json.dumps(rules))
        except Exception as exc:  # durable raises bare exceptions with error codes
            if "error code: 113" in str(exc):  # ERR_EXPRESSION_LIMIT_EXCEEDED
                raise EvaluationError(
                    "durable-rules refused the compiled conditions: a condition has more comparisons "
                    "than one durable rule holds (32 expressions: about 14 comparisons side by side, "
                    "fewer when nested); the native evaluator has no such limit"
                ) from None
            raise EvaluationError(f"durable-rules refused the compiled conditions: {exc}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Free durable's ruleset (also done when the matcher is collected)."""
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            with contextlib.suppress(Exception):  # nothing useful to do at teardown
                self._engine.delete_ruleset(handle)

    def __del__(self) -> None:
        self.close()

    def matching(self, event: Mapping[str, int | str]) -> frozenset[str]:
        """Names of the conditions that are true for ``event``."""
        fact: dict[str, int | str] = dict(event)
        fact[_MARK] = 1
        fact["sid"] = "0"
        fact["id"] = "f"
        text = json.dumps(fact)
        fired = set(self._always)
        engine = self._engine
        with self._lock:
            try:
                result = engine.assert_fact(self._handle, text)
                state = result[1]
                started = engine.start_action_for_state(self._handle, state)
                message = started[1] if started else None
                while message:
                    for rule in json.loads(message):
                        name = self._rule_names.get(rule)
                        if name is not None:
                            fired.add(name)
                    message = engine.complete_and_start_action(self._handle, state)
            except Exception as exc:
                raise EvaluationError(f"durable-rules failed to evaluate: {exc}") from None
            finally:
                with contextlib.suppress(Exception):  # it may not have been asserted
                    engine.retract_fact(self._handle, text)
        return frozenset(fired)
