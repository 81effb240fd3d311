"""How a dry-run's workers start and stop: what their server imports before
forking them, and a run that returns while they exit."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from escalation import compare
from escalation._processes import SERVER_PRELOAD
from escalation.portfolio.arrow import write_typed
from escalation.portfolio.generate import generate

from .conftest import CN_POLICY

AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="threads counted from /proc")
@pytest.mark.parametrize("module", [m for m in SERVER_PRELOAD if m != "__main__"])
def test_the_server_preloads_nothing_that_starts_a_thread(module: str) -> None:
    """A forked copy of a threaded process may deadlock, and a thread the server
    started would be missing in every worker (numpy's OpenBLAS pool, Arrow's
    jemalloc background thread: those stay out of the preload)."""
    code = f"import os, {module}; print(len(os.listdir('/proc/self/task')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_a_module_that_starts_a_thread_is_seen(tmp_path: Path) -> None:
    """The count above does see a library's own threads (pyarrow's)."""
    code = "import os, pyarrow; print(len(os.listdir('/proc/self/task')))"
    if not Path("/proc/self/task").is_dir():
        pytest.skip("threads counted from /proc")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 1


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "report.html"}


def test_two_runs_back_to_back_write_what_one_worker_writes(tmp_path: Path) -> None:
    """The pool is shut down without waiting for its workers to exit: a second
    run at once (a new pool, the same server) still writes every file as one
    worker does, and neither leaves a spool folder behind."""
    typed = tmp_path / "p.typed"
    write_typed(generate(300, 5, "cn-card", AT), typed)
    variant = tmp_path / "variant.yaml"
    variant.write_text(
        CN_POLICY.read_text("utf-8").replace("days_overdue >= 8", "days_overdue >= 9"), "utf-8"
    )
    compare(CN_POLICY, variant, typed, at=AT, out=tmp_path / "one", workers=1, backend="columnar")
    for run in ("two-a", "two-b"):
        compare(CN_POLICY, variant, typed, at=AT, out=tmp_path / run, workers=2, backend="columnar")
    for run in ("two-a", "two-b"):
        assert _files(tmp_path / run) == _files(tmp_path / "one")
        assert not [p for p in os.listdir(tmp_path / run) if p.startswith(".spool")]
