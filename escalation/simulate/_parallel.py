"""Running the (run, policy) simulations: in this process, or spread over
worker processes (each simulation is independent; results are gathered in
order, so the output does not depend on the number of workers)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from escalation._processes import pool_context
from escalation.decision import ErrorRow
from escalation.policy import Policy, load_policy
from escalation.simulate._state import Book
from escalation.simulate._summary import RunSummary, summarise
from escalation.simulate.model import ResponseModel

__all__ = ["Plan", "run_all"]


@dataclass(frozen=True)
class Plan:
    """Everything a simulation needs but the policy."""

    book: Book
    model: ResponseModel
    instants: list[dt.datetime]
    seed: int
    split: np.ndarray | None
    native: bool


def _one(plan: Plan, policy: Any, run: int) -> tuple[RunSummary, dict[int, ErrorRow]]:
    from escalation.simulate._loop import run_policy

    grace = policy.policy.header.promise.grace or 0
    done = run_policy(plan.book, policy, plan.model, plan.instants, seed=plan.seed, run=run, grace=grace)
    return summarise(done, plan.split), done.book.errors


def _prepare(policy: Policy, native: bool) -> Any:
    from escalation.backends.columnar import ColumnarPolicy

    prepared = ColumnarPolicy(policy)
    if native:
        prepared.unsupported = "native backend requested"
    return prepared


_STATE: dict[str, Any] = {}


def _start(plan: Plan, paths: dict[str, str]) -> None:
    _STATE["plan"] = plan
    _STATE["policies"] = {label: _prepare(load_policy(path), plan.native) for label, path in paths.items()}


def _work(label: str, run: int) -> tuple[RunSummary, dict[int, ErrorRow]]:
    return _one(_STATE["plan"], _STATE["policies"][label], run)


def run_all(
    plan: Plan, policies: dict[str, Policy], runs: int, workers: int
) -> tuple[dict[str, list[RunSummary]], dict[int, ErrorRow]]:
    """Every (run, policy) simulation; the first candidate run's error rows."""
    jobs = [(label, run) for run in range(runs) for label in policies]
    if workers <= 1 or len(jobs) == 1:
        prepared = {label: _prepare(p, plan.native) for label, p in policies.items()}
        done = [_one(plan, prepared[label], run) for label, run in jobs]
    else:
        paths = {label: str(p.path) for label, p in policies.items()}
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=pool_context(), initializer=_start, initargs=(plan, paths)
        ) as pool:
            futures = [pool.submit(_work, label, run) for label, run in jobs]
            done = [f.result() for f in futures]
    results: dict[str, list[RunSummary]] = {label: [] for label in policies}
    for (label, _), (summary, _) in zip(jobs, done, strict=True):
        results[label].append(summary)
    return results, done[0][1]
