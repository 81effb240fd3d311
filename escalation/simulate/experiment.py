"""Champion/challenger experiments: which policy each account gets.

An experiment file names the champion (the current policy), one challenger
and its share of accounts, and a salt::

    experiment: 1
    id: lawyer-letter-45
    salt: lawyer-letter-45-2026-11
    champion: ../policies/consumer-credit-cn.yaml
    challenger: {policy: cn-lawyer-letter-45.yaml, share: 20%}

Policy paths are relative to the file (``pack:``-style bundled names are not
needed: ``bundled:policies/<name>.yaml`` names a shipped policy).

**Assignment.** An account is in the challenger arm when the first 8 bytes of
SHA-256(``salt:account_id``), read as an unsigned big-endian integer, are
below ``share`` × 2**64. It depends on nothing but the id and the salt: the
same account is in the same arm every day, in every run, whatever the order
or the size of the portfolio; a new salt draws a new split. The same rule is
the one a lender's dispatcher can implement in any language."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from escalation._bundled import bundled
from escalation.simulate.model import read_located, validated

__all__ = ["Experiment", "arm_of", "load_experiment", "parse_share"]

_SHARE = re.compile(r"^(\d{1,2}(?:\.\d{1,4})?)%$")


def arm_of(account_id: str, salt: str, share: float) -> bool:
    """Whether ``account_id`` is in the challenger arm of an experiment that
    gives the challenger ``share`` of accounts (see the module docstring)."""
    digest = hashlib.sha256(f"{salt}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < int(share * 2**64)


def parse_share(text: str) -> float:
    """``20%`` → 0.2 (strictly between 0 and 100 %)."""
    match = _SHARE.match(text.strip())
    if not match or not 0 < float(match.group(1)) < 100:
        raise ValueError(f"share `{text[:20]}` is not a percentage between 0 and 100 (e.g. `20%`)")
    return float(match.group(1)) / 100


class Challenger(BaseModel):
    """The challenger policy and its share of accounts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policy: str = Field(min_length=1, max_length=1000)
    share: float

    @field_validator("share", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> float:
        if not isinstance(value, str):
            raise ValueError("give the share as a percentage string, e.g. `20%`")
        return parse_share(value)


class Experiment(BaseModel):
    """An experiment file (``experiment: 1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    experiment: Literal[1]
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    salt: str = Field(min_length=1, max_length=200)
    champion: str = Field(min_length=1, max_length=1000)
    challenger: Challenger
    description: str | None = Field(default=None, max_length=2000)

    def resolve(self, base: Path) -> tuple[Path, Path]:
        """The champion's and the challenger's policy paths."""
        return _resolve(self.champion, base), _resolve(self.challenger.policy, base)


def _resolve(name: str, base: Path) -> Path:
    if name.startswith("bundled:"):
        return bundled(name.removeprefix("bundled:"))
    return base / name


def load_experiment(path: str | Path) -> Experiment:
    """Load an experiment file (strict YAML). Raises :class:`ResponseModelError`
    with every located issue."""
    return validated(Experiment, read_located(Path(path)))
