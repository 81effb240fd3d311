"""Golden snapshots: the full decisions (reason, blocked, trace) for every case
of the shipped policy tests, with a frozen clock, are compared byte for byte
with tests/golden/<policy>.jsonl.

Reasons have a snapshot per locale: the full decisions are in English
(tests/golden/<policy>.jsonl); tests/golden/zh-CN/<policy>.jsonl holds each
case's status and Chinese reason.

An intended change of output is accepted by regenerating the snapshots —
`ESCALATION_UPDATE_GOLDEN=1 pytest tests/test_golden.py` — and reviewing the
diff like code."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from escalation import Engine, RecordError
from escalation.policy._yaml import load_yaml

from .conftest import SHIPPED_SUITES

GOLDEN = Path(__file__).parent / "golden"
SUITES = SHIPPED_SUITES


def render(suite: Path, locale: str = "en") -> str:
    data = load_yaml(suite.read_bytes(), str(suite)).data
    policy = suite.parent / (data.get("policy") or suite.name.replace("_test.yaml", ".yaml"))
    engine = Engine.from_file(policy, locale=locale)  # type: ignore[arg-type]
    lines = []
    for case in data["cases"]:
        record = {**data.get("defaults", {}), **case["account"]}
        try:
            out = engine.decide(record, now=dt.datetime.fromisoformat(case["now"])).model_dump(
                mode="json", exclude={"engine"}
            )
            if locale != "en":  # the rest of the decision does not depend on the locale
                out = {"status": out["status"], "reason": out["reason"]}
        except RecordError as exc:
            out = {"error": [[issue.field, issue.message] for issue in exc.issues]}
        lines.append(json.dumps({"case": case["name"], **out}, sort_keys=True, ensure_ascii=False))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("suite", SUITES, ids=[s.stem for s in SUITES])
def test_decisions_match_snapshot(suite: Path, locale: str) -> None:
    """Every suite case's decision (en: in full; zh-CN: its reason) equals its golden snapshot."""
    folder = GOLDEN if locale == "en" else GOLDEN / locale
    golden = folder / (suite.name.replace("_test.yaml", ".jsonl"))
    actual = render(suite, locale)
    if os.environ.get("ESCALATION_UPDATE_GOLDEN") == "1":
        folder.mkdir(exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"no snapshot {golden.name}: run with ESCALATION_UPDATE_GOLDEN=1"
    expected = golden.read_text(encoding="utf-8").splitlines()
    got = actual.splitlines()
    for want, have in zip(expected, got, strict=False):
        assert json.loads(want) == json.loads(have)
    assert len(expected) == len(got)
    assert golden.read_text(encoding="utf-8") == actual
