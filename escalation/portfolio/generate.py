"""Synthetic portfolios: deterministic for a seed, shaped like a real book.

Days overdue are skewed to the early buckets (most arrears cure early), balances
are log-normal, histories follow the profile's policy ladder (each tier from the
day its condition allows, at its own pace, at plausible local hours, with mixed
outcomes), and a few accounts carry disputes, promises to pay, payment plans,
opt-outs or several time zones. Identifiers are sequential and phone numbers
come from reserved fictional ranges: no real personal data."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from escalation._bundled import bundled
from escalation._currencies import MINOR_UNITS
from escalation._language import Span
from escalation.policy import Policy, load_policy
from escalation.policy._expr import comparisons
from escalation.record import zone

__all__ = ["PROFILES", "Profile", "generate", "write_portfolio"]


@dataclass(frozen=True)
class Profile:
    """A kind of book: its policy, currency, zones and amounts."""

    name: str
    policy: str
    prefix: str
    zones: tuple[str, ...]
    balance_mu: float  # log-normal parameters of the balance, in currency units
    balance_sigma: float
    phone: str  # a fictional number range


PROFILES = {
    "cn-card": Profile("cn-card", "policies/consumer-credit-cn.yaml", "CN", ("Asia/Shanghai", "Asia/Urumqi"),
                       8.6, 1.0, "+86-100-0000-{:04d}"),
    "us-card": Profile("us-card", "policies/us-card-collector.yaml", "US",
                       ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
                       7.4, 1.1, "+1-555-01{:02d}"),
    "uk-loan": Profile("uk-loan", "policies/uk-consumer-loan.yaml", "UK", ("Europe/London",),
                       8.0, 0.9, "+44-7700-900{:03d}"),
    "ie-loan": Profile("ie-loan", "policies/ie-consumer-loan.yaml", "IE", ("Europe/Dublin",),
                       8.0, 0.9, "+353-20-910-{:04d}"),
}  # fmt: skip

_OUTCOMES = {
    "phone": (
        ["no_answer"] * 5 + ["voicemail"] * 3 + ["busy", "conversation", "conversation", "promise_to_pay"]
    ),
    "sms": ["delivered"] * 9 + ["failed"],
    "email": ["delivered"] * 9 + ["undeliverable"],
    "letter": ["delivered"] * 19 + ["undeliverable"],
}


def _start_day(condition: Any) -> int:
    """The days-overdue threshold a tier's condition needs (1 when none)."""
    for fact, op, constant in comparisons(condition):
        if fact == "days_overdue" and op in (">=", ">"):
            return int(constant) + (1 if op == ">" else 0)
    return 1


def _days_overdue(rng: random.Random) -> int:
    """Skewed to early buckets: most accounts are days or weeks behind."""
    roll = rng.random()
    if roll < 0.45:
        return rng.randint(1, 15)
    if roll < 0.70:
        return rng.randint(16, 45)
    if roll < 0.85:
        return rng.randint(46, 95)
    if roll < 0.97:
        return rng.randint(96, 240)
    return rng.randint(241, 900)


