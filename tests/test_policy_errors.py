"""Bad policies fail ``escalation check`` with exit 3 and ``path:line:col: code: message``.

Every fixture ``tests/fixtures/bad/<code>.yaml`` must produce its own code;
files starting with ``_`` are helpers (included packs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from escalation.cli import main

BAD = Path(__file__).parent / "fixtures" / "bad"
FIXTURES = sorted(p for p in BAD.glob("*.yaml") if not p.name.startswith("_"))
LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>[a-z-]+): (?P<msg>.+)$")


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_fails_with_its_code(path: Path) -> None:
    """The fixture named after an error code fails check with exit 3 and that code, located."""
    result = CliRunner().invoke(main, ["check", str(path)])
    assert 3 == result.exit_code, result.output
    lines = [LINE.match(line) for line in result.stderr.splitlines()]
    assert lines and all(lines), result.stderr
    codes = {m.group("code") for m in lines if m}
    assert path.stem in codes
    for match in lines:
        assert match is not None
        assert int(match.group("line")) >= 1 and int(match.group("col")) >= 1
        assert "Traceback" not in match.group("msg")


def test_every_code_has_a_docs_anchor_and_fixture_coverage() -> None:
    """Every fixture's code has an anchor in docs/errors.md."""
    docs = (Path(__file__).parent.parent / "docs" / "errors.md").read_text()
    missing = [p.stem for p in FIXTURES if f'id="{p.stem}"' not in docs]
    assert [] == missing


def test_several_files_all_reported_sorted() -> None:
    """Errors of several files are all printed, sorted by path and line."""
    paths = [str(BAD / "unknown-tier.yaml"), str(BAD / "duplicate-key.yaml")]
    result = CliRunner().invoke(main, ["check", *paths])
    assert 3 == result.exit_code
    found = [line.split(":")[0] for line in result.stderr.splitlines()]
    assert sorted(found) == found and len(found) == 2


def test_missing_file() -> None:
    """A policy path that does not exist is reported with a code, not a traceback."""
    result = CliRunner().invoke(main, ["check", "/nonexistent/policy.yaml"])
    assert 3 == result.exit_code
    assert "file-not-found" in result.stderr
