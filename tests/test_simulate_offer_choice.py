"""Differential: the offer and tier the columnar evaluator names for each row
at status ``offer`` (``TableResult.offers``, which the simulator's offer
calls use instead of deciding the account again) equal the reference
engine's: the first of ``decide().offers`` (the order
:func:`escalation.offers.evaluate.after_ladder` lists them in) and the first
tier, in the policy's order, listing one of those offers in ``offer_first``
— on every case of every shipped policy's suite and on generated portfolios
of every profile, decided on several days so accounts reach the tiers an
offer comes before."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from escalation import Engine
from escalation.backends.columnar import ColumnarPolicy, decide_table
from escalation.policy import Policy, load_policy
from escalation.policy._yaml import load_yaml
from escalation.policytest import Suite
from escalation.portfolio.arrow import records_of, to_batch
from escalation.portfolio.generate import PROFILES, generate
from escalation.simulate._loop import run_policy
from escalation.simulate._offers import OfferCalls
from escalation.simulate.model import ResponseModel, bundled_model
from escalation.simulate.run import _instants, _load_book

ROOT = Path(__file__).resolve().parent.parent
AT = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
SUITES = sorted((ROOT / "policies").glob("*_test.yaml"))


def _expected_tier(policy: Policy, ids: list[str]) -> str | None:
    return next((t.model.id for t in policy.tiers if set(t.model.offer_first) & set(ids)), None)


Compared = tuple[list[str], int, int, set[tuple[str, str]]]


def _compare(policy: Policy, records: list[dict[str, Any]], now: dt.datetime) -> Compared:
    """Rows whose named offer or tier differs from the reference engine's; rows
    named; rows at status ``offer`` left unnamed beyond those the reference
    engine decided (every offer kind of the shipped policies is vectorised, so
    only a fallback row may be left unnamed); the (offer, tier) pairs named."""
    result = decide_table(
        to_batch(list(enumerate(records, 1))), [ColumnarPolicy(policy)], now=now, dicts=False
    )
    choice = result.offers[0]
    assert choice is not None
    engine = Engine(policy)
    status = result.tables[0].column("status").to_pylist()
    differing: list[str] = []
    named = unnamed = 0
    pairs: set[tuple[str, str]] = set()
    for i, record in enumerate(records):
        offer, before = choice.offer[i], choice.before[i]
        if offer is None:
            assert before is None
            unnamed += status[i] == "offer"
            continue
        named += 1
        pairs.add((offer, before))
        decision = engine.decide(record, now=now, trace=False)
        ids = [o.id for o in decision.offers]
        want = (decision.status, ids[0] if ids else None, _expected_tier(policy, ids))
        if want != ("offer", offer, before):
            differing.append(
                f"{record.get('id')} at {now:%Y-%m-%d}: reference {want}, columnar {offer}/{before}"
            )
    return differing, named, max(0, unnamed - result.fallback), pairs


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.stem)
def test_suite_cases_name_the_reference_offer(suite: Path) -> None:
    """Every suite case at status ``offer`` gets the reference engine's offer and tier."""
    data = Suite.model_validate(yaml.safe_load(suite.read_text()))
    policy = load_policy(suite.parent / (data.policy or suite.name.replace("_test.yaml", ".yaml")))
    differing: list[str] = []
    named = 0
    for case in data.cases:
        now = dt.datetime.fromisoformat(case.now)
        found, count, unnamed, _ = _compare(policy, [{**data.defaults, **case.account}], now)
        differing.extend(f"{case.name}: {d}" for d in found)
        named += count
        assert unnamed == 0, case.name
    assert [] == differing
    if suite.name == "consumer-credit-cn_test.yaml":  # the other suites' `offer` cases carry fields in `rest`
        assert named > 0, "the suite's vectorised `offer` case is named by the columnar evaluator"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_generated_portfolios_name_the_reference_offer(profile: str) -> None:
    """3,000 generated accounts per profile, decided on day 0, 20, 45 and 75:
    every named row agrees with the reference engine. Only the CN profile
    reaches status ``offer`` over columns (the UK and IE offers that come first
    need fields the generated records do not have)."""
    spec = PROFILES[profile]
    policy = load_policy(ROOT / spec.policy)
    records = list(generate(3_000, 21, profile, AT))
    differing: list[str] = []
    named = 0
    for days in (0, 20, 45, 75):
        found, count, unnamed, _ = _compare(policy, records, AT + dt.timedelta(days=days))
        differing.extend(found)
        named += count
        assert unnamed == 0
    assert [] == differing[:10]
    if profile == "cn-card":
        assert named > 0


