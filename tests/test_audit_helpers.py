"""Shared helpers for the audit tests (no tests here): a small seeded account
generator, journal factories for every backend, and a PostgreSQL server.

PostgreSQL: ``$ESCALATION_TEST_POSTGRES_DSN`` when set; otherwise the tests
start a throwaway server with ``scripts/ci-postgres.sh`` (stopped at exit).
When none can be started they skip, except in CI (``CI=true``), where they
fail."""

from __future__ import annotations

import atexit
import datetime as dt
import os
import random
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine, JsonlJournal, Masking, SqliteJournal
from escalation.journal import Journal

from .conftest import CN_POLICY, ROOT

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
BASE_NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
BACKENDS = ["jsonl", "sqlite", "postgres"]
TEST_KEY = Masking(key=b"test-key-0123456789abcdef")

PHONES = ["+86-138-0000-0000", "+86-139-1111-2222", "+86-137-3333-4444"]
OUTCOMES = ["delivered", "no_answer", "voicemail", "busy", "conversation", "not_in_service", "sent"]


def make_accounts(n: int, seed: int = 7) -> list[tuple[dict[str, Any], dt.datetime]]:
    """``n`` (account record, now) pairs for the CN policy: arrears from 0 to
    150 days, small and large amounts, histories over several numbers, a few
    holds (dispute, promise to pay, plan) and opt-outs."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        now = BASE_NOW + dt.timedelta(hours=rng.randrange(0, 24 * 14), minutes=rng.randrange(60))
        days = rng.choice([0, 1, 2, 5, 8, 9, 12, 30, 31, 40, 45, 60, 61, 75, 91, 100, 120, 150])
        balance = rng.choice([800, 2999, 3000, 9999, 10000, 25000, 60000])
        overdue = min(balance, rng.choice([100, 499, 500, 999, 1000, 1200, 5000]))
        today = now.date()
        since = today - dt.timedelta(days=days)
        history = []
        moment = dt.datetime.combine(since, dt.time(9), SHANGHAI)
        for _ in range(rng.randrange(0, 9)):
            moment += dt.timedelta(hours=rng.randrange(6, 72))
            if moment >= now:
                break
            channel, action = rng.choice(
                [
                    ("sms", "sms_reminder"),
                    ("phone", "phone_call"),
                    ("phone", "phone_call"),
                    ("letter", "demand_letter"),
                ]
            )
            event: dict[str, Any] = {
                "at": moment.isoformat(),
                "action": action,
                "channel": channel,
                "outcome": rng.choice(OUTCOMES),
            }
            if channel == "phone":
                event["address"] = rng.choice(PHONES)
            history.append(event)
        record: dict[str, Any] = {
            "id": f"G-{seed}-{i}",
            "currency": "CNY",
            "amount_overdue": f"{overdue}.00",
            "balance": f"{balance}.00",
            "overdue_since": since.isoformat(),
            "timezone": "Asia/Shanghai",
            "product": rng.choice(["credit_card", "instalment"]),
            "flags": rng.choice([[], [], [], [], ["dispute"], ["hardship"]]),
            "opt_out": rng.choice([[], [], [], ["sms"]]),
            "history": history,
        }
        if rng.random() < 0.05:
            record["promise_to_pay"] = {
                "amount": "100.00",
                "due_date": (today + dt.timedelta(days=2)).isoformat(),
                "made_at": (now - dt.timedelta(days=1)).isoformat(),
            }
        if rng.random() < 0.05:
            record["payment_plan"] = {"status": rng.choice(["active", "broken"])}
        out.append((record, now))
    return out


# ----------------------------------------------------------------- PostgreSQL

_server: dict[str, str] = {}


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {message}")
    pytest.skip(f"no PostgreSQL server: {message}")


def _stop_server() -> None:
    if "dir" in _server:
        subprocess.run(
            [str(ROOT / "scripts" / "ci-postgres-stop.sh"), _server["dir"]], capture_output=True, check=False
        )


def postgres_dsn() -> str:
    """The test server's DSN: the environment's, or one started once per run."""
    dsn = os.environ.get("ESCALATION_TEST_POSTGRES_DSN")
    if dsn:
        return dsn
    if "dsn" in _server:
        return _server["dsn"]
    if "error" in _server:
        _unavailable(_server["error"])
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _server["error"] = "psycopg is not installed (pip install '.[postgres]')"
        _unavailable(_server["error"])
    try:
        done = subprocess.run(
            [str(ROOT / "scripts" / "ci-postgres.sh")],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _server["error"] = f"scripts/ci-postgres.sh could not run: {exc}"
        _unavailable(_server["error"])
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in done.stdout.splitlines()
        if line.startswith("export ")
    )
    if done.returncode != 0 or "ESCALATION_TEST_POSTGRES_DSN" not in exports:
        _server["error"] = "scripts/ci-postgres.sh failed: " + " | ".join(
            done.stderr.strip().splitlines()[-3:]
        )
        _unavailable(_server["error"])
    _server["dsn"] = exports["ESCALATION_TEST_POSTGRES_DSN"]
    _server["dir"] = exports.get("ESCALATION_PG_DIR", "")
    atexit.register(_stop_server)
    return _server["dsn"]


def pg_schema_dsn(schema: str) -> str:
    """The test DSN with ``search_path`` set to ``schema`` (created on first use)."""
    import psycopg

    dsn = postgres_dsn()
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


# ----------------------------------------------------------------- journals


def new_journal(backend: str, tmp_path: Path, *, masking: Masking | None = None) -> tuple[Journal, str]:
    """A fresh, empty journal of ``backend`` and its location (path or DSN)."""
    masking = masking or Masking()
    if backend == "jsonl":
        path = str(tmp_path / "journal.jsonl")
        return JsonlJournal(path, masking=masking), path
    if backend == "sqlite":
        path = str(tmp_path / "journal.sqlite")
        return SqliteJournal(path, masking=masking), path
    from escalation.journal.postgres import PostgresJournal

    dsn = pg_schema_dsn("t_" + uuid.uuid4().hex[:12])
    return PostgresJournal(dsn, masking=masking), dsn


def fill(journal: Journal, n: int, *, seed: int = 7, trace: bool = True) -> Engine:
    """Journal ``n`` generated decisions; the engine used."""
    engine = Engine.from_file(CN_POLICY, journal=journal)
    for record, now in make_accounts(n, seed):
        engine.decide(record, now=now, trace=trace)
    return engine
