"""Packaging for embedders: the wheel and sdist carry what the package needs,
the version comes from one place, and a missing extra is one line, not a
traceback."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import escalation

ROOT = Path(__file__).resolve().parent.parent
EXTRA_MODULES = {"pyarrow", "plotly", "rich", "psycopg", "durable"}
AT = "2026-11-23T10:00:00+08:00"
CN = "policies/consumer-credit-cn.yaml"

# Runs the CLI with the listed top-level modules made unimportable, as on an
# install without the extra that brings them.
BLOCKED = """
import sys
from importlib.abc import MetaPathFinder
class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None
sys.meta_path.insert(0, Block())
from escalation.cli import main
sys.argv = ["escalation", *{argv!r}]
main()
"""


def run_without(blocked: set[str], *argv: str) -> subprocess.CompletedProcess[str]:
    code = BLOCKED.format(blocked=blocked, argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel and an sdist built from the working tree (`python -m build`)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert 0 == result.returncode, result.stderr[-2000:]
    return out


class TestDistributions:
    def test_wheel_holds_bundled_files(self, dist: Path) -> None:
        """The wheel ships every shipped policy, rule pack, example and JSON Schema."""
        wheel = next(dist.glob("*.whl"))
        names = set(zipfile.ZipFile(wheel).namelist())
        expected = (
            [f"escalation/_bundled/policies/{p.name}" for p in (ROOT / "policies").glob("*.yaml")]
            + [f"escalation/_bundled/rules/{p.name}" for p in (ROOT / "rules").glob("*.yaml")]
            + [f"escalation/_bundled/examples/{p.name}" for p in (ROOT / "examples").iterdir()]
            + [f"escalation/schemas/{p.name}" for p in (ROOT / "escalation" / "schemas").glob("*.json")]
            + ["escalation/py.typed", "escalation/portfolio/__init__.py", "escalation/guards/__init__.py"]
        )
        assert [] == sorted(set(expected) - names)

    def test_sdist_builds_the_same_package(self, dist: Path) -> None:
        """The sdist holds the sources and the bundled data the wheel is built from."""
        sdist = next(dist.glob("*.tar.gz"))
        with tarfile.open(sdist) as archive:
            names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        assert {"pyproject.toml", "README.md", "escalation/engine.py", "policies/consumer-credit-cn.yaml",
                "rules/us-reg-f.yaml", "examples/account.json"} <= names  # fmt: skip

    def test_twine_check_passes(self, dist: Path) -> None:
        """`twine check` accepts both distributions (metadata and README render)."""
        files = [str(p) for p in dist.iterdir()]
        result = subprocess.run(
            [sys.executable, "-m", "twine", "check", *files], capture_output=True, text=True
        )
        assert 0 == result.returncode, result.stdout + result.stderr
        assert 2 == result.stdout.count("PASSED")

    def test_version_has_one_source(self) -> None:
        """`escalation.__version__` is the installed metadata's, which is pyproject's."""
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        assert project["version"] == version("escalation") == escalation.__version__


class TestExtras:
    def test_core_needs_no_extra(self) -> None:
        """`decide` runs with pyarrow, plotly, psycopg and durable all missing."""
        result = run_without(
            {"pyarrow", "plotly", "psycopg", "durable"}, "decide", "--at", "2026-11-23T10:00:00+08:00"
        )
        assert 0 == result.returncode, result.stderr
        assert '"status": "act"' in result.stdout

    @pytest.mark.parametrize(
        ("argv", "extra"),
        [
            (("dry-run", "-p", CN, "--portfolio", "examples/portfolio-cn.jsonl"), "portfolio"),
            (("portfolio", "generate", "-n", "5", "-o", "x.jsonl"), "portfolio"),
            (("audit", "contacts", "--portfolio", "examples/portfolio-cn.jsonl", "--from", "2026-11-01",
              "--to", "2026-12-01"), "portfolio"),
            (("decide", "--backend", "rete", "--at", AT), "rete"),
            (("decide", "--journal", "postgresql://u@127.0.0.1:1/x", "--at", AT), "postgres"),
        ],
    )  # fmt: skip
    def test_missing_extra_is_one_line(self, argv: tuple[str, ...], extra: str) -> None:
        """A command whose extra is missing exits 1 with one line naming the extra."""
        result = run_without(EXTRA_MODULES, *argv)
        assert 1 == result.returncode
        lines = result.stderr.strip().splitlines()
        assert 1 == len(lines), result.stderr
        assert f"pip install 'escalation[{extra}]'" in lines[0]
        assert "Traceback" not in result.stderr
