"""Optional extras: which feature needs which extra, and one clear error when
it is missing (never an ImportError traceback).

| extra | brings | for |
|---|---|---|
| ``portfolio`` | pyarrow, numpy, plotly, rich | dry-runs (columnar), Parquet, the HTML report, generate |
| ``rete`` | durable-rules (Python < 3.13; builds with a C compiler) | ``backend="rete"`` |
| ``postgres`` | psycopg 3 | ``postgresql://`` journals |
| ``spark`` | pyspark[sql] (and [portfolio]) | ``escalation.spark`` |
| ``ray`` | ray[data] (and [portfolio]) | ``escalation.ray`` |
"""

from __future__ import annotations

import importlib.util

from escalation.errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

#: extra → the top-level modules it installs
EXTRAS: dict[str, tuple[str, ...]] = {
    "portfolio": ("pyarrow", "numpy", "plotly", "rich"),
    "rete": ("durable",),
    "postgres": ("psycopg",),
    "spark": ("pyspark", "pyarrow", "pandas"),
    "ray": ("ray", "pyarrow"),
}


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed."""
    absent = []
    for name in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or blocked install counts as missing
            found = False
        if not found:
            absent.append(name)
    return absent


def require(extra: str, feature: str) -> None:
    """Raise :class:`~escalation.errors.MissingExtraError` when ``extra`` is not
    installed: ``<feature> needs the [extra] extra: pip install 'escalation[extra]'``."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{feature} needs the [{extra}] extra ({', '.join(absent)} not installed): "
            f"pip install 'escalation[{extra}]'",
            extra=extra,
        )
