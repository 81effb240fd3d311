"""docs/experiments.md stays true: its commands run as one session (in an
empty folder, with the repository's example files) and print what it shows,
its Python example prints what its comments say, and its experiment file is
the shipped one."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from .test_docs import ROOT, blocks, escalation_bin

PAGE = "experiments.md"


def test_commands_run_and_print_what_is_shown(tmp_path: Path) -> None:
    ran = 0
    for code, body in blocks(PAGE, "console"):
        for step in filter(None, re.split(r"^\$ ", body.strip(), flags=re.MULTILINE)):
            command, *shown = step.splitlines()
            argv = [a.replace("examples/", f"{ROOT}/examples/") for a in shlex.split(command)]
            assert "escalation" == argv[0]
            result = subprocess.run(
                [escalation_bin(), *argv[1:]], capture_output=True, text=True, cwd=tmp_path
            )
            assert code == result.returncode, (command, result.stderr)
            ran += 1
            first = next((line for line in shown if line.strip()), None)
            if first:
                prefix = re.split(r"sha256:|…|\.\.\.", first)[0].strip()
                assert prefix in result.stdout, (command, prefix, result.stdout[:500])
    assert ran >= 5


def test_python_example_prints_its_comments() -> None:
    (code,) = [body for _, body in blocks(PAGE, "python")]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert 0 == result.returncode, result.stderr
    expected = [
        line.removeprefix("# ").split("  (")[0] for line in code.splitlines() if line.startswith("# ")
    ]
    assert expected == result.stdout.splitlines()


def test_the_experiment_file_shown_is_the_shipped_one() -> None:
    (shown,) = [
        body for _, body in blocks(PAGE, "yaml") if body.startswith("# file: experiment-lawyer-45.yaml")
    ]
    shipped = (ROOT / "examples" / "experiment-lawyer-45.yaml").read_text()
    data = [line for line in shipped.splitlines() if not line.startswith("#")]
    assert data == shown.splitlines()[1:]


def test_the_page_is_in_the_nav() -> None:
    assert f": {PAGE}" in (ROOT / "mkdocs.yml").read_text()
