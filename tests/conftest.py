"""Shared fixtures: repository paths, the bundled CN engine, a fixed instant."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine
from escalation._bundled import SHIPPED_POLICIES

ROOT = Path(__file__).resolve().parent.parent
CN_POLICY = ROOT / "policies" / "consumer-credit-cn.yaml"
#: The shipped policies and their suites: a candidate policy a strategist leaves
#: in policies/ (as the dry-run guide suggests) is none of them.
SHIPPED = [ROOT / "policies" / f"{name}.yaml" for name in SHIPPED_POLICIES]
SHIPPED_SUITES = [p.with_name(p.stem + "_test.yaml") for p in SHIPPED]
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture(scope="session")
def cn_engine() -> Engine:
    """The bundled CN policy, native evaluator."""
    return Engine.from_file(CN_POLICY)


@pytest.fixture
def example_account() -> dict[str, Any]:
    """The bundled example account (examples/account.json)."""
    with (ROOT / "examples" / "account.json").open() as handle:
        data: dict[str, Any] = json.load(handle, parse_float=Decimal)
    return data
