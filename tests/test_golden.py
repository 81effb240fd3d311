"""Golden snapshots: the full decisions (reason, blocked, trace) for every case
of the shipped policy tests, with a frozen clock, are compared byte for byte
with tests/golden/<policy>.jsonl.

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

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
SUITES = sorted((ROOT / "policies").glob("*_test.yaml"))


def render(suite: Path) -> str:
    data = load_yaml(suite.read_bytes(), str(suite)).data
    policy = suite.parent / (data.get("policy") or suite.name.replace("_test.yaml", ".yaml"))
    engine = Engine.from_file(policy)
    lines = []
    for case in data["cases"]:
        record = {**data.get("defaults", {}), **case["account"]}
        try:
            out = engine.decide(record, now=dt.datetime.fromisoformat(case["now"])).model_dump(
                mode="json", exclude={"engine"}
            )
        except RecordError as exc:
            out = {"error": [[issue.field, issue.message] for issue in exc.issues]}
        lines.append(json.dumps({"case": case["name"], **out}, sort_keys=True, ensure_ascii=False))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("suite", SUITES, ids=[s.stem for s in SUITES])
def test_decisions_match_snapshot(suite: Path) -> None:
    """Every suite case's full decision equals its golden snapshot."""
    golden = GOLDEN / (suite.name.replace("_test.yaml", ".jsonl"))
    actual = render(suite)
    if os.environ.get("ESCALATION_UPDATE_GOLDEN") == "1":
        golden.write_text(actual)
    assert golden.exists(), f"no snapshot {golden.name}: run with ESCALATION_UPDATE_GOLDEN=1"
    expected = golden.read_text().splitlines()
    got = actual.splitlines()
    for want, have in zip(expected, got, strict=False):
        assert json.loads(want) == json.loads(have)
    assert len(expected) == len(got)
    assert golden.read_text() == actual
