"""The dry-run's spool (issue 12): workers append their encoded decisions to
spool files in a private folder inside the output folder and send back only
(file, offset, length); the writing process splices the ranges in, in the
kernel where it can, in a plain copy where the OS or filesystem refuses.
Whatever way the bytes travel, the files are the same, and the folder is gone
when the run ends, however it ends."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyarrow")

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import dry_run
from escalation.portfolio import _spool
from escalation.portfolio._spool import Spooled, SpoolFiles, release, splice, spool_folder, spooled_table
from escalation.portfolio.writer import DecisionWriter

from .conftest import CN_POLICY
from .test_colpar_workers import AT, BATCH, _files, _run, mixed, typed, variant

__all__ = ["mixed", "typed", "variant"]  # fixtures shared with the workers' tests

METHODS = [["copy_file_range", "sendfile", "read"], ["sendfile", "read"], ["read"]]


def _refused(*args: Any, **kwargs: Any) -> int:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def _nothing(*args: Any, **kwargs: Any) -> int:
    return 0  # what some filesystems answer instead of refusing


# ------------------------------------------------------------------ splicing

chunks = st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=8)


class TestSplice:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        chunks=chunks,
        plain=st.lists(st.binary(max_size=50), min_size=8, max_size=8),
        how=st.sampled_from(METHODS),
    )
    def test_spooled_ranges_and_plain_writes_land_in_order(
        self, chunks: list[bytes], plain: list[bytes], how: list[str], tmp_path: Path
    ) -> None:  # fmt: skip
        """Spooled ranges spliced between bytes written as they are: the file reads in call order."""
        folder = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        files = SpoolFiles(str(folder), 0)
        refs = [files.append("decisions", pa.py_buffer(chunk)) for chunk in chunks]
        files.close()
        assert [r.offset for r in refs] == [sum(map(len, chunks[:k])) for k in range(len(chunks))]
        writer = DecisionWriter(folder / "decisions.jsonl")
        writer._splice = list(how)
        for ref, before in zip(refs, plain, strict=False):
            writer.write_encoded(before)
            writer.write_encoded(ref)
        writer.close()
        expected = b"".join(b + c for b, c in zip(plain, chunks, strict=False))
        assert (folder / "decisions.jsonl").read_bytes() == expected
        assert writer._splice == how  # nothing refused here

    @pytest.mark.parametrize(
        ("broken", "left"), [(_refused, ["sendfile", "read"]), (_nothing, ["sendfile", "read"])]
    )
    def test_a_refused_kernel_copy_falls_back_for_good(
        self, broken: Any, left: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:  # fmt: skip
        """copy_file_range refused (EXDEV) or copying nothing: sendfile copies, and is used from then on."""
        data = os.urandom(5000)
        source = tmp_path / "spool"
        source.write_bytes(data)
        monkeypatch.setattr(os, "copy_file_range", broken)
        methods = list(_spool.SPLICE_METHODS)
        with (tmp_path / "out").open("wb") as out:
            splice(Spooled(str(source), 100, 3000), out, methods)
            splice(Spooled(str(source), 4000, 1000), out, methods)
        assert methods == left
        assert (tmp_path / "out").read_bytes() == data[100:3100] + data[4000:]

    def test_without_kernel_copies_a_plain_copy_does_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No copy_file_range, sendfile refused (as for a file on macOS): read and write, in chunks."""
        data = os.urandom(3 * _spool._CHUNK + 17)
        source = tmp_path / "spool"
        source.write_bytes(data)
        monkeypatch.delattr(os, "copy_file_range")
        monkeypatch.setattr(
            os, "sendfile", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOTSOCK, "not a socket"))
        )
        methods = list(_spool.SPLICE_METHODS)
        with (tmp_path / "out").open("wb") as out:
            out.write(b"head")
            splice(Spooled(str(source), 5, len(data) - 5), out, methods)
        assert methods == ["read"]
        assert (tmp_path / "out").read_bytes() == b"head" + data[5:]

    def test_a_real_error_is_not_swallowed(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A copy failing for another reason than "not this way" (here EIO) is raised, not retried."""
        source = tmp_path / "spool"
        source.write_bytes(b"x" * 100)
        monkeypatch.setattr(
            os, "copy_file_range", lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "I/O"))
        )
        with (tmp_path / "out").open("wb") as out, pytest.raises(OSError, match="I/O"):
            splice(Spooled(str(source), 0, 100), out, list(_spool.SPLICE_METHODS))

    def test_a_short_spool_file_is_an_error(self, tmp_path: Path) -> None:
        """A range past the end of its file (a worker's write lost) fails loudly in every method."""
        source = tmp_path / "spool"
        source.write_bytes(b"x" * 100)
        with (tmp_path / "out").open("wb") as out, pytest.raises(OSError, match="ends before its range"):
            splice(Spooled(str(source), 50, 100), out, list(_spool.SPLICE_METHODS))


class TestSpooledTables:
    def test_tables_come_back_equal_and_aligned(self, tmp_path: Path) -> None:
        """Tables appended one after another: each read back memory-mapped, equal, 64-byte aligned."""
        tables = [
            pa.table({"a": pa.array(range(k * 7)), "b": pa.array([f"x{i}" * k for i in range(k * 7)])})
            for k in (1, 3, 2)
        ]
        files = SpoolFiles(str(tmp_path), 4)
        refs = [files.append("decisions", table) for table in tables]
        files.close()
        assert all(ref.arrow and ref.offset % 64 == 0 for ref in refs)
        for ref, table in zip(refs, tables, strict=True):
            assert spooled_table(ref).equals(table)
        release(refs)
        assert list(tmp_path.iterdir()) == []

    def test_the_parquet_writer_writes_spooled_tables_as_given(self, tmp_path: Path) -> None:
        """A decisions Parquet file from spooled tables holds the rows of the tables, in order."""
        from escalation.portfolio.writer import decision_schema

        rows = [{"account_id": f"A{i}", "severity": i, "blocked_guards": ["g"] * (i % 3)} for i in range(50)]
        table = pa.Table.from_pylist(rows, schema=decision_schema())
        files = SpoolFiles(str(tmp_path), 0)
        refs = [files.append("baseline", table.slice(0, 20)), files.append("baseline", table.slice(20))]
        files.close()
        with DecisionWriter(tmp_path / "baseline.parquet", "parquet") as writer:
            for ref in refs:
                writer.write_encoded(ref)
        assert pq.read_table(tmp_path / "baseline.parquet").equals(table)


# ------------------------------------------------------------ the folder itself


def _spools(folder: Path) -> list[Path]:
    return sorted(folder.glob(".spool-*"))


class TestTheSpoolFolder:
    def test_it_is_private_and_goes_with_the_block(self, tmp_path: Path) -> None:
        with spool_folder(tmp_path) as folder:
            assert folder.parent == tmp_path and folder.stat().st_mode & 0o777 == 0o700
            (folder / "0-decisions.jsonl").write_bytes(b"x")
        assert _spools(tmp_path) == []
        with pytest.raises(KeyError), spool_folder(tmp_path) as folder:
            (folder / "1-baseline.jsonl").write_bytes(b"x")
            raise KeyError("boom")
        assert _spools(tmp_path) == []

    @pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
    def test_workers_spool_while_the_run_lasts_and_not_after(
        self, fmt: str, typed: Path, variant: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:  # fmt: skip
        """Mid-run the output folder holds one spool folder with a task's files (deleted once received;
        JSON lines: only the ledgers and batches encoded early, task 0's never); after the run, none."""
        import escalation.portfolio._columnar_run as run

        monkeypatch.setattr(run, "COLUMNAR_BATCH", BATCH)
        out = tmp_path / "out"
        seen: list[list[str]] = []

        def progress(_: int) -> None:
            (spool,) = _spools(out)
            seen.append(sorted(p.name for p in spool.iterdir()))

        dry_run(CN_POLICY, typed, at=AT, baseline=variant, out=out, workers=2, fmt=fmt, backend="columnar",
                progress=progress)  # fmt: skip
        assert _spools(out) == []
        if fmt == "jsonl":  # task 0's batches start the files: placed at once, never spooled
            assert all({"ledger-decisions", "ledger-baseline"} <= set(names) for names in seen)
            assert not any(name.startswith("0-") for names in seen for name in names)
            return
        assert any("0-decisions.arrow" in names and "0-baseline.arrow" in names for names in seen)
        assert not any("0-decisions.arrow" in names for names in seen[3:])  # task 0 merged and deleted

    def test_a_forced_plain_copy_writes_the_same_files(
        self, typed: Path, variant: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Two workers with the kernel copies refused: every file as with one worker."""
        import escalation.portfolio._columnar_run as run

        monkeypatch.setattr(run, "COLUMNAR_BATCH", BATCH)
        monkeypatch.setattr(os, "copy_file_range", _refused)
        monkeypatch.setattr(os, "sendfile", _refused)
        _run("compare", typed, variant, tmp_path / "1", 1, "jsonl", "none")
        _run("compare", typed, variant, tmp_path / "2", 2, "jsonl", "none")
        assert _files(tmp_path / "1") == _files(tmp_path / "2")

    def test_a_worker_failing_mid_run_leaves_no_spool(
        self, typed: Path, variant: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A typed folder whose last row groups cannot be decoded: the worker reading them raises after the
        first batches were written; the run raises that error and the spool folder is gone."""
        import escalation.portfolio._columnar_run as run

        monkeypatch.setattr(run, "COLUMNAR_BATCH", BATCH)
        broken = tmp_path / "broken.typed"
        shutil.copytree(typed, broken)
        accounts = broken / "accounts.parquet"
        meta = pq.ParquetFile(accounts).metadata
        late = meta.row_group(meta.num_row_groups - 2).column(0)
        with accounts.open("r+b") as handle:  # the page header of a late row group's first column: garbage
            handle.seek(late.data_page_offset)
            handle.write(b"\xff" * 64)
        out = tmp_path / "out"
        merged: list[int] = []
        with pytest.raises(OSError, match="page header"):
            dry_run(CN_POLICY, broken, at=AT, baseline=variant, out=out, workers=2, backend="columnar",
                    progress=merged.append)  # fmt: skip
        assert sum(merged) >= 2 * BATCH  # mid-run: batches were merged before it failed
        assert out.is_dir() and _spools(out) == []

    @pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
    def test_a_stop_in_the_writing_process_leaves_no_spool(
        self, stop: type[BaseException], typed: Path, variant: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:  # fmt: skip
        """Ctrl-C (or an error) while the run merges its third part: it propagates, the spool goes."""
        import escalation.portfolio._columnar_run as run

        monkeypatch.setattr(run, "COLUMNAR_BATCH", BATCH)
        out = tmp_path / "out"
        merged: list[int] = []

        def progress(rows: int) -> None:
            merged.append(rows)
            assert len(_spools(out)) == 1
            if len(merged) == 3:
                raise stop

        with pytest.raises(stop):
            dry_run(CN_POLICY, typed, at=AT, baseline=variant, out=out, workers=2, backend="columnar",
                    progress=progress)  # fmt: skip
        assert _spools(out) == []
