"""The columnar backend's per-zone offset tables (``backends/columnar/_zones``):
built from weekly samples plus the transitions the zone's data file lists,
they must hold exactly the changes a dense six-hour scan finds, each at its
first second, and give the local day of ``astimezone`` one second either side
of every change (DST edges, 30-minute and 2-hour DST, negative DST, Ramadan
suspensions, a day skipped across the date line)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

np = pytest.importorskip("numpy")

from escalation.backends.columnar import _zones  # noqa: E402
from escalation.backends.columnar._zones import US, ZoneTable, transitions  # noqa: E402

ZONES = (
    "America/New_York",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Dublin",  # negative DST in the data file
    "Europe/Moscow",
    "Africa/Casablanca",  # DST suspended for Ramadan, then inverted
    "Australia/Lord_Howe",  # 30-minute DST
    "Antarctica/Troll",  # 2-hour DST
    "Pacific/Apia",  # skipped 30 December 2011
    "Asia/Shanghai",
)
FIRST = int(dt.datetime(1995, 1, 1, tzinfo=dt.UTC).timestamp())
LAST = int(dt.datetime(2032, 1, 1, tzinfo=dt.UTC).timestamp())


def _dense(tz: ZoneInfo, first: int, last: int) -> tuple[list[int], list[int]]:
    """The reference: every six hours, each change bisected to the second."""
    step = _zones._STEP
    return transitions(tz, list(range(first - step, last + 2 * step, step)))


def _astimezone_day(tz: ZoneInfo, second: int) -> int:
    local = dt.datetime.fromtimestamp(second, dt.UTC).astimezone(tz).date()
    return (local - dt.date(1970, 1, 1)).days


@pytest.mark.parametrize("name", ZONES)
def test_the_table_holds_exactly_the_dense_scan_s_changes(name: str) -> None:
    tz = ZoneInfo(name)
    table = ZoneTable(tz, FIRST, LAST)
    starts, offsets = _dense(tz, FIRST, LAST)
    assert table.starts_us.tolist() == [s * US for s in starts]
    assert table.offsets_us.tolist() == [o * US for o in offsets]
    assert len(starts) > 1 or name == "Asia/Shanghai"


@pytest.mark.parametrize("name", ZONES)
def test_local_days_at_every_change_and_one_second_either_side(name: str) -> None:
    """An off-by-one in a change's second (or a change missed) moves one of
    these instants to the wrong offset: the local day differs at midnight
    changes, the local minute at every change."""
    tz = ZoneInfo(name)
    table = ZoneTable(tz, FIRST, LAST)
    edges = [int(s) // US for s in table.starts_us[1:]]
    seconds = np.asarray(sorted({e + d for e in edges for d in (-1, 0, 1)}), dtype=np.int64)
    got_offsets = (table.offsets(seconds * US) // US).tolist()
    want_offsets = [
        int(dt.datetime.fromtimestamp(s, dt.UTC).astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]
        for s in seconds.tolist()
    ]
    assert got_offsets == want_offsets
    assert table.local_day(seconds * US).tolist() == [_astimezone_day(tz, s) for s in seconds.tolist()]


def test_without_the_listed_transitions_the_zone_is_scanned_densely(monkeypatch: pytest.MonkeyPatch) -> None:
    tz = ZoneInfo("Europe/London")
    monkeypatch.setattr(_zones, "_listed", lambda *_: None)
    table = ZoneTable(tz, FIRST, FIRST + 3 * 365 * 86_400)
    starts, offsets = _dense(tz, FIRST, FIRST + 3 * 365 * 86_400)
    assert table.starts_us.tolist() == [s * US for s in starts]
    assert table.offsets_us.tolist() == [o * US for o in offsets]


def test_a_zone_without_a_key_is_scanned_densely() -> None:
    """A zone not loaded by key has no file list to read: sampled every six hours."""
    tz = ZoneInfo("America/New_York")
    with open(_zone_file("America/New_York"), "rb") as file:
        keyless = ZoneInfo.from_file(file)
    assert _zones._listed(keyless, FIRST, LAST) is None
    assert _zones._listed(tz, FIRST, LAST)
    span = (FIRST, FIRST + 2 * 365 * 86_400)
    assert ZoneTable(keyless, *span).starts_us.tolist() == ZoneTable(tz, *span).starts_us.tolist()


def _zone_file(name: str) -> str:
    import zoneinfo

    for root in zoneinfo.TZPATH:
        path = f"{root}/{name}"
        try:
            with open(path, "rb"):
                return path
        except OSError:
            continue
    import importlib.resources

    return str(importlib.resources.files("tzdata.zoneinfo").joinpath(name))


def test_two_changes_within_a_week_are_both_found() -> None:
    """Recife kept DST for one week of October 2000 (2000-10-08 to 10-15, 6.96
    days): with weekly samples placed one minute before the first change,
    both changes fall between two samples and only the file's list of
    transitions finds them."""
    tz = ZoneInfo("America/Recife")
    start = int(dt.datetime(2000, 10, 8, 3, tzinfo=dt.UTC).timestamp())  # 00:00 local, -03
    assert _astimezone_day(tz, start) == _astimezone_day(tz, start - 1) + 1  # a gap: 00:00 is 01:00
    first = start - 60 + _zones._STEP  # the first sample: one minute before the change
    table = ZoneTable(tz, first, first + 60 * 86_400)
    starts, offsets = _dense(tz, first, first + 60 * 86_400)
    assert [o // US for o in table.offsets_us.tolist()] == offsets == [-3 * 3600, -2 * 3600, -3 * 3600]
    assert table.starts_us.tolist() == [s * US for s in starts]
