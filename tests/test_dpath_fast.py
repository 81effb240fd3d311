"""Fast paths of the evaluation after facts (issue 12) held equal to their
references: the per-account ``frequency`` checker against ``check_guard``
over every shape of the guard (limit 0 included, calendar months, every
zone), on generated accounts and instants; an offer's instalments against
the plan's figures."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, EscalationError
from escalation._currencies import MINOR_UNITS
from escalation._facts import derive
from escalation.decision import Instalment
from escalation.guards import EventMatcher, FrequencyGuard, check_guard
from escalation.guards._fast import specialise
from escalation.offers import figures as fig
from escalation.offers.evaluate import _figures
from escalation.offers.schema import InstalmentPlanOffer
from escalation.record import Channel

from .conftest import SHIPPED
from .strategies import cases

ENGINES = {p.stem: Engine.from_file(p) for p in SHIPPED}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(
    data=st.data(),
    which=st.sampled_from(sorted(ENGINES)),
    limit=st.integers(0, 4),
    window=st.sampled_from([1, 2, 7, 30, "calendar_month"]),
    days_in=st.sampled_from(["account", "every_zone"]),
    fixed=st.sampled_from([(), (Channel.PHONE,), (Channel.PHONE, Channel.SMS)]),
    later=st.integers(-48 * 60, 40 * 24 * 60),
)
def test_the_per_account_frequency_checker_is_check_guards(
    data: st.DataObject, which: str, limit: int, window: Any, days_in: str, fixed: Any, later: int
) -> None:
    engine = ENGINES[which]
    plan = engine._plan
    rules = [g for g in engine.policy.guards if isinstance(g.model, FrequencyGuard)]
    if not rules:
        return
    rule = data.draw(st.sampled_from(rules))
    update = {"max": limit, "window": window, "days_in": days_in, "channels": fixed, "per": "account"}
    variant = dataclasses.replace(rule, model=rule.model.model_copy(update=update))
    record, now = data.draw(cases(engine.policy))
    try:
        account, stamps = engine._checked(record, now)
    except EscalationError:
        return
    sit = derive(account, now, engine.policy, stamps)
    truth = engine._conditions.truth_for(sit)
    # minutes after now, or after one of the account's events (windows of one day hold some)
    start = data.draw(st.sampled_from([now, *(e.at for e in sit.events)]))
    at = start + dt.timedelta(minutes=later % (3 * 24 * 60) if start is not now else later)
    check = specialise(variant)
    for channel in (Channel.PHONE, Channel.SMS, Channel.LETTER):
        for trace in (None, False):  # figures wanted (the default) or not
            cache = {} if trace is None else {"trace": trace}
            ref_sit = dataclasses.replace(sit, cache=dict(cache))
            fast_sit = dataclasses.replace(sit, cache=dict(cache))
            tier = engine.policy.tiers[0].model
            expected = check_guard(
                variant, ref_sit, tier, channel, at, truth, EventMatcher(ref_sit, plan.tags_of)
            )
            got = check(fast_sit, channel, at, truth, EventMatcher(fast_sit, plan.tags_of))
            assert got == expected, (variant.model.id, channel, trace)


@SETTINGS
@given(data=st.data())
def test_offer_instalments_are_each_instalment_of_the_plan(data: st.DataObject) -> None:
    """``_figures`` makes each distinct instalment amount once: the plan it
    returns is still every (number, due, amount) of ``figures.instalment_plan``."""
    engine = ENGINES["consumer-credit-cn"]
    record, now = data.draw(cases(engine.policy))
    try:
        account, stamps = engine._checked(record, now)
    except EscalationError:
        return
    sit = derive(account, now, engine.policy, stamps)
    places = MINOR_UNITS[account.currency]
    for compiled in engine.policy.offers:
        model = compiled.model
        offer, _why = _figures(compiled, sit)
        if offer is None or not isinstance(model, InstalmentPlanOffer):
            continue
        base = account.balance if model.of == "balance" else account.amount_overdue
        scale = 10**places
        plan = fig.instalment_plan(
            int(base * scale),
            max_months=model.max_months,
            min_instalment=int(model.min_instalment * scale),
            down_share=model.down_payment,
            first_due=sit.today + model.first_due * dt.timedelta(days=1),
        )
        expected = [
            Instalment(number=i, due=due, amount=Decimal(units).scaleb(-places))
            for i, (due, units) in enumerate(plan.instalments, start=1)
        ]
        assert offer.instalments == expected
        assert [i.model_dump_json() for i in offer.instalments] == [i.model_dump_json() for i in expected]


class _Asking:
    """An evaluator named like the native one whose answers go through ``truth``:
    only ``direct`` may tell the ladder to call the closures itself."""

    name = "native"
    direct = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked: list[str] = []

    def truth_for(self, sit: Any) -> Any:
        truth = self.inner.truth_for(sit)

        def ask(name: str) -> bool:
            self.asked.append(name)
            return bool(truth(name))

        return ask


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_an_evaluator_not_direct_is_asked_for_holds_and_tiers(data: st.DataObject) -> None:
    reference = ENGINES["consumer-credit-cn"]
    engine = Engine(reference.policy)
    asking = engine._conditions = _Asking(engine._conditions)  # type: ignore[assignment]
    record, now = data.draw(cases(reference.policy))
    try:
        expected = reference.decide(record, now=now)
    except EscalationError:
        return
    assert engine.decide(record, now=now).to_json() == expected.to_json()
    assert any(name.startswith("hold:") for name in asking.asked)
