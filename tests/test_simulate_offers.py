"""Offers in the simulation: an account held back by ``offer_first`` (status
``offer``) is called with the offer, and once the offer reached the customer
the tier it held back follows on a later day."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from escalation.backends.columnar import ColumnarPolicy
from escalation.policy import load_policy
from escalation.policy._yaml import load_yaml
from escalation.portfolio.arrow import records_of
from escalation.portfolio.generate import generate
from escalation.record import parse_account
from escalation.simulate._loop import run_policy
from escalation.simulate.model import ResponseModel, bundled_model
from escalation.simulate.run import _instants, _load_book, simulate

ROOT = Path(__file__).resolve().parent.parent
CN = ROOT / "policies" / "consumer-credit-cn.yaml"
AT = dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _always_answered() -> ResponseModel:
    """cn-card, but every phone call is a conversation, and nothing ends in a
    promise, payment or dispute: no account pays."""
    data: Any = load_yaml(bundled_model("cn-card").read_bytes(), "cn-card.yaml").data
    data["self_cure"] = []
    for rule in data["rules"]:
        if rule["id"] == "call":
            rule["outcomes"] = {"p": {"conversation": 1.0}, "basis": "test"}
        for key in ("promise", "payment", "dispute"):
            rule.pop(key, None)
    return ResponseModel.model_validate(data)


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated CN accounts whose decision at AT is status `offer`, far enough
    from day 91 (agency placement) for the lawyer's letter to come first."""
    policy = ColumnarPolicy(load_policy(CN))
    chosen = []
    for record in generate(3000, seed=11, at=AT):
        account = parse_account(record)
        if (AT.date() - dt.date.fromisoformat(record["overdue_since"])).days > 85:
            continue
        if policy.engine.decide(account, now=AT, trace=False).status == "offer":
            chosen.append(record)
        if len(chosen) == 8:
            break
    assert chosen, "the generated book has accounts held back by offer_first"
    path = tmp_path_factory.mktemp("offers") / "gated.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    return path


def test_offer_is_presented_then_the_lawyer_letter_follows(gated: Path) -> None:
    policy = load_policy(CN)
    book = _load_book(gated, "CNY", AT, "Asia/Shanghai")
    done = run_policy(
        book,
        ColumnarPolicy(policy),
        _always_answered(),
        _instants(AT, 4, "Asia/Shanghai"),
        seed=3,
        run=0,
        grace=3,
    )
    assert done.days[0].scalars["offer"] == len(book.status)
    assert done.days[0].scalars["offers_made"] == len(book.status)
    assert done.days[0].scalars["offers_accepted"] == 0
    final = done.book
    (_, batch), *_ = final.batches(np.arange(len(final.status)), 10_000)
    for record in records_of(batch, list(range(len(batch)))):
        account = parse_account(record)  # type: ignore[arg-type]
        new = [e for e in account.history if e.at >= AT]
        offers = [e for e in new if e.offer is not None]
        assert len(offers) == 1, account.id
        assert offers[0].offer in {"cn-instalments", "cn-fee-reduction"}
        assert offers[0].channel == "phone" and offers[0].outcome == "conversation"
        letters = [e for e in new if e.action == "lawyer_letter"]
        assert letters, f"{account.id}: the lawyer's letter follows the offer"
        assert letters[0].at.date() > offers[0].at.date()


