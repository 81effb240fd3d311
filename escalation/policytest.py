"""Policy tests: ``<policy>_test.yaml`` files of cases (an account, an
instant, the expected decision) run against the policy beside them, the way
OPA's ``_test.rego`` files are. A suite fails on any mismatch, on an empty
suite, and — with coverage on — when a tier never acts, a hold never applies,
a guard never blocks or a status never occurs in any case."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from escalation.decision import Decision
from escalation.engine import Backend, Engine
from escalation.errors import EscalationError, PolicyError, PolicyIssue, RecordError
from escalation.policy._yaml import YamlLoadError, load_yaml

__all__ = ["CaseResult", "SuiteResult", "discover", "run_suite"]

_MODEL = ConfigDict(extra="forbid", frozen=True)


class Expectation(BaseModel):
    """What a case expects of the decision (only the keys given are checked)."""

    model_config = _MODEL

    status: Literal["act", "offer", "wait", "hold", "none", "error"]
    action: str | None = None
    channel: str | None = None
    hold: str | None = None
    agency: str | None = None
    blocked: tuple[str, ...] = ()
    not_blocked: tuple[str, ...] = ()
    reason_contains: tuple[str, ...] = ()
    next_eligible_at: str | None = None
    error_field: str | None = None
    offers: tuple[str, ...] | None = Field(
        default=None, description="the ids of the decision's offers, in order (`[]`: none)"
    )
    offer_contains: tuple[str, ...] = Field(
        default=(), description="fragments of the offers' summaries (figures, dates)"
    )


class Case(BaseModel):
    """One test case."""

    model_config = _MODEL

    name: str = Field(min_length=1)
    now: str
    account: dict[str, Any]
    expect: Expectation


class Suite(BaseModel):
    """A ``_test.yaml`` file."""

    model_config = _MODEL

    escalation: Literal[1]
    policy: str | None = None
    coverage: bool = True
    #: guards that never block under this policy by construction (no tier of the
    #: shape they refuse), each with the reason; tested elsewhere
    coverage_exempt: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    cases: tuple[Case, ...] = ()


@dataclass
class CaseResult:
    """The outcome of one case."""

    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    decision: Decision | None = None


@dataclass
class SuiteResult:
    """The outcome of one test file."""

    path: str
    policy: str
    cases: list[CaseResult] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and bool(self.cases)
            and all(c.passed for c in self.cases)
            and not self.uncovered
        )


def discover(target: str | Path) -> list[Path]:
    """Test files at ``target``: the file itself, ``<policy>_test.yaml`` beside
    a policy, or every ``*_test.yaml`` under a directory (sorted)."""
    path = Path(target)
    if path.is_dir():
        return sorted(path.rglob("*_test.yaml"))
    if path.name.endswith("_test.yaml"):
        return [path]
    beside = path.with_name(path.stem + "_test.yaml")
    return [beside] if beside.exists() else []


def _parse_now(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"`now` {text} has no UTC offset")
    return moment


def _check(case: Case, decision: Decision | None, error: RecordError | None) -> list[str]:
    exp = case.expect
    problems: list[str] = []
    if exp.status == "error":
        if error is None:
            problems.append(f"expected a record error, got status `{decision.status if decision else '?'}`")
        elif exp.error_field and not any(i.field == exp.error_field for i in error.issues):
            problems.append(f"expected an error on `{exp.error_field}`, got: {error}")
        return problems
    if error is not None or decision is None:
        return [f"record error: {error}"]
    if decision.status != exp.status:
        problems.append(f"status: expected `{exp.status}`, got `{decision.status}` ({decision.reason})")
    for key in ("action", "channel", "hold", "agency"):
        want = getattr(exp, key)
        got = getattr(decision, key)
        if want is not None and want != got:
            problems.append(f"{key}: expected `{want}`, got `{got}`")
    got_blocked = {b.guard for b in decision.blocked}
    for guard in exp.blocked:
        if guard not in got_blocked:
            problems.append(f"blocked: expected guard `{guard}`, got {sorted(got_blocked) or 'none'}")
    for guard in exp.not_blocked:
        if guard in got_blocked:
            problems.append(f"blocked: guard `{guard}` should not block")
    for fragment in exp.reason_contains:
        if fragment not in decision.reason:
            problems.append(f"reason: `{fragment}` not in `{decision.reason}`")
    if exp.offers is not None and list(exp.offers) != [o.id for o in decision.offers]:
        problems.append(f"offers: expected {list(exp.offers)}, got {[o.id for o in decision.offers]}")
    summaries = " | ".join(o.summary for o in decision.offers)
    for fragment in exp.offer_contains:
        if fragment not in summaries:
            problems.append(f"offers: `{fragment}` not in `{summaries}`")
    if exp.next_eligible_at is not None:
        want_at = _parse_now(exp.next_eligible_at)
        if decision.next_eligible_at != want_at:
            got_at = decision.next_eligible_at.isoformat() if decision.next_eligible_at else None
            problems.append(f"next_eligible_at: expected {want_at.isoformat()}, got {got_at}")
    return problems


def run_suite(path: str | Path, *, backend: Backend = "native") -> SuiteResult:
    """Run one test file. Policy errors propagate as :class:`PolicyError`."""
    path = Path(path)
    try:
        located = load_yaml(path.read_bytes(), str(path))
    except YamlLoadError as exc:
        raise PolicyError([exc.issue]) from None
    try:
        suite = Suite.model_validate(located.data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False):
            line, col = located.position(tuple(err["loc"]))
            issues.append(PolicyIssue(str(path), line, col, "invalid-test", err["msg"].lower()))
        raise PolicyError(issues) from None
    policy_path = path.parent / (suite.policy or path.name.replace("_test.yaml", ".yaml"))
    engine = Engine.from_file(policy_path, backend=backend)
    result = SuiteResult(path=str(path), policy=str(policy_path))
    acted: set[str] = set()
    held: set[str] = set()
    blocking: set[str] = set()
    statuses: set[str] = set()
    offered: set[str] = set()
    for case in suite.cases:
        account = {**suite.defaults, **case.account}
        decision: Decision | None = None
        error: RecordError | None = None
        try:
            decision = engine.decide(account, now=_parse_now(case.now))
        except RecordError as exc:
            error = exc
        except (EscalationError, ValueError) as exc:
            result.cases.append(CaseResult(case.name, False, [f"error: {exc}"]))
            continue
        problems = _check(case, decision, error)
        result.cases.append(CaseResult(case.name, not problems, problems, decision))
        if decision is not None:
            statuses.add(decision.status)
            offered.update(o.id for o in decision.offers)
            if decision.status == "act" and decision.action:
                acted.add(decision.action)
            if decision.hold:
                held.add(decision.hold)
            blocking.update(
                t.rule.removeprefix("guard:")
                for t in decision.trace
                if t.rule.startswith("guard:") and t.matched
            )
    if suite.coverage and suite.cases:
        policy = engine.policy
        result.uncovered += [
            f"tier `{t.model.id}` never acts" for t in policy.tiers if t.model.id not in acted
        ]
        result.uncovered += [
            f"hold `{h.model.id}` never applies" for h in policy.holds if h.model.id not in held
        ]
        result.uncovered += [
            f"guard `{g.model.id}` never blocks"
            for g in policy.guards
            if g.model.id not in blocking and g.model.id not in suite.coverage_exempt
        ]
        result.uncovered += [
            f"status `{s}` never occurs" for s in ("act", "wait", "hold", "none") if s not in statuses
        ]
        result.uncovered += [
            f"offer `{o.model.id}` is never offered" for o in policy.offers if o.model.id not in offered
        ]
        if any(t.model.offer_first for t in policy.tiers) and "offer" not in statuses:
            result.uncovered.append("status `offer` never occurs")
    if not suite.cases:
        result.error = "empty suite: no cases"
    return result
