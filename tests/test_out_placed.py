"""Workers placing their JSON lines in the decisions files themselves (issue 12):
whatever order the tasks' batches are encoded and their tasks end in, each
batch lands where the batch before it ends — placed at once when it is next in
line, else spooled and copied in by whoever completes what is ahead of it — and
the file reads as the batches in order, as the writing process would have
written them."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyarrow")

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.portfolio._placed import Ledger
from escalation.portfolio._spool import SpoolFiles, release
from escalation.portfolio.writer import DecisionWriter

NAMES = ("decisions", "baseline")


def _refused(*args: Any, **kwargs: Any) -> int:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


# each task: its batches, each batch's bytes for both outputs
tasks = st.lists(
    st.lists(st.tuples(st.binary(max_size=300), st.binary(max_size=300)), min_size=1, max_size=4),
    min_size=1,
    max_size=6,
)


def _run(folder: Path, work: list[list[tuple[bytes, bytes]]], order: list[int]) -> dict[str, Any]:
    """The tasks' steps (each batch appended to both outputs, then the task's end) taken
    in ``order`` (task numbers, each as many times as it has steps); what the writing
    process received of each output."""
    writers = {name: DecisionWriter(folder / f"{name}.jsonl") for name in NAMES}
    spools: dict[int, SpoolFiles] = {}
    done = [0] * len(work)
    refs: dict[str, list[Any]] = {name: [] for name in NAMES}
    for task in order:
        files = spools.setdefault(task, SpoolFiles(str(folder), task))
        step = done[task]
        done[task] += 1
        if step == len(work[task]):
            files.close()
            continue
        for name, payload in zip(NAMES, work[task][step], strict=True):
            refs[name].append(files.append(name, pa.py_buffer(payload), str(folder / f"{name}.jsonl")))
    for name, writer in writers.items():
        for ref in refs[name]:
            writer.write_encoded(ref)
        writer.close()
        release(refs[name])
    return refs


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[list[tuple[bytes, bytes]]], list[int]]:
    work = draw(tasks)
    steps = [task for task, batches in enumerate(work) for _ in range(len(batches) + 1)]
    order = draw(
        st.permutations(steps)
    )  # a task's own steps keep their order: only which task goes next varies
    return work, order


class TestPlacing:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(schedule=schedules(), kernel=st.booleans())
    def test_any_order_of_encoding_writes_the_batches_in_order(
        self, schedule: tuple[list[list[tuple[bytes, bytes]]], list[int]], kernel: bool, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:  # fmt: skip
        """Tasks interleaved in any order (the kernel copy refused or not): each file holds every batch,
        in order; the spool folder keeps only the ledgers once every task is received."""
        work, order = schedule
        folder = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        if not kernel:
            monkeypatch.setattr(os, "copy_file_range", _refused)
        refs = _run(folder, work, order)
        for k, name in enumerate(NAMES):
            expected = b"".join(batch[k] for batches in work for batch in batches)
            assert (folder / f"{name}.jsonl").read_bytes() == expected
            assert all(ref.placed for ref in refs[name])
        left = {p.name for p in folder.iterdir()}
        assert left == {"decisions.jsonl", "baseline.jsonl", "ledger-decisions", "ledger-baseline"}
        monkeypatch.undo()

    def test_in_order_nothing_is_spooled_and_out_of_order_the_rest_is(self, tmp_path: Path) -> None:
        """Task 0 then task 1: every batch placed at once. Task 1 first: its batches spooled, and copied
        in when task 0 ends."""
        work = [[(b"a0\n", b"A0\n"), (b"a1\n", b"A1\n")], [(b"b0\n", b"B0\n")]]
        first = tmp_path / "first"
        first.mkdir()
        _run(first, work, [0, 0, 0, 1, 1])
        ledger = Ledger(str(first / "ledger-decisions"))
        assert ledger.counts() == (3, 0)
        ledger.close()
        late = tmp_path / "late"
        late.mkdir()
        _run(late, work, [1, 1, 0, 0, 0])
        ledger = Ledger(str(late / "ledger-baseline"))
        assert ledger.counts() == (2, 1)
        ledger.close()
        assert (late / "baseline.jsonl").read_bytes() == b"A0\nA1\nB0\n"

    def test_a_lost_write_fails_in_the_writing_process(self, tmp_path: Path) -> None:
        """A placed range the file does not reach (a worker's write lost) is an error, not a short file."""
        files = SpoolFiles(str(tmp_path), 0)
        target = tmp_path / "decisions.jsonl"
        target.write_bytes(b"")
        ref = files.append("decisions", pa.py_buffer(b"x" * 10), str(target))
        files.close()
        writer = DecisionWriter(target)  # (it empties the file: the worker's bytes are gone)
        with pytest.raises(OSError, match="ends before the decisions the workers placed"):
            writer.write_encoded(ref)
        writer.close()