def test_offers_are_deterministic_and_counted(gated: Path, tmp_path: Path) -> None:
    """Same seed, same bytes; the policy against itself differs in nothing, offers included."""
    outs = []
    for name in ("a", "b"):
        result = simulate(CN, gated, at=AT, days=5, baseline=CN, runs=2, seed=4, out=tmp_path / name)
        outs.append(result)
    for file in ("summary.json", "daily.parquet", "actions.parquet"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    result = outs[0]
    for metric in ("offers_made", "offers_accepted", "collected", "cost"):
        assert result.difference(metric)["mean"] == 0  # type: ignore[index]
    runs = result.runs["candidate"]
    assert sum(r.totals["offer"] for r in runs) > 0
    assert sum(r.totals["offers_made"] for r in runs) > 0
    assert any(k.startswith("offer:") for r in runs for k in r.actions)


def test_a_model_without_a_phone_rule_for_the_offer_tier_is_refused() -> None:
    """Offers are presented by phone: the model must answer the held-back tier's phone call."""
    from escalation.errors import EscalationError
    from escalation.simulate.run import _check_coverage

    data: Any = load_yaml(bundled_model("cn-card").read_bytes(), "cn-card.yaml").data
    for rule in data["rules"]:
        if rule["id"] == "call":
            rule["when"] = {"channel": "phone", "actions": ["phone_call", "instalment_negotiation"]}
    data["rules"] = [r for r in data["rules"] if r["id"] != "other"]  # the catch-all would answer
    model = ResponseModel.model_validate(data)
    with pytest.raises(EscalationError, match=r"lawyer_letter/phone \(its offers are presented by phone\)"):
        _check_coverage(model, load_policy(CN))


def test_agency_placements_are_priced_and_do_not_stop_the_run(tmp_path: Path) -> None:
    """Accounts reaching day 91 are placed with the agency at the model's `agency` cost."""
    chosen = [
        r
        for r in generate(3000, seed=11, at=AT)
        if 86 <= (AT.date() - dt.date.fromisoformat(r["overdue_since"])).days <= 89 and "flags" not in r
    ][:30]
    path = tmp_path / "late.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    result = simulate(CN, path, at=AT, days=6, out=tmp_path / "sim")
    placed = sum(result.runs["candidate"][0].actions.get("agency_placement/agency", []))
    assert placed > 0
    summary = json.loads((tmp_path / "sim" / "summary.json").read_text())
    entry = summary["actions"]["candidate"]["agency_placement/agency"]
    assert entry == {"count": placed, "cost": f"{20 * placed}.00"}


def _with(gated: Path, out: Path, change: Any) -> Path:
    """The gated accounts, each changed by ``change(record)``."""
    records = [json.loads(line) for line in gated.read_text().splitlines()]
    for record in records:
        change(record)
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def _offer_calls(result: Any, day: int) -> int:
    runs = result.runs["candidate"]
    return sum(n[day] for r in runs for key, n in r.actions.items() if key.startswith("offer:"))


def test_an_offer_call_waits_for_the_daily_call_limit_to_reopen(gated: Path, tmp_path: Path) -> None:
    """Three connected calls already made today (the CN pack allows 3 a day):
    the offer call that day would breach the frequency window, so none is
    made; the next day the window has reopened and every account is called."""

    def three_calls(record: dict[str, Any]) -> None:
        record["history"] = [
            *record.get("history", []),
            *(
                {"at": f"2026-11-23T08:{m}:00+08:00", "channel": "phone", "outcome": "conversation"}
                for m in ("10", "20", "30")
            ),
        ]

    book = _with(gated, tmp_path / "called.jsonl", three_calls)
    n = len(book.read_text().splitlines())
    result = simulate(CN, book, at=AT, days=2, model=_always_answered(), out=tmp_path / "sim")
    day0, day1 = result.runs["candidate"][0].daily
    assert day0["offer"] == n and day0["offers_blocked"] == n and day0["offers_made"] == 0
    assert _offer_calls(result, 0) == 0
    assert result.runs["candidate"][0].blocks["cn-connected-calls-per-day"] >= n
    assert day1["offers_blocked"] == 0 and day1["offers_made"] == n
    assert _offer_calls(result, 1) == n
    summary = json.loads((tmp_path / "sim" / "summary.json").read_text())
    assert summary["totals"]["candidate"]["offers_blocked"] == n


def test_no_offer_call_outside_contact_hours_in_any_zone(gated: Path, tmp_path: Path) -> None:
    """A customer who may be in London: 10:00 in Shanghai is 02:00 there, inside
    the CN pack's quiet hours (22:00–08:00), so the offer call is never made at
    the batch time, while the letter tier it holds back stays actionable."""

    def london(record: dict[str, Any]) -> None:
        record["timezones"] = ["Europe/London"]

    book = _with(gated, tmp_path / "london.jsonl", london)
    n = len(book.read_text().splitlines())
    result = simulate(CN, book, at=AT, days=3, model=_always_answered(), out=tmp_path / "sim")
    for day in result.runs["candidate"][0].daily:
        assert day["offer"] == n and day["offers_blocked"] == n and day["offers_made"] == 0
    assert result.runs["candidate"][0].blocks["cn-quiet-hours"] == 3 * n
    assert all(_offer_calls(result, d) == 0 for d in range(3))
