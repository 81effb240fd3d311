"""The models ``decide`` builds without validation equal the validated ones, and
an account keeps one canonical text, not two.

``_trace.entry`` builds a :class:`TraceEntry` by hand (no keyword dict, one
field-name set copied) and ``decision.construct`` skips the ``__new__`` lookup:
each is held to the model pydantic validates from the same values — fields,
fields set, equality, JSON, pickling. The memo keeps a record's canonical text
(what a decision id hashes) and its history's only while the record's own text
cannot be kept (a record with attributes or ``opt_out_at``)."""

from __future__ import annotations

import datetime as dt
import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine, load_policy, parse_account
from escalation import _account_memo as memo
from escalation._canonical import canonical, reference_canonical
from escalation._trace import entry
from escalation.decision import BlockedAction, Decision, Instalment, TraceEntry, construct
from escalation.portfolio.generate import generate

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
ENGINE = Engine(load_policy(ROOT / "policies/consumer-credit-cn.yaml"))

ENTRIES: list[tuple[Any, ...]] = [
    ("hold:dispute", False, {}),
    ("tier:sms_reminder", True, {"days_overdue": 3, "flags": ["hardship"]}, None, None, "condition not met"),
    ("guard:quiet_hours", True, {"local_time": "23:10"}, "phone_call", "phone", "outside contact hours"),
    ("tier:lawyer_letter", False, {"done.demand_letter": 0}, None, None, None),
    ("guard:frequency", False, {}, "sms_reminder", "sms", None),
]


def _validated(rule: str, matched: bool, facts: dict[str, Any], *rest: str | None) -> TraceEntry:
    fields = dict(zip(("action", "channel", "note"), rest, strict=False))
    return TraceEntry(rule=rule, matched=matched, facts=facts, **fields)


@pytest.mark.parametrize("values", ENTRIES)
def test_an_entry_is_the_validated_model(values: tuple[Any, ...]) -> None:
    built, reference = entry(*values), _validated(*values)
    assert type(built) is TraceEntry
    assert built.__dict__ == reference.__dict__
    assert list(built.__dict__) == list(TraceEntry.model_fields)  # the fields' order: JSON's
    assert built.model_fields_set == set(TraceEntry.model_fields)
    assert built == reference
    assert built.model_dump_json() == reference.model_dump_json()
    assert built.model_dump() == reference.model_dump()
    assert pickle.loads(pickle.dumps(built)) == reference
    assert built.__pydantic_extra__ is None and built.__pydantic_private__ is None


def test_entries_do_not_share_their_fields_set() -> None:
    one, two = entry("tier:a", True, {}), entry("tier:b", False, {})
    assert one.model_fields_set is not two.model_fields_set


def test_construct_builds_the_validated_model() -> None:
    due = dt.date(2026, 12, 1)
    values: dict[str, Any] = {"number": 3, "due": due, "amount": Decimal("123.45")}
    assert construct(Instalment, **values) == Instalment(**values)
    blocked = {
        "action": "phone_call",
        "channel": "phone",
        "guard": "quiet_hours",
        "reason": "outside contact hours",
        "cite": "policy",
        "until": dt.datetime(2026, 11, 24, 8, tzinfo=dt.UTC),
    }
    built = construct(BlockedAction, **blocked)
    assert built == BlockedAction(**blocked)
    assert built.model_dump_json() == BlockedAction(**blocked).model_dump_json()


def _decisions(seed: int, count: int, trace: bool) -> list[Decision]:
    return [ENGINE.decide(record, now=NOW, trace=trace) for record in generate(count, seed, "cn-card", NOW)]


def test_decisions_equal_their_validated_copies() -> None:
    """Every decision (trace entries, blocked actions, offers and their
    instalments included) equals the one pydantic validates from its JSON."""
    statuses = set()
    for decision in _decisions(11, 150, trace=True):
        statuses.add(decision.status)
        again = Decision.model_validate_json(decision.to_json())
        assert again == decision
        assert again.to_json() == decision.to_json()
        assert pickle.loads(pickle.dumps(decision)) == decision
    assert {"act", "none"} <= statuses


def _record(attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    # the first generated account with a history of a dozen events or more
    record = next(r for r in generate(200, 5, "cn-card", NOW) if len(r["history"]) >= 12)
    if attributes is not None:
        record["attributes"] = attributes
    return record


def test_a_record_keeps_its_text_once() -> None:
    account = parse_account(_record())
    first = canonical(account)
    entry_ = memo.memo_of(account)
    assert entry_.record == first == reference_canonical(account)
    assert entry_.text is None  # the history's text is inside the record's: not kept twice
    assert canonical(account) is first  # a second decision reads it


def test_a_record_with_attributes_keeps_its_history_text() -> None:
    account = parse_account(_record({"region": "north"}))
    first = canonical(account)
    entry_ = memo.memo_of(account)
    assert entry_.record is None and entry_.text is not None
    assert first == reference_canonical(account)
    account.attributes["region"] = "south"  # a dict a caller may change in place
    assert canonical(account) == reference_canonical(account) != first
