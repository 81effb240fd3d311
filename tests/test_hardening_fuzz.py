"""Fuzzing (issue 9): mutated records and policies through ``decide``,
``decide_many``, ``check`` and ``dry-run``. Whatever the input: no traceback,
bounded time per input, accounts in = decisions + error rows, and no
mutation turns a ``hold`` or a blocked action into ``act``."""

from __future__ import annotations

import copy
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Decision, Engine, EvaluationError, RecordError, dry_run
from escalation.cli import main
from escalation.decision import ErrorRow

from .conftest import ROOT
from .strategies import records

ENGINES = [
    Engine.from_file(ROOT / "policies" / name)
    for name in ("consumer-credit-cn.yaml", "us-card-collector.yaml")
]
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
SECONDS = 20.0  # per input: a hang guard (typical inputs take milliseconds), loose for loaded machines
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

HOSTILE = [
    None, True, -1, 0, 10**30, "9" * 60, 1.5, "", " ", "\x00", "\u200b", "x" * 5000, [], {}, [[[[]]]],
    {"a": {"b": {"c": []}}}, "0001-01-01", "9999-12-31", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00", "2026-02-30", "America/Argentina", "../../etc/passwd", "+86 138 0013 8000",
]  # fmt: skip
FIELDS = ["id", "currency", "amount_overdue", "balance", "days_overdue", "overdue_since", "timezone",
          "timezones", "flags", "opt_out", "promise_to_pay", "payment_plan", "last_payment_at", "history",
          "validation_notice_sent_at", "breathing_space", "nickname"]  # fmt: skip
EVENT_FIELDS = ["at", "action", "channel", "outcome", "direction", "address", "consent_until"]


def flag_variants(flag: str) -> list[str]:
    """Ways a careless integrator (or an attacker) spells a flag."""
    return [flag.upper(), flag.capitalize(), flag + "d", flag + "\u200b", "\u202e" + flag, flag + "\x00",
            flag.replace("e", "\u0435"), f" {flag}", flag.replace("_", " "), f"hardship,{flag}"]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, engine: Engine) -> dict[str, Any]:
    """A valid record, then 1 to 3 hostile changes (types, calendar limits, flags, channels)."""
    record = draw(records(engine.policy, NOW))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["field", "event", "flag", "channel", "deep"]))
        if kind == "field":
            record[draw(st.sampled_from(FIELDS))] = draw(st.sampled_from(HOSTILE))
        elif kind == "event" and isinstance(record.get("history"), list) and record["history"]:
            event = draw(st.sampled_from(record["history"]))
            if isinstance(event, dict):
                event[draw(st.sampled_from(EVENT_FIELDS))] = draw(st.sampled_from(HOSTILE))
        elif kind == "flag":
            record["flags"] = [
                draw(st.sampled_from(flag_variants(draw(st.sampled_from(["dispute", "deceased"])))))
            ]
        elif kind == "channel" and isinstance(record.get("history"), list):
            for event in record["history"]:
                if isinstance(event, dict) and draw(st.booleans()):
                    event.pop("channel", None)
        elif kind == "deep":
            record["promise_to_pay"] = json.loads("[" * 200 + "]" * 200)
    return record


def decide(engine: Engine, record: Any) -> Decision | Exception:
    """The decision, or the documented error; anything else fails the test."""
    started = time.monotonic()
    try:
        return engine.decide(record, now=NOW)
    except (RecordError, EvaluationError) as exc:
        return exc
    finally:
        assert time.monotonic() - started < SECONDS


