"""The fast contact audit (the default) against the reference (every contact
re-derived and re-checked): the same violations, error rows and summary, on
generated portfolios with planted violations of every kind, on every shipped
policy — and on the same portfolios with dated state scattered through the
histories (disputes, verifications, cease requests, promises, Breathing
Spaces, consents, extra zones, opt-outs, bursts of calls at any hour), so
that every boundary the screen's state depends on is crossed mid-history."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from escalation import audit_contacts
from escalation.cli import main
from escalation.errors import UsageError
from escalation.portfolio.generate import PROFILES

from .conftest import CN_POLICY, NOW

EVER = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
ZONES = ("America/Los_Angeles", "Asia/Tokyo", "Europe/London", "Australia/Sydney")
FLAGS = ("dispute", "hardship", "contact_time_agreed", "bankruptcy", "vulnerable")


def _planted(tmp_path: Path, profile: str, seed: int, rate: str, n: int) -> Path:
    path = tmp_path / f"{profile}-{seed}.jsonl"
    args = ["portfolio", "generate", "-n", str(n), "--seed", str(seed), "--profile", profile,
            "-o", str(path), "--violations", rate, "--at", NOW.isoformat()]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert 0 == result.exit_code, result.output
    return path


def _instant(history: list[dict[str, Any]], rng: random.Random) -> dt.datetime:
    """An instant between two events of ``history`` (never after the export)."""
    moments = sorted(dt.datetime.fromisoformat(e["at"]) for e in history)
    pick = rng.choice(moments) + dt.timedelta(minutes=rng.choice((-90, -1, 1, 30, 600)))
    return min(pick, NOW - dt.timedelta(hours=1))


def _perturb(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The record with dated state placed somewhere in its history."""
    history = record.get("history") or []
    if not history or rng.random() < 0.3:
        return record
    record = dict(record)
    tz = dt.timezone(dt.timedelta(0))
    for _ in range(rng.randint(1, 3)):
        moment = _instant(history, rng)
        choice = rng.randrange(9)
        if choice == 0:
            record["dispute_received_at"] = moment.isoformat()
            roll = rng.random()
            if roll < 0.5:
                later = moment + dt.timedelta(days=rng.randint(1, 12))
                record["verification_sent_at"] = min(later, NOW - dt.timedelta(minutes=5)).isoformat()
            elif roll < 0.75:  # an earlier dispute was verified; this one is new
                record["verification_sent_at"] = (moment - dt.timedelta(days=rng.randint(1, 9))).isoformat()
        elif choice == 1:
            record["cease_communication_received_at"] = moment.isoformat()
        elif choice == 2:
            due = moment.date() + dt.timedelta(days=rng.randint(0, 10))
            record["promise_to_pay"] = {"amount": "50.00", "due_date": due.isoformat(),
                                        "made_at": moment.isoformat()}  # fmt: skip
        elif choice == 3:
            start = moment.date()
            space: dict[str, Any] = {"type": "standard", "start": start.isoformat()}
            if rng.random() < 0.6:
                space["end"] = (start + dt.timedelta(days=rng.randint(0, 20))).isoformat()
            record["breathing_space"] = space
        elif choice == 4:
            event = dict(rng.choice(history))
            event["at"] = moment.isoformat()
            event["direction"] = "inbound"
            event["channel"] = "phone"
            event["outcome"] = "conversation"
            event["consent_until"] = (moment + dt.timedelta(days=rng.randint(1, 9))).isoformat()
            event.pop("action", None)
            history = [*history, event]
        elif choice == 5:
            record["timezones"] = sorted({rng.choice(ZONES), record.get("timezone", "UTC")})
        elif choice == 6:
            record["opt_out"] = [rng.choice(("sms", "phone", "email"))]
        elif choice == 7:
            record["flags"] = sorted({*record.get("flags", []), rng.choice(FLAGS)})
        else:  # a burst of calls on one day, at any hour
            base = moment.astimezone(tz).replace(minute=0)
            if rng.random() < 0.4:  # on the first of the month: calendar-month windows start there
                base = base.replace(day=1, hour=rng.choice((0, 9, 14, 23)))
            phone = next((e for e in history if e.get("channel") == "phone"), None)
            for k in range(rng.randint(2, 9)):
                call = dict(phone) if phone is not None else {"action": "phone_call", "channel": "phone"}
                call["at"] = min(
                    base + dt.timedelta(minutes=37 * k), NOW - dt.timedelta(minutes=1)
                ).isoformat()
                call["outcome"] = rng.choice(("no_answer", "conversation", "busy"))
                history = [*history, call]
    record["history"] = history
    return record


def _both(tmp_path: Path, policy: Any, path: Path) -> tuple[Any, Any]:
    results = []
    for evaluator in ("reference", "fast"):
        out = tmp_path / evaluator
        result = audit_contacts(policy, path, start=EVER, end=END, at=NOW, out=out, evaluator=evaluator)  # type: ignore[arg-type]
        results.append(result)
    ref, fast = results
    for name in ("violations.jsonl", "errors.jsonl"):
        expected = (tmp_path / "reference" / name).read_text()
        assert expected == (tmp_path / "fast" / name).read_text(), name
    summaries = [json.loads((tmp_path / e / "summary.json").read_text()) for e in ("reference", "fast")]
    for summary in summaries:
        summary.pop("files")
    assert summaries[0] == summaries[1]
    return ref, fast


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_planted_portfolios_agree(profile: str, tmp_path: Path) -> None:
    """Planted violations of every kind: the fast path reports exactly what the reference reports."""
    path = _planted(tmp_path, profile, seed=11, rate="40%", n=120)
    ref, _ = _both(tmp_path, PROFILES[profile].policy, path)
    assert ref.violations > 20  # the comparison is about real findings


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("seed", [1, 2])
def test_dated_state_mid_history_agrees(profile: str, seed: int, tmp_path: Path) -> None:
    """Dated state crossing the histories (each boundary the screen's memo keys on): still identical."""
    source = _planted(tmp_path, profile, seed=20 + seed, rate="10%", n=100)
    rng = random.Random(seed)
    records = [_perturb(json.loads(line), rng) for line in source.read_text().splitlines()]
    path = tmp_path / "perturbed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    ref, fast = _both(tmp_path, PROFILES[profile].policy, path)
    assert ref.violations > 10
    assert fast.audited == ref.audited > 50


