"""Differential tests: the ``rete`` evaluator (durable-rules) gives exactly the
``native`` decision — every field but ``engine`` — on every shipped policy, for
the policy tests' cases and for >= 2,000 generated records per policy
(thresholds ±1, blocking flags biased off so deep tiers are hit)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from escalation import Engine, RecordError
from escalation.backends.rete import rete_unavailable_reason
from escalation.policy._yaml import load_yaml

from .conftest import SHIPPED, SHIPPED_SUITES
from .strategies import cases

REASON = rete_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"rete backend unavailable: {REASON}")

POLICIES = SHIPPED
EXAMPLES_PER_POLICY = 2_000


def engines(path: Path) -> tuple[Engine, Engine]:
    return Engine.from_file(path), Engine.from_file(path, backend="rete")


def agree(native: Engine, rete: Engine, record: dict[str, Any], now: dt.datetime) -> None:
    try:
        expected = native.decide(record, now=now)
    except RecordError:
        with pytest.raises(RecordError):
            rete.decide(record, now=now)
        return
    got = rete.decide(record, now=now)
    assert expected.outcome() == got.outcome()
    assert ("native", "rete") == (expected.engine.backend, got.engine.backend)


@pytest.mark.parametrize("path", POLICIES, ids=[p.stem for p in POLICIES])
def test_policy_test_cases_agree(path: Path) -> None:
    """Every case of the policy's own test suites decides identically on both evaluators."""
    native, rete = engines(path)
    suites = list(SHIPPED_SUITES)
    seen = 0
    for suite in suites:
        data = load_yaml(suite.read_bytes(), str(suite)).data
        target = data.get("policy") or suite.name.replace("_test.yaml", ".yaml")
        if (suite.parent / target).resolve() != path.resolve():
            continue
        for case in data.get("cases", []):
            record = {**data.get("defaults", {}), **case["account"]}
            agree(native, rete, record, dt.datetime.fromisoformat(case["now"]))
            seen += 1
    assert seen > 0, f"no test cases found for {path.name}"


@pytest.mark.parametrize("path", POLICIES, ids=[p.stem for p in POLICIES])
def test_generated_records_agree(path: Path) -> None:
    """>= 2,000 generated records per shipped policy decide identically on both evaluators."""
    native, rete = engines(path)
    statuses: dict[str, int] = {}

    @given(cases(native.policy))
    @settings(
        max_examples=EXAMPLES_PER_POLICY,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def check(case: tuple[dict[str, Any], dt.datetime]) -> None:
        record, now = case
        agree(native, rete, record, now)
        status = native.decide(record, now=now).status
        statuses[status] = statuses.get(status, 0) + 1

    check()
    # the generator must reach every status, or the comparison proves little
    assert {"act", "hold"} <= set(statuses), statuses
    assert sum(statuses.values()) >= EXAMPLES_PER_POLICY