def _reordered_cn(tmp_path: Path) -> Policy:
    """The CN policy with several offers first on two tiers, listed in another
    order than the policy's offers (the order the reference engine keeps): the
    demand letter waits for either instalment plan, the lawyer's letter for a
    settlement, a fee reduction or either instalment plan (so its named tier is
    often the demand letter, the first listing the eligible instalments)."""
    text = (ROOT / "policies" / "consumer-credit-cn.yaml").read_text()
    demand = "    repeat: {every: 14d, max: 2}\n"
    assert text.count(demand) == 1
    text = text.replace(demand, demand + "    offer_first: [cn-hardship-instalments, cn-instalments]\n")
    lawyer = "    offer_first: [cn-instalments, cn-fee-reduction]\n"
    assert text.count(lawyer) == 1
    text = text.replace(
        lawyer,
        "    offer_first: [cn-settlement, cn-fee-reduction, cn-hardship-instalments, cn-instalments]\n",
    )
    path = tmp_path / "reordered-cn.yaml"
    path.write_text(text)
    return load_policy(path)


def test_several_offers_first_name_the_reference_offer_and_tier(tmp_path: Path) -> None:
    """With several eligible offers per row and offers shared between tiers,
    the first offer and the tier still equal the reference engine's (a wrong
    order of offers or of tiers fails here)."""
    policy = _reordered_cn(tmp_path)
    records = list(generate(3_000, 22, "cn-card", AT))
    for k, record in enumerate(records[::7]):  # some in hardship: both instalment plans eligible
        record["flags"] = [*record.get("flags", []), "hardship" if k % 2 else "vulnerable"]
    differing: list[str] = []
    named = 0
    pairs: set[tuple[str, str]] = set()
    for days in (0, 20, 45, 75, 100):
        found, count, unnamed, named_pairs = _compare(policy, records, AT + dt.timedelta(days=days))
        differing.extend(found)
        named += count
        pairs |= named_pairs
        assert unnamed == 0
    assert [] == differing[:10]
    assert named > 0
    # the cases that tell a right order from a wrong one occur
    assert {("cn-instalments", "demand_letter"), ("cn-settlement", "lawyer_letter")} <= pairs, pairs


@pytest.mark.parametrize(
    ("profile", "policy", "days"),
    [
        ("cn-card", "policies/consumer-credit-cn.yaml", 25),
        ("cn-card", "examples/cn-lawyer-letter-45.yaml", 25),
    ],
)
def test_a_cleared_offer_call_is_one_the_audit_permits(
    profile: str, policy: str, days: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On simulated days (so histories carry the simulated calls, promises and
    payments, and some customers opted out), every offer call the typed
    screen clears is one the audit's own check permits; the screen clears
    most of them."""

    seen = {"cleared": 0, "referred": 0, "blocked": 0}
    wrong: list[str] = []
    screen = OfferCalls.cleared

    def checked(self: OfferCalls, batch: Any, rows: list[int], calls: Any, now: dt.datetime) -> Any:
        cleared = screen(self, batch, rows, calls, now)
        accounts = records_of(batch, rows)
        for clear, record, (offer, address) in zip(cleared.tolist(), accounts, calls, strict=True):
            verdict = self.blocked(Engine(self.auditor.policy).validate(record, now=now), now, address, offer)
            seen["cleared" if clear else "referred"] += 1
            seen["blocked"] += verdict is not None
            if clear and verdict is not None:
                wrong.append(f"{record['id']} at {now}: cleared, the audit says {verdict}")
        return cleared

    monkeypatch.setattr(OfferCalls, "cleared", checked)
    records = list(generate(600, 5, profile, AT))
    for k, record in enumerate(records[::9]):  # some customers refuse calls
        record["opt_out"] = ["phone"] if k % 2 else []
    path = tmp_path / "book.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    book = _load_book(path, "CNY", AT, "Asia/Shanghai")
    cp = ColumnarPolicy(load_policy(ROOT / policy))
    model = ResponseModel.model_validate(
        load_yaml(bundled_model("cn-card").read_bytes(), "cn-card.yaml").data
    )
    run_policy(book, cp, model, _instants(AT, days, "Asia/Shanghai"), seed=3, run=0, grace=3)
    assert [] == wrong[:10]
    assert seen["cleared"] > seen["referred"] > 0, seen
    assert seen["blocked"] > 0, seen
