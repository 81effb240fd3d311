"""Worker pools never fork: every process pool the package starts gets its
start method from ``escalation._processes.pool_context()``.

A pool is often started after Arrow (or the embedding application) has started
threads, and a forked copy of a threaded process can deadlock in the child.
Python 3.12+ only *warns* of it, and the CI's 3.12/3.13 suites do not start
pools, so these tests are what fails if a pool goes back to the default
``fork`` on Linux."""

from __future__ import annotations

import ast
import datetime as dt
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from escalation import compare, dry_run
from escalation._processes import pool_context
from escalation.portfolio.generate import generate, write_portfolio
from escalation.simulate.run import simulate

from .conftest import CN_POLICY, ROOT

AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
PACKAGE = ROOT / "escalation"


def test_pool_context_is_never_fork() -> None:
    method = pool_context().get_start_method()
    assert method != "fork"
    assert method in multiprocessing.get_all_start_methods()


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _pool_calls() -> Iterator[tuple[Path, ast.Call]]:
    """Every ``ProcessPoolExecutor(...)`` / ``Pool(...)`` call in the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _called(node) in ("ProcessPoolExecutor", "Pool"):
                yield path, node


def test_every_pool_in_the_package_is_given_the_pool_context() -> None:
    """Read from the source: a pool created anywhere without ``mp_context=pool_context()``
    (``context=`` for ``multiprocessing.Pool``) fails here, even on a path no test runs."""
    calls = list(_pool_calls())
    assert calls, "no process pool found: the scan is broken"
    for path, call in calls:
        given = {kw.arg: kw.value for kw in call.keywords}
        context = given.get("mp_context", given.get("context"))
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        assert isinstance(context, ast.Call), f"{where}: pool without an explicit start method"
        assert _called(context) == "pool_context", f"{where}: pool started with {ast.unparse(context)}"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The start method of every ``ProcessPoolExecutor`` created while the test runs
    (``None`` → the platform default, ``fork`` on Linux before 3.14)."""
    methods: list[str] = []
    original = ProcessPoolExecutor.__init__

    def recording(self: ProcessPoolExecutor, *args: Any, **kwargs: Any) -> None:
        context = kwargs.get("mp_context", args[1] if len(args) > 1 else None)
        methods.append(context.get_start_method() if context is not None else "default")
        original(self, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "__init__", recording)
    return methods


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("p") / "small.jsonl"
    write_portfolio(generate(60, 3, "cn-card", AT), path)
    return path


@pytest.mark.parametrize("backend", ["native", "columnar"])
def test_dry_run_workers_do_not_fork(
    backend: str, portfolio: Path, tmp_path: Path, started: list[str]
) -> None:
    result = dry_run(CN_POLICY, portfolio, at=AT, out=tmp_path, workers=2, backend=backend)
    assert result.decided + result.errors == 60
    assert started, "the run started no pool: the test checks nothing"
    assert "fork" not in started and "default" not in started, started


def test_compare_workers_do_not_fork(portfolio: Path, tmp_path: Path, started: list[str]) -> None:
    compare(CN_POLICY, CN_POLICY, portfolio, at=AT, out=tmp_path, workers=2)
    assert started and "fork" not in started and "default" not in started, started


def test_simulate_workers_do_not_fork(portfolio: Path, tmp_path: Path, started: list[str]) -> None:
    # candidate and baseline: two jobs, so the pool is used
    simulate(CN_POLICY, portfolio, at=AT, days=2, seed=1, baseline=CN_POLICY, out=tmp_path, workers=2)
    assert started and "fork" not in started and "default" not in started, started


def test_a_dry_run_with_workers_starts_their_server_before_loading_policies(
    portfolio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forkserver's preload (the package's imports) runs while this process
    loads the policies, not after: the order of the two calls is the claim."""
    import escalation.portfolio.dryrun as dryrun

    calls: list[str] = []
    start, load = dryrun.start_early, dryrun.load_policy
    monkeypatch.setattr(dryrun, "start_early", lambda: (calls.append("server"), start())[1])
    monkeypatch.setattr(dryrun, "load_policy", lambda *a, **k: (calls.append("policy"), load(*a, **k))[1])
    dry_run(CN_POLICY, portfolio, at=AT, baseline=CN_POLICY, out=tmp_path, workers=2, backend="columnar")
    if pool_context().get_start_method() == "forkserver":
        assert calls[:3] == ["server", "policy", "policy"], calls
    calls.clear()
    dry_run(CN_POLICY, portfolio, at=AT, out=tmp_path, workers=1, backend="columnar")
    assert calls == ["policy"], calls  # one process: no server to start
