"""A policy's `holidays:` codes are checked against the package's registry
without importing every country's calendar: the same answers as
``holidays.list_supported_countries()`` for every country and subdivision."""

from __future__ import annotations

import subprocess
import sys

import holidays
import pytest

from escalation._calendar import check_holiday_code


def test_every_supported_country_and_subdivision_is_accepted() -> None:
    supported = holidays.list_supported_countries()
    for country, subdivisions in supported.items():
        check_holiday_code(country)
        for subdivision in subdivisions:
            check_holiday_code(f"{country}-{subdivision}")


@pytest.mark.parametrize("code", ["XX", "ZZ-01", "GB-XYZ", "CN-NOPE", "gb", ""])
def test_unknown_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="holidays: "):
        check_holiday_code(code)


def test_a_country_code_is_checked_without_importing_the_calendars() -> None:
    probe = (
        "import sys; from escalation._calendar import check_holiday_code; check_holiday_code('CN');"
        "check_holiday_code('IE'); print(sum(m.startswith('holidays.countries.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert int(out.stdout) == 0, out.stdout