def test_unknown_evaluator_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("")
    with pytest.raises(UsageError, match="evaluator"):
        audit_contacts(CN_POLICY, path, start=EVER, end=END, at=NOW, evaluator="quick")  # type: ignore[arg-type]


def _accounts(tmp_path: Path, profile: str, seed: int) -> tuple[Any, list[Any]]:
    """The perturbed planted portfolio of ``profile``, validated."""
    from escalation.engine import Engine
    from escalation.errors import RecordError
    from escalation.policy import load_policy

    source = _planted(tmp_path, profile, seed=30 + seed, rate="20%", n=80)
    rng = random.Random(seed)
    policy = load_policy(PROFILES[profile].policy)
    engine = Engine(policy)
    accounts = []
    for line in source.read_text().splitlines():
        try:
            accounts.append(engine.validate(_perturb(json.loads(line), rng), now=NOW))
        except RecordError:
            continue
    return policy, accounts


def _contacts(auditor: Any, account: Any) -> Any:
    """(view, position, prior, event, its history index) for each outbound contact."""
    from escalation.contacts._screen import AccountView

    view = AccountView(account, auditor, NOW)
    stamps = view.timeline.stamps
    for p, index in enumerate(view.timeline.order):
        event = account.history[index]
        if event.direction.value == "outbound" and event.channel is not None:
            yield view, p, sum(1 for s in stamps if s < stamps[p]), event, index


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_screen_facts_equal_derived_facts(profile: str, tmp_path: Path) -> None:
    """Every fact the screen claims to know equals the engine's own derivation at that instant."""
    from escalation._facts import derive
    from escalation.contacts import ContactAuditor, as_of
    from escalation.contacts._screen import FactsAt, NeedsReference

    policy, accounts = _accounts(tmp_path, profile, 1)
    auditor = ContactAuditor(policy)
    names = sorted(set().union(*(c.facts for c in _conditions(policy))))
    compared = 0
    for account in accounts:
        for view, p, prior, event, _ in _contacts(auditor, account):
            facts = FactsAt(view, event.at, prior, view.local(0)[p].date())
            then = as_of(account, event.at, view.timeline.ordered[:prior], view.timeline.tz, NOW.date())
            derived = derive(then, event.at, policy).values
            for name in names:
                try:
                    mine = facts.get(name, "<missing>")
                except NeedsReference:
                    continue
                assert derived.get(name, "<missing>") == mine, (account.id, p, name)
                compared += 1
    assert compared > 500


def _conditions(policy: Any) -> list[Any]:
    from escalation.backends import named_conditions

    return list(named_conditions(policy).values())


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_time_screens_never_clear_a_blocked_contact(profile: str, tmp_path: Path) -> None:
    """Contact hours, frequency and cooldown screens: clear ⇒ the guard itself does not block."""
    from escalation._facts import derive
    from escalation.backends import make_conditions
    from escalation.contacts import ContactAuditor, as_of
    from escalation.contacts._check import _other_numbers
    from escalation.contacts._screen import time_screen
    from escalation.guards import EventMatcher, FrequencyGuard, check_guard

    policy, accounts = _accounts(tmp_path, profile, 2)
    auditor = ContactAuditor(policy)
    conditions = make_conditions(policy, "native")
    tiers = {t.model.id: t.model for t in policy.tiers}
    checked = blocked = 0
    for account in accounts:
        for view, p, prior, event, _ in _contacts(auditor, account):
            then = as_of(account, event.at, view.timeline.ordered[:prior], view.timeline.tz, NOW.date())
            sit = derive(then, event.at, policy)
            truth = conditions.truth_for(sit)
            tier = tiers.get(event.action or "", policy.tiers[0].model)
            for rule in auditor.guards_for(event.action, event.channel):
                screen = time_screen(rule)
                if screen is None:
                    continue
                model = rule.model
                if (
                    isinstance(model, FrequencyGuard)
                    and model.per == "address"
                    and _other_numbers(model, then, event, event.channel)
                ):
                    verdict = auditor._own_address(rule, then, event, tier, event.channel)
                else:
                    matcher = EventMatcher(sit, auditor._plan.tags_of)
                    verdict = check_guard(rule, sit, tier, event.channel, event.at, truth, matcher)
                clear = screen(view, p, prior, event.channel)
                checked += 1
                blocked += verdict.blocked
                assert not (clear and verdict.blocked), (account.id, p, model.id)
    assert checked > 300
    assert blocked > 0


def test_error_rows_are_the_same(tmp_path: Path) -> None:
    """A portfolio of broken records: the same error rows, row for row (accounts = audited + errors)."""
    from .conftest import ROOT

    ref, fast = _both(tmp_path, CN_POLICY, ROOT / "examples" / "portfolio-bad.jsonl")
    assert fast.errors == ref.errors > 0
    assert fast.accounts == fast.audited + fast.errors
