"""Calendar helpers: local dates, day boundaries and public holidays.

Holiday tables come from the ``holidays`` package; they are computed once
per (country, subdivision, year) under a lock, because ``holidays`` objects
fill themselves in lazily and are not safe to share between threads."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import holidays

__all__ = ["add_months", "check_holiday_code", "holiday_dates", "is_holiday", "start_of_day"]

_lock = threading.Lock()
_cache: dict[tuple[str, str | None, int], frozenset[dt.date]] = {}


def holiday_dates(code: str, year: int) -> frozenset[dt.date]:
    """Public holidays of ``code`` (``IE``, ``GB-ENG``, ``CN``, ``US``) in ``year``."""
    country, _, subdiv = code.partition("-")
    key = (country, subdiv or None, year)
    found = _cache.get(key)
    if found is not None:
        return found
    with _lock:
        found = _cache.get(key)
        if found is None:
            table = holidays.country_holidays(country, subdiv=subdiv or None, years=year)
            found = frozenset(day for day in table if day.year == year)
            _cache[key] = found
    return found


def check_holiday_code(code: str) -> None:
    """Raise ``ValueError`` unless the ``holidays`` package knows the country
    (and subdivision) of ``code``: checked when the policy loads, so an
    unknown code never fails a decision later."""
    country, _, subdiv = code.partition("-")
    if country not in _country_codes():
        raise ValueError(f"`holidays: {code}`: no public-holiday calendar for country `{country}`")
    if subdiv and subdiv not in getattr(holidays, country).subdivisions:
        raise ValueError(f"`holidays: {code}`: country `{country}` has no subdivision `{subdiv}`")


def _country_codes() -> frozenset[str]:
    """The country codes (and aliases) ``holidays`` supports, from its static
    registry. ``list_supported_countries()`` gives the same codes but imports
    every country's calendar to list their subdivisions (~300 modules, 45-85 ms
    a process, paid by each dry-run worker as it loads its policies); a code
    without a subdivision (`CN`, `IE`) is then checked without importing any,
    and the calendars load only when a decision first needs one."""
    global _codes
    if _codes is None:
        try:
            from holidays.registry import EntityLoader

            _codes = frozenset(EntityLoader.get_country_codes(include_aliases=True))
        except (ImportError, AttributeError):  # a `holidays` without the registry's API
            _codes = frozenset(holidays.list_supported_countries())
    return _codes


_codes: frozenset[str] | None = None


def is_holiday(code: str, day: dt.date) -> bool:
    """Whether ``day`` is a public holiday under ``code``."""
    return day in holiday_dates(code, day.year)


def start_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant of ``day`` in ``tz`` (as an aware datetime)."""
    naive = dt.datetime.combine(day, dt.time())
    return naive.replace(tzinfo=tz)


def add_years(day: dt.date, years: int) -> dt.date:
    """``day`` plus whole years (29 February → 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole calendar months: the corresponding day, or the last
    day of the month when it has none (31 January + 1 month → 28/29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = (following - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def business_days_after(day: dt.date, count: int, code: str) -> dt.date:
    """The date ``count`` business days (Mon–Fri, not a holiday) after ``day``."""
    current = day
    left = count
    while left > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5 and not is_holiday(code, current):
            left -= 1
    return current
