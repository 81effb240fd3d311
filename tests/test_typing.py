"""Static checks as tests: the package and the public-API usage file pass
``mypy --strict``; durable-rules is imported by one adapter module only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_public_api_usage_type_checks() -> None:
    """tests/typing/api.py (typical user code) type-checks strictly against the installed package."""
    pytest.importorskip("mypy", reason="mypy is in the `test` extra")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            str(ROOT / "tests" / "typing" / "api.py"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT / "tests",
    )
    assert 0 == result.returncode, result.stdout + result.stderr


def test_durable_is_imported_only_by_the_adapter() -> None:
    """Only escalation/backends/rete.py imports durable-rules (its sharp edges stay in one place)."""
    offenders = []
    for path in sorted((ROOT / "escalation").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == "escalation/backends/rete.py":
            continue
        if re.search(r"^\s*(from|import)\s+durable\b", path.read_text(), re.MULTILINE):
            offenders.append(path.name)
    assert [] == offenders


def test_no_unsafe_yaml_or_eval() -> None:
    """No module calls eval/exec or an unsafe YAML loader."""
    pattern = re.compile(r"\b(eval|exec)\(|yaml\.(load|unsafe_load|full_load)\(|yaml\.Loader\b")
    offenders = [p.name for p in sorted((ROOT / "escalation").rglob("*.py")) if pattern.search(p.read_text())]
    assert [] == offenders
