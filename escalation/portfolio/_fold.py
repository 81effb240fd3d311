"""The dry-run's columnar fold: one decided batch
(:class:`~escalation.backends.columnar.TableResult`) folded into the dry-run's
tallies by :func:`~escalation.portfolio._fold_batch.fold` — decisions written
as Arrow tables (Parquet row groups, or JSON lines built by Arrow), every
summary from one grouping of the rows by their dictionary codes; only error
rows and changed accounts are handled one by one.

A batch is folded on its own into a :class:`Part` (:func:`fold_part`, in
whichever process decided it: its decisions already encoded, its tallies small
dicts), and the parts are added to the run's :class:`Tallies` in batch order
(:func:`merge`): dicts gain keys in the order one pass over the batches would
add them and sums are exact (``Decimal``), so every output is byte-identical
whatever the number of workers."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from escalation.portfolio._spool import SpoolFiles
from escalation.portfolio.results import AccountChange
from escalation.portfolio.writer import decisions_file

__all__ = ["Part", "Plan", "Tallies", "fold", "fold_part", "merge"]


def fold(batch: Any, res: Any, tallies: Tallies, progress: Callable[[int], None] | None) -> None:
    """:func:`escalation.portfolio._fold_batch.fold`, imported on first use: it
    needs numpy, which the core install (the CLI without ``[portfolio]``) lacks."""
    from escalation.portfolio._fold_batch import fold as fold_batch

    fold_batch(batch, res, tallies, progress)


@dataclass
class Tallies:
    """What a dry-run accumulates (shared with the reference path's loop)."""

    summaries: list[Any]  # the candidate's and the baseline's ``SummaryBuilder``
    writers: dict[str, Any]
    error_file: IO[str] | None
    changes_file: IO[str] | None
    sample: int
    transitions: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    changes: list[AccountChange] = field(default_factory=list)
    changed_days: dict[int, dict[str, int]] = field(default_factory=dict)
    accounts: int = 0
    decided: int = 0
    errors: int = 0
    changed: int = 0
    changed_balance: Decimal = Decimal(0)
    arms: Any = None  # an experiment's ``ArmTallies``: candidate = challenger, baseline = champion


# ------------------------------------------------------------- batch by batch


@dataclass(frozen=True)
class Plan:
    """What folding one batch on its own needs to know of the run (sent once to
    each worker): the decisions' format (``None``: no files written), whether
    there is a baseline, how many changed accounts the result samples, the
    experiment whose arms are tallied (or ``None``) and the output folder."""

    fmt: str | None
    baseline: bool
    sample: int
    experiment: Any = None
    out: Path | None = None  # the output folder: workers spool their decisions inside it


class _Counts:
    """A :class:`~escalation.portfolio.results.SummaryBuilder`'s tables without its policy."""

    def __init__(self) -> None:
        self.status: dict[str, list[Any]] = {}
        self.action: dict[str, list[Any]] = {}
        self.blocks: dict[str, int] = {}
        self.buckets: dict[str, dict[str, int]] = {}


class _ArmCounts:
    """An :class:`~escalation.portfolio._arms.ArmTallies`' tables without its policies."""

    def __init__(self, experiment: Any) -> None:
        from escalation.experiment import arm_of
        from escalation.portfolio._arms import ARMS

        self._arm_of, self._split = arm_of, (experiment.salt, experiment.challenger.share)
        self.builders = {arm: _Counts() for arm in ARMS}
        self.accounts: dict[str, list[Any]] = {arm: [0, Decimal(0)] for arm in ARMS}
        self.transitions: dict[str, dict[tuple[str, str], list[Any]]] = {arm: {} for arm in ARMS}
        self.changed: dict[str, list[Any]] = {arm: [0, Decimal(0)] for arm in ARMS}

    def is_challenger(self, account_id: str) -> bool:
        return bool(self._arm_of(account_id, *self._split))

    def __getstate__(self) -> dict[str, Any]:  # the assignment rule stays in the worker
        return {k: v for k, v in self.__dict__.items() if k not in ("_arm_of", "_split")}


class _Encoded:
    """A decisions writer that keeps what the fold encoded
    (:func:`~escalation.portfolio.writer.encode`) for the writing process: in
    a worker, where :class:`~escalation.portfolio._spool.SpoolFiles` put it
    (JSON lines: in the decisions file ``target`` itself; a table: spooled);
    in that process itself, as it is."""

    def __init__(self, fmt: str, name: str, spool: SpoolFiles | None, target: str | None) -> None:
        self.fmt = fmt
        self.payload: Any = None
        self._name, self._spool, self._target = name, spool, target

    def write_encoded(self, payload: Any) -> None:
        # the Arrow buffer (and its share of Arrow's memory pool) is freed
        # when the fold drops it: a worker keeps only where it went
        if self._spool is None:
            self.payload = payload
        else:
            self.payload = self._spool.append(self._name, payload, self._target)


@dataclass
class Part:
    """One decided batch folded on its own: what :func:`merge` adds to the run."""

    accounts: int
    decided: int
    errors: int
    error_lines: str
    change_lines: str
    outputs: dict[str, Any]  # writer name → encoded decisions, or where a worker spooled them
    summaries: list[_Counts]
    transitions: dict[tuple[str, str], list[Any]]
    changes: list[AccountChange]  # the batch's first ``sample``
    changed_days: dict[int, dict[str, int]]
    changed: int
    changed_balance: Decimal
    arms: _ArmCounts | None
    stats: dict[str, int] = field(default_factory=dict)
    clocks: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage, in its process


def fold_part(rows: int, res: Any, plan: Plan, spool: SpoolFiles | None = None) -> Part:
    """Fold one decided batch of ``rows`` accounts on its own, with :func:`fold`
    (its decisions appended to ``spool`` if given: a worker's)."""
    names = ("decisions", "baseline") if plan.baseline else ("decisions",)
    writers = {}
    if plan.fmt is not None:
        # JSON lines from a worker go straight into the run's decisions files (opened
        # and emptied by the run before the workers start)
        out = plan.out if spool is not None and plan.fmt == "jsonl" else None
        writers = {
            name: _Encoded(
                plan.fmt, name, spool, str(decisions_file(out, name, "jsonl")) if out is not None else None
            )
            for name in names
        }
    errors, changes = io.StringIO(), io.StringIO()
    part = Tallies(
        [_Counts() for _ in names], writers, errors, changes if plan.baseline else None, plan.sample,
        arms=_ArmCounts(plan.experiment) if plan.experiment is not None else None,
    )  # fmt: skip
    fold(range(rows), res, part, None)
    return Part(
        part.accounts, part.decided, part.errors, errors.getvalue(), changes.getvalue(),
        {name: w.payload for name, w in writers.items() if w.payload is not None}, part.summaries,
        part.transitions, part.changes, part.changed_days, part.changed, part.changed_balance, part.arms,
    )  # fmt: skip


def _add_pairs(total: dict[Any, list[Any]], part: dict[Any, list[Any]]) -> None:
    for key, (count, balance) in part.items():
        entry = total.setdefault(key, [0, Decimal(0)])
        entry[0] += count
        entry[1] += balance


def _add_counts(total: Any, part: _Counts) -> None:
    _add_pairs(total.status, part.status)
    _add_pairs(total.action, part.action)
    for guard, count in part.blocks.items():
        total.blocks[guard] = total.blocks.get(guard, 0) + count
    for name, mix in part.buckets.items():
        into = total.buckets.setdefault(name, {})
        for key, count in mix.items():
            into[key] = into.get(key, 0) + count


def merge(part: Part, tallies: Tallies, progress: Callable[[int], None] | None = None) -> None:
    """Add one batch's :class:`Part` to ``tallies`` (parts in batch order: each
    dict then gains its keys in the order one pass over the batches adds them)."""
    tallies.accounts += part.accounts
    tallies.decided += part.decided
    tallies.errors += part.errors
    if tallies.error_file is not None and part.error_lines:
        tallies.error_file.write(part.error_lines)
    for name, payload in part.outputs.items():
        if name in tallies.writers:
            tallies.writers[name].write_encoded(payload)
    for summary, counts in zip(tallies.summaries, part.summaries, strict=False):
        _add_counts(summary, counts)
    _add_pairs(tallies.transitions, part.transitions)
    tallies.changed += part.changed
    tallies.changed_balance += part.changed_balance
    for day, moves in part.changed_days.items():
        mix = tallies.changed_days.setdefault(day, {})
        for key, count in moves.items():
            mix[key] = mix.get(key, 0) + count
    room = max(tallies.sample - len(tallies.changes), 0)
    tallies.changes.extend(part.changes[:room])
    if tallies.changes_file is not None and part.change_lines:
        tallies.changes_file.write(part.change_lines)
    if tallies.arms is not None and part.arms is not None:
        arms, by_arm = tallies.arms, part.arms
        for arm, builder in by_arm.builders.items():
            _add_counts(arms.builders[arm], builder)
            for into, add in (
                (arms.accounts[arm], by_arm.accounts[arm]),
                (arms.changed[arm], by_arm.changed[arm]),
            ):
                into[0] += add[0]
                into[1] += add[1]
            _add_pairs(arms.transitions[arm], by_arm.transitions[arm])
    if progress is not None:
        progress(part.accounts)
