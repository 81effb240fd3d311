"""Numbers, money, dates and times as a person reads them, in ``en`` and
``zh-CN``.

The patterns are CLDR's (what Babel gives for these locales), written out
here rather than read from Babel at run time, for two reasons: Babel's locale
data is 36 MB installed, more than the core's whole budget; and a decision
must be byte-identical for the same input whatever is installed, while CLDR
changes between Babel releases (CLDR 42 changed the space in English times
to U+202F). ``tests/test_reasons.py`` checks these against Babel."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

from escalation._currencies import MINOR_UNITS
from escalation._language import Locale

__all__ = ["article", "count_noun", "date", "date_time", "money", "number", "span"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# CLDR zh_CN currency symbols (standard pattern ``¤#,##0.00``); others show their code.
_ZH_SYMBOLS = {"CNY": "¥", "USD": "US$", "GBP": "£", "EUR": "€", "HKD": "HK$", "JPY": "JP¥"}


_QUANTA = tuple(Decimal(1).scaleb(-places) for places in range(5))  # currencies have 0-4 places
_PATTERNS = tuple(f",.{places}f" for places in range(5))


def number(value: int | Decimal, places: int = 0) -> str:
    """``1,234`` or ``1,234.50``: grouping by thousands in both locales."""
    if 0 <= places < 5:  # the common case, with its quantum and pattern made once
        return format(Decimal(value).quantize(_QUANTA[places], rounding=ROUND_HALF_EVEN), _PATTERNS[places])
    quantum = Decimal(1).scaleb(-places)
    return f"{Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN):,.{places}f}"


def money(amount: Decimal | int, currency: str, locale: Locale) -> str:
    """``CNY 2,450.00`` (en: the ISO code, unambiguous across markets) or
    ``¥2,450.00`` (zh-CN: CLDR's symbol, its code when it has none)."""
    shown = number(Decimal(amount), MINOR_UNITS.get(currency, 2))
    if locale == "zh-CN":
        symbol = _ZH_SYMBOLS.get(currency)
        return f"{symbol}{shown}" if symbol else f"{currency} {shown}"
    return f"{currency} {shown}"


def date(day: dt.date, locale: Locale, today: dt.date | None = None) -> str:
    """``22 Nov`` / ``11月22日``; with the year when it is not ``today``'s."""
    same_year = today is not None and today.year == day.year
    if locale == "zh-CN":
        return (f"{day.month}月{day.day}日") if same_year else f"{day.year}年{day.month}月{day.day}日"
    text = f"{day.day} {_MONTHS[day.month - 1]}"
    return text if same_year else f"{text} {day.year}"


def date_time(moment: dt.datetime, locale: Locale, today: dt.date | None = None) -> str:
    """``24 Nov 08:00`` / ``11月24日 08:00`` (the instant already in local time)."""
    return f"{date(moment.date(), locale, today)} {moment:%H:%M}"


def span(days: int, locale: Locale) -> str:
    """``1 day``, ``14 days`` / ``14天``."""
    if locale == "zh-CN":
        return f"{days}天"
    return f"{days} day" if days == 1 else f"{days} days"


def hours(count: int, locale: Locale) -> str:
    """``1 hour``, ``20 hours`` / ``20小时``."""
    if locale == "zh-CN":
        return f"{count}小时"
    return f"{count} hour" if count == 1 else f"{count} hours"


def count_noun(n: int, noun: str) -> str:
    """English plural of a count noun: ``1 call``, ``3 calls``, ``2 reminder SMS``."""
    return f"{n} {noun if n == 1 else plural(noun)}"


def article(noun: str) -> str:
    """``a demand letter``, ``an arrears letter``, ``an SMS``."""
    first = noun[:1]
    vowel = first in "aeiouAEIOU" or (noun.split(" ")[0].isupper() and first in "AEFHILMNORSX")
    return f"{'an' if vowel else 'a'} {noun}"


def plural(noun: str) -> str:
    """``calls``, ``demand letters``, ``reminder SMS``, ``letters of claim``."""
    if " of " in noun:
        first, _, rest = noun.partition(" of ")
        return f"{plural(first)} of {rest}"
    head, _, last = noun.rpartition(" ")
    if last.isupper() or last.endswith("s"):
        return noun
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("ch", "sh", "x")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last