@settings(FUZZ, max_examples=300)
@given(st.data())
def test_mutated_records_decide_or_fail_cleanly(data: st.DataObject) -> None:
    """A mutated record gives a decision or a RecordError/EvaluationError, quickly; never a traceback."""
    engine = data.draw(st.sampled_from(ENGINES))
    decide(engine, data.draw(mutated(engine)))


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_no_mutation_turns_hold_or_block_into_act(data: st.DataObject) -> None:
    """Misspelling a flag or omitting outbound channels never lifts a hold or a block."""
    engine = data.draw(st.sampled_from(ENGINES))
    record = data.draw(records(engine.policy, NOW))
    record["flags"] = data.draw(st.sampled_from([["dispute"], ["deceased"], ["bankruptcy"], []]))
    base = decide(engine, record)
    assert isinstance(base, Decision)
    changed = copy.deepcopy(record)
    if record["flags"] and data.draw(st.booleans()):
        changed["flags"] = [data.draw(st.sampled_from(flag_variants(record["flags"][0])))]
    for event in changed["history"]:
        if event.get("direction", "outbound") == "outbound" and data.draw(st.booleans()):
            del event["channel"]
    after = decide(engine, changed)
    if isinstance(after, Exception):
        return  # refused: fail closed
    # the same decision; its id hashes the record as given, and a payment keeps no inferred channel
    assert {**base.outcome(), "id": None} == {**after.outcome(), "id": None}
    if base.status == "hold" or base.blocked:
        blocked = {(b.action, b.channel) for b in base.blocked}
        assert after.status != "act" or (after.action, after.channel) not in blocked


@settings(FUZZ, max_examples=15)
@given(st.data())
def test_decide_many_accounts_for_every_record(data: st.DataObject) -> None:
    """decide_many over mutated records: one decision or error row per record, in order."""
    engine = data.draw(st.sampled_from(ENGINES))
    batch = data.draw(st.lists(mutated(engine), min_size=1, max_size=8))
    batch.append("not a record")  # type: ignore[arg-type]
    out = list(engine.decide_many(batch, now=NOW))
    assert len(batch) == len(out)
    assert isinstance(out[-1], ErrorRow)


def corrupt(line: str, how: int) -> str:
    """One of several ways a portfolio line breaks."""
    return [line[: len(line) // 2], line.replace('"', "", 1), line + line, "{broken",
            line.replace(":", ":[", 1), '{"a":' * 300 + "1" + "}" * 300,
            line.replace('"id"', '"id": "dup", "id"', 1), "\xff"][how]  # fmt: skip


@settings(FUZZ, max_examples=15)
@given(st.data())
def test_dry_run_accounts_for_every_line(data: st.DataObject) -> None:
    """A JSONL portfolio with corrupted lines: accounts = decided + error rows = non-empty lines."""
    engine = ENGINES[0]
    lines = [json.dumps(data.draw(records(engine.policy, NOW))) for _ in range(data.draw(st.integers(1, 12)))]
    for index in data.draw(st.lists(st.integers(0, len(lines) - 1), max_size=4)):
        lines[index] = corrupt(lines[index], data.draw(st.integers(0, 7)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
        result = dry_run(engine.policy, path, at=NOW)
    assert result.accounts == result.decided + result.errors == len([x for x in lines if x.strip()])


POLICY_TEXT = (ROOT / "policies" / "consumer-credit-cn.yaml").read_text()
SNIPPETS = ["\x00", "\x07", "!!str 3", "\uff11d", "true", "1.0", "[" * 60, "{a: 1, a: 2}", "&x 1",
            "*x", "9999d", "holidays: XX", "'Dispute' in flags", "<<: {}", "\t", "\ufeff",
            "include: [/dev/zero]"]  # fmt: skip


@settings(FUZZ, max_examples=100)
@given(st.data())
def test_mutated_policies_check_cleanly(data: st.DataObject) -> None:
    """`escalation check` on a mutated policy: exit 0 or 3, never a traceback, quickly."""
    text = POLICY_TEXT
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at] + data.draw(st.sampled_from(SNIPPETS)) + text[at:]
        else:
            text = text[:at] + text[at + data.draw(st.integers(1, 40)) :]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policies" / "p.yaml"
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        (Path(folder) / "rules").symlink_to(ROOT / "rules")
        started = time.monotonic()
        result = CliRunner().invoke(main, ["check", str(path)])
        assert time.monotonic() - started < SECONDS
    assert result.exit_code in (0, 3), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