def _every_days(every: Span | None) -> int:
    """A tier interval in whole days (at least one; a week without one)."""
    if every is None:
        return 7
    if every.calendar:
        return every.amount * (7 if every.unit == "w" else 1)
    return max(1, every.amount // (24 if every.unit == "h" else 1440))


def _ladder(policy: Policy) -> list[tuple[str, str, int, int, int]]:
    """(tier, channel, start day, every n days, max) for each tier of the policy."""
    steps = []
    for tier in policy.tiers:
        model = tier.model
        if model.kind != "contact":  # placements and recalls are not contacts to synthesise
            continue
        every = _every_days(model.repeat.every)
        steps.append(
            (model.id, model.channel_order[0].value, _start_day(tier.when), every, model.repeat.max or 3)
        )
    return steps


def generate(
    accounts: int, seed: int, profile: str = "cn-card", at: dt.datetime | None = None
) -> Iterator[dict[str, Any]]:
    """``accounts`` synthetic records valid at ``at`` for the profile's policy."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile `{profile}`; choose one of: {', '.join(PROFILES)}")
    spec = PROFILES[profile]
    policy = load_policy(bundled(spec.policy))
    at = at or dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    currency = policy.header.currency
    unit = Decimal(1).scaleb(-MINOR_UNITS[currency])
    steps = _ladder(policy)
    home = spec.zones[0]
    for index in range(1, accounts + 1):
        days = _days_overdue(rng)
        balance = Decimal(
            str(round(min(rng.lognormvariate(spec.balance_mu, spec.balance_sigma), 500_000), 2))
        )
        overdue = min(balance, (balance * Decimal(str(round(rng.uniform(0.05, 0.6), 3)))).quantize(unit))
        tz_name = home if rng.random() < 0.9 else rng.choice(spec.zones)
        tz = zone(tz_name)
        today = at.astimezone(tz).date()
        record: dict[str, Any] = {
            "id": f"{spec.prefix}-{index:07d}",
            "currency": currency,
            "amount_overdue": str(overdue.quantize(unit)),
            "balance": str(balance.quantize(unit)),
            "overdue_since": (today - dt.timedelta(days=days)).isoformat(),
            "timezone": tz_name,
        }
        if rng.random() < 0.05 and len(spec.zones) > 1:
            record["timezones"] = sorted({tz_name, rng.choice(spec.zones)})
        record["history"] = _history(rng, steps, days, at, tz, spec, index)
        flags = []
        if rng.random() < 0.02:
            flags.append("dispute")
        if rng.random() < 0.005:
            flags.append("bankruptcy")
        if rng.random() < 0.02:
            flags.append("hardship")
        if flags:
            record["flags"] = flags
        if rng.random() < 0.03:
            record["opt_out"] = [rng.choice(["phone", "sms"])]
        if rng.random() < 0.05:
            made = at - dt.timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 8))
            record["promise_to_pay"] = {
                "amount": record["amount_overdue"],
                "due_date": (today + dt.timedelta(days=rng.randint(-6, 10))).isoformat(),
                "made_at": made.astimezone(tz).isoformat(),
            }
        if rng.random() < 0.04:
            record["payment_plan"] = {
                "status": rng.choice(["active", "active", "broken", "completed"]),
                "next_due_date": (today + dt.timedelta(days=rng.randint(-10, 25))).isoformat(),
            }
        if rng.random() < 0.5:
            record["last_payment_at"] = (today - dt.timedelta(days=days + rng.randint(0, 400))).isoformat()
        if profile == "us-card":
            record["actor_type"] = "third_party_collector"
            sent = at - dt.timedelta(days=min(days, 40) + 5)
            record["validation_notice_sent_at"] = sent.astimezone(tz).isoformat()
        yield record


def _history(
    rng: random.Random,
    steps: list[tuple[str, str, int, int, int]],
    days: int,
    at: dt.datetime,
    tz: Any,
    spec: Profile,
    index: int,
) -> list[dict[str, Any]]:
    """Actions of the ladder so far: each tier from its start day, at its pace."""
    events: list[dict[str, Any]] = []
    start = at - dt.timedelta(days=days)
    number = spec.phone.format(index % 100)
    for tier, channel, first_day, every, most in steps:
        if first_day > days or first_day < 1 or rng.random() < 0.15:
            continue
        day = first_day + rng.randint(0, 2)
        count = 0
        while day < days and count < most:
            local = (start + dt.timedelta(days=day)).astimezone(tz)
            moment = local.replace(
                hour=rng.randint(9, 19), minute=rng.randint(0, 59), second=0, microsecond=0
            )
            if moment >= at:
                break
            event: dict[str, Any] = {
                "at": moment.isoformat(),
                "action": tier,
                "channel": channel,
                "outcome": rng.choice(_OUTCOMES.get(channel, ["sent"])),
            }
            if channel == "phone":
                event["address"] = number
            events.append(event)
            count += 1
            day += every + rng.randint(0, every)
    events.sort(key=lambda e: e["at"])
    return events


def write_portfolio(records: Iterator[dict[str, Any]], path: str | Path) -> int:
    """Write records as JSON lines (``.jsonl``), Parquet (``.parquet``) or the
    typed layout (a ``.typed`` folder); the count."""
    path = Path(path)
    if path.suffix.lower() == ".typed":
        from escalation.portfolio.arrow import write_typed

        return write_typed(records, path)
    count = 0
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        schema = _parquet_schema()
        batch: list[dict[str, Any]] = []
        with pq.ParquetWriter(path, schema) as writer:
            for record in records:
                unknown = set(record) - set(schema.names)
                if unknown:  # never drop a field silently
                    raise ValueError(f"no Parquet column for {sorted(unknown)}")
                batch.append(record)
                count += 1
                if len(batch) >= 20_000:
                    writer.write_table(_table(batch, schema))
                    batch = []
            writer.write_table(_table(batch, schema))
        return count
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def _parquet_schema() -> Any:
    import pyarrow as pa

    text = pa.string()
    event = pa.struct(
        [("at", text), ("action", text), ("channel", text), ("outcome", text), ("address", text)]
    )
    return pa.schema(
        [
            ("id", text),
            ("currency", text),
            ("amount_overdue", text),
            ("balance", text),
            ("overdue_since", text),
            ("timezone", text),
            ("timezones", pa.list_(text)),
            ("history", pa.list_(event)),
            ("flags", pa.list_(text)),
            ("opt_out", pa.list_(text)),
            ("promise_to_pay", pa.struct([("amount", text), ("due_date", text), ("made_at", text)])),
            ("payment_plan", pa.struct([("status", text), ("next_due_date", text)])),
            ("last_payment_at", text),
            ("actor_type", text),
            ("validation_notice_sent_at", text),
        ]
    )


def _table(batch: list[dict[str, Any]], schema: Any) -> Any:
    import pyarrow as pa

    return pa.Table.from_pylist(batch, schema=schema)
