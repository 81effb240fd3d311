"""The docs stay true: their commands run with the exit codes they show, their
Python examples run, their example files load, and every error code has an
anchor.

Conventions in docs/*.md: a ```console block's `$ escalation ...` lines are run
from the repository root; `<!-- exit: N -->` on the line before the block gives
the expected exit code (default 0); the first line of shown output must appear
in the real output. A ```yaml block whose first line is `# file: NAME` is
written to a temporary directory under NAME; such files are then loaded
(policies) or run (`*_test.yaml`). ```python blocks of quickstart.md run in
order in one namespace."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from escalation import load_policy
from escalation.policytest import run_suite

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(?:<!-- exit: (\d+) -->\n)?```(\w+)\n(.*?)```", re.DOTALL)
PAGES = ["quickstart.md", "policy-language.md", "decisions.md", "cli.md", "offers.md"]


def blocks(page: str, language: str) -> list[tuple[int, str]]:
    text = (DOCS / page).read_text()
    return [(int(m.group(1) or 0), m.group(3)) for m in BLOCK.finditer(text) if m.group(2) == language]


def escalation_bin() -> str:
    return str(Path(sys.executable).with_name("escalation"))


CONSOLE = [(page, code, body) for page in PAGES for code, body in blocks(page, "console")]


@pytest.mark.parametrize(
    ("page", "code", "body"), CONSOLE, ids=[f"{p}:{i}" for i, (p, _, _) in enumerate(CONSOLE)]
)
def test_console_examples_run(page: str, code: int, body: str) -> None:
    """Each shown `$ escalation ...` command exits as shown and prints the shown first line."""
    lines = body.strip().splitlines()
    command = lines[0].removeprefix("$ ").split()
    assert "escalation" == command[0], page
    result = subprocess.run([escalation_bin(), *command[1:]], capture_output=True, text=True, cwd=ROOT)
    assert code == result.returncode, result.stderr
    shown = next((line for line in lines[1:] if line.strip()), None)
    if shown:
        prefix = re.split(r"sha256:|\.\.\.|, \.\.\.", shown)[0].strip()
        assert prefix in result.stdout + result.stderr


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_audit_page_commands_run(tmp_path: Path) -> None:
    """docs/audit.md's commands run in order as one session (in an empty folder,
    on the bundled defaults): each shown first output line appears, record ids
    are the session's own, and the tampered journal fails verification (exit 2)."""
    tampered = tmp_path / "tampered.jsonl"
    for _ in range(3):
        subprocess.run(
            [escalation_bin(), "decide", "--at", "2026-11-23T10:00:00+08:00", "--journal", str(tampered)],
            capture_output=True, check=True, cwd=tmp_path,
        )  # fmt: skip
    lines = tampered.read_text().splitlines(keepends=True)
    tampered.write_text(lines[0] + lines[2])
    record_id: str | None = None
    ran = 0
    for _, body in blocks("audit.md", "console"):
        steps = re.split(r"^\$ ", body.strip(), flags=re.MULTILINE)
        for step in filter(None, steps):
            command, *shown = step.splitlines()
            command = command.split("  #")[0].strip()
            if record_id is not None:
                command = UUID.sub(record_id, command)
            result = subprocess.run(
                [escalation_bin(), *shlex.split(command)[1:]], capture_output=True, text=True, cwd=tmp_path
            )
            ran += 1
            expected = 2 if shown and shown[0].startswith("FAIL") else 0
            assert expected == result.returncode, (command, result.stderr)
            if "audit query" in command and (found := UUID.search(result.stdout)):
                record_id = found.group(0)
            if shown and shown[0].strip() and not shown[0].startswith("…"):
                prefix = UUID.sub("", re.split(r"sha256:|…|\.\.\.", shown[0])[0]).strip()
                assert prefix.split()[0] in result.stdout, (command, result.stdout)
    assert ran >= 10
    assert record_id is not None


def test_dry_run_python_runs() -> None:
    """The dry-run page's Python example runs as written (from the repository root)."""
    code = "\n".join(body for _, body in blocks("dry-runs.md", "python"))
    assert code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert 0 == result.returncode, result.stderr
    assert "1000 1000 0" in result.stdout


def test_quickstart_python_runs(tmp_path: Path) -> None:
    """The quickstart's Python example runs as written (from the repository root)."""
    code = "\n".join(body for _, body in blocks("quickstart.md", "python"))
    assert code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert 0 == result.returncode, result.stderr
    assert "act phone_call phone" in result.stdout
    assert "ACT  phone_call by phone (severity 2)" in result.stdout


def test_example_files_load_and_pass(tmp_path: Path) -> None:
    """`# file:` YAML examples are valid: policies load, test files pass against them."""
    written = []
    for page in PAGES:
        for _, body in blocks(page, "yaml"):
            first = body.splitlines()[0]
            if first.startswith("# file: "):
                path = tmp_path / first.removeprefix("# file: ").strip()
                path.write_text(body)
                written.append(path)
    assert written
    for path in written:
        if path.name.endswith("_test.yaml"):
            result = run_suite(path)
            assert all(case.passed for case in result.cases), [c.problems for c in result.cases]
        else:
            load_policy(path)


def test_every_error_code_has_an_anchor() -> None:
    """Every error code the package can raise has an anchor in docs/errors.md."""
    source = "\n".join(p.read_text() for p in (ROOT / "escalation").rglob("*.py"))
    codes = set(
        re.findall(
            r'"((?:yaml|duplicate|expression|file|include|invalid|language|missing|not|type|unknown|unreachable|evaluation)-[a-z-]+)"',
            source,
        )
    )
    docs = (DOCS / "errors.md").read_text()
    assert codes
    assert [] == sorted(code for code in codes if f'id="{code}"' not in docs)


def test_nav_lists_every_page() -> None:
    """mkdocs.yml lists every page under docs/."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert [] == [p for p in pages if p not in nav]


def test_site_builds_with_the_api_reference(tmp_path: Path) -> None:
    """`mkdocs build --strict` succeeds: every page links, and the API reference
    is generated from the public docstrings (mkdocstrings)."""
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert 0 == result.returncode, result.stderr[-2000:]
    api = (site / "api" / "index.html").read_text()
    assert "Decides the next permitted action for accounts under one policy" in api


def test_shlex_safe() -> None:
    """Console commands in the docs contain no shell syntax (they are run without a shell)."""
    for _, _, body in CONSOLE:
        command = body.strip().splitlines()[0]
        assert shlex.split(command) == command.split()
