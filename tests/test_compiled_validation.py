"""Validation's range check of record dates and instants (``_bounded``, run
once per history event) is the year alone: it must accept and refuse exactly
what :func:`escalation.record.in_range` does, and records with an instant or
a date at the edges of the range get the same errors as ever."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escalation import RecordError, parse_account
from escalation._record_base import RANGE_MESSAGE, _bounded, in_range

OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


def accepted(value: dt.date) -> bool:
    try:
        _bounded(value)
    except ValueError as exc:
        assert str(exc) == RANGE_MESSAGE
        return False
    return True


@given(st.dates())
def test_dates_checked_like_in_range(day: dt.date) -> None:
    assert accepted(day) == in_range(day)


@given(st.datetimes(timezones=OFFSETS))
def test_instants_checked_like_in_range(instant: dt.datetime) -> None:
    """An instant is in range by its own local date (whatever its offset)."""
    assert accepted(instant) == in_range(instant)


EDGES = [
    ("1899-12-31T23:59:59+00:00", False),
    ("1900-01-01T00:00:00+14:00", True),  # before 1900 in UTC, but its own date is in range
    ("1899-12-31T23:00:00-05:00", False),  # in 1900 in UTC, but its own date is not
    ("2199-12-31T23:59:59-12:00", True),
    ("2200-01-01T00:00:00+00:00", False),
]


@pytest.mark.parametrize(("at", "ok"), EDGES)
def test_history_instants_at_the_edges(at: str, ok: bool) -> None:
    record = {
        "id": "A-1",
        "currency": "CNY",
        "amount_overdue": "10.00",
        "balance": "20.00",
        "days_overdue": 3,
        "history": [{"at": "2026-11-01T10:00:00+08:00", "action": "sms_reminder"}, {"at": at}],
    }
    if ok:
        assert parse_account(record).history[1].at == dt.datetime.fromisoformat(at)
        return
    with pytest.raises(RecordError) as caught:
        parse_account(record)
    assert [(i.field, i.message) for i in caught.value.issues] == [("history.1.at", RANGE_MESSAGE)]
