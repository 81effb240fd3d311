"""Portfolios with planted violations: histories that obey the policy (each
contact kept only when no hold or guard blocks it as of its instant — a
dialer that obeys the engine), one known violation in about ``rate`` of the
accounts (:class:`~escalation.portfolio.plant.Planter`), and the truth in a
sidecar file, against which the contact audit is tested."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escalation._bundled import bundled
from escalation.contacts._check import ContactAuditor
from escalation.engine import Engine
from escalation.policy import load_policy
from escalation.portfolio.generate import PROFILES, generate, write_portfolio
from escalation.portfolio.plant import Planter
from escalation.record import Account, zone

__all__ = ["Plant", "generate_planted", "parse_rate", "write_planted"]


@dataclass(frozen=True)
class Plant:
    """One planted violation: the account, the event's index in its history
    and the hold or guard expected to report it."""

    account_id: str
    event_index: int
    rule: str
    plant: str

    def to_json(self) -> dict[str, Any]:
        """The sidecar row."""
        return {
            "account_id": self.account_id,
            "event_index": self.event_index,
            "guard": self.rule,
            "plant": self.plant,
        }


def parse_rate(text: str) -> float:
    """``0.5%`` or ``0.005`` → 0.005 (a share between 0 and 1)."""
    value = text.strip()
    try:
        rate = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ValueError(f"`{text}` is not a rate (like `0.5%` or `0.005`)") from None
    if not 0 <= rate <= 1:
        raise ValueError(f"`{text}` is not between 0% and 100%")
    return rate


def _dispatch(
    record: dict[str, Any], engine: Engine, auditor: ContactAuditor, at: dt.datetime
) -> dict[str, Any]:
    """``record`` with only the contacts no hold or guard blocks, judged in time order."""
    history = sorted(record.get("history", []), key=lambda e: dt.datetime.fromisoformat(e["at"]))
    account: Account = engine.validate({**record, "history": history}, now=at)
    kept: list[int] = []
    for index, event in enumerate(account.history):
        if event.direction.value == "outbound":
            trial = account.model_copy(update={"history": (*(account.history[i] for i in kept), event)})
            if auditor.check_event(trial, len(kept), at):
                continue
        kept.append(index)
    return {**record, "history": [history[i] for i in kept]}


def generate_planted(
    accounts: int, seed: int, profile: str, at: dt.datetime, rate: float
) -> Iterator[tuple[dict[str, Any], list[Plant]]]:
    """Records whose histories obey the profile's policy, about ``rate`` of
    them with one planted violation; each with the plants it carries."""
    spec = PROFILES[profile]
    policy = load_policy(bundled(spec.policy))
    engine = Engine(policy)
    auditor = ContactAuditor(policy)
    rng = random.Random(f"plant:{seed}")  # noqa: S311 - synthetic data, not security
    planter = Planter(policy, rng, at)
    for record in generate(accounts, seed, profile, at):
        tz = zone(record.get("timezone") or policy.header.timezone)
        planted = rng.random() < rate
        extra: list[dict[str, Any]] = []
        expected: list[tuple[int, str]] = []
        name = ""
        if planted:
            extra, expected, name = planter.plant(record, tz)
        elif "dispute" in record.get("flags", ()) and record.get("history"):
            moment = dt.datetime.fromisoformat(rng.choice(record["history"])["at"])
            record["dispute_received_at"] = moment.isoformat()
        clean = _dispatch(record, engine, auditor, at)
        base = len(clean["history"])
        clean["history"] = clean["history"] + extra
        yield clean, [Plant(clean["id"], base + offset, rule, name) for offset, rule in expected]


def write_planted(
    accounts: int, seed: int, profile: str, at: dt.datetime, rate: float, path: str | Path
) -> tuple[int, int]:
    """Write :func:`generate_planted`'s records to ``path`` (JSONL or Parquet) and
    the plants to ``<path>.planted.jsonl``; the counts of accounts and plants."""
    path = Path(path)
    plants: list[Plant] = []

    def records() -> Iterator[dict[str, Any]]:
        for record, planted in generate_planted(accounts, seed, profile, at, rate):
            plants.extend(planted)
            yield record

    count = write_portfolio(records(), path)
    with Path(f"{path}.planted.jsonl").open("w", encoding="utf-8") as handle:
        for plant in plants:
            handle.write(json.dumps(plant.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
    return count, len(plants)
