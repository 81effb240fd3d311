"""Offers made faster stay the same offers: ``_figures`` (one ``Offer`` built,
each amount made once, a plan's due dates cached) against the reference it
replaced, kept here verbatim, on generated accounts for every shipped policy
with offers; the cached monthly due dates and ``number()`` against their
reference formulas."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, RecordError
from escalation._currencies import MINOR_UNITS
from escalation._facts import Situation
from escalation.decision import Instalment, Offer, construct
from escalation.offers import evaluate
from escalation.offers import figures as fig
from escalation.offers.schema import ExtensionOffer, FeeWaiverOffer, InstalmentPlanOffer, SettlementOffer
from escalation.policy._compile import CompiledOffer
from escalation.reasons._format import number
from escalation.reasons._offer import offer_summary

from .conftest import SHIPPED
from .strategies import cases

WITH_OFFERS = [p for p in SHIPPED if Engine.from_file(p).policy.offers]
_DAY = dt.timedelta(days=1)


def reference_instalment_plan(
    amount: int, *, max_months: int, min_instalment: int, down_share: Decimal, first_due: dt.date
) -> fig.Figures:
    """``offers.figures.instalment_plan`` as it was before its due dates were cached."""
    down = min(fig.share_of(amount, down_share, up=True), amount)
    rest = amount - down
    plan: tuple[tuple[dt.date, int], ...] = ()
    if rest > 0:
        count = max(1, min(max_months, rest // max(min_instalment, 1)))
        base = rest // count
        amounts = [base] * (count - 1) + [rest - base * (count - 1)]
        plan = tuple((fig.add_months(first_due, i), value) for i, value in enumerate(amounts))
    return fig.Figures(amount=amount, pay=amount, down_payment=down if down_share else None, instalments=plan)


def reference_figures(compiled: CompiledOffer, sit: Situation) -> tuple[Offer | None, str]:
    """``offers.evaluate._figures`` as it was before it was made faster."""
    model = compiled.model
    account = sit.account
    places = MINOR_UNITS[account.currency]
    scale = 10**places

    def minor(amount: Decimal) -> int:
        return int(amount * scale)

    today = sit.today
    if isinstance(model, InstalmentPlanOffer):
        base = account.balance if model.of == "balance" else account.amount_overdue
        figures = reference_instalment_plan(
            minor(base),
            max_months=model.max_months,
            min_instalment=minor(model.min_instalment),
            down_share=model.down_payment,
            first_due=today + model.first_due * _DAY,
        )
    elif isinstance(model, ExtensionOffer):
        figures = fig.extension(minor(account.amount_overdue), today + model.days * _DAY)
    elif isinstance(model, FeeWaiverOffer):
        if account.principal is None:
            return None, "`principal` is not on the record (fees and interest unknown)"
        fees = minor(account.balance) - minor(account.principal)
        due = today + model.pay_within * _DAY if model.pay_within is not None else None
        figures = fig.fee_waiver(minor(account.balance), fees, model.share, due)
        if figures.waived <= 0:
            return None, "no fees or interest to waive"
    else:
        assert isinstance(model, SettlementOffer)
        band, due = model.discount, today + model.pay_within * _DAY
        figures = fig.settlement(minor(account.balance), band.min, band.max, due)
    if figures.amount <= 0:
        return None, "nothing owed to offer on"

    def money(units: int) -> Decimal:
        return Decimal(units).scaleb(-places)

    instalments = [
        construct(Instalment, number=i, due=due, amount=money(units))
        for i, (due, units) in enumerate(figures.instalments, start=1)
    ]
    values = dict(
        id=model.id,
        kind=model.kind,
        approval=model.approval,
        currency=account.currency,
        amount=money(figures.amount),
        pay=money(figures.pay),
        pay_up_to=money(figures.pay_up_to) if figures.pay_up_to is not None else None,
        waived=money(figures.waived),
        down_payment=money(figures.down_payment) if figures.down_payment is not None else None,
        instalments=instalments,
        due_date=figures.due_date,
        summary="",
        cite=model.cite,
        description=model.description,
    )
    offer = construct(Offer, **values)
    values["summary"] = offer_summary(offer, model, "en")
    return construct(Offer, **values), ""


@st.composite
def with_principal(draw: st.DrawFn, engine: Engine) -> tuple[dict[str, Any], dt.datetime]:
    """A generated case, often with a principal (below, at or above the balance)."""
    record, now = draw(cases(engine.policy))
    if draw(st.integers(0, 3)) > 0:
        balance = Decimal(record["balance"])
        share = draw(
            st.sampled_from([Decimal(0), Decimal("0.5"), Decimal("0.9"), Decimal(1), Decimal("1.1")])
        )
        places = MINOR_UNITS[record["currency"]]
        record["principal"] = str((balance * share).quantize(Decimal(1).scaleb(-places)))
    return record, now


class TestSameOffers:
    """Every offer of a policy, on every situation that reaches the offers, is the reference's offer."""

    @pytest.mark.parametrize("path", WITH_OFFERS, ids=[p.stem for p in WITH_OFFERS])
    def test_generated_accounts(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        """All the policy's offers (eligible or not) give the reference's figures,
        summary and JSON on generated accounts; no two offers share a plan list."""
        engine = Engine.from_file(path)
        made = evaluate._figures
        compared: dict[str, int] = {}
        differing: list[tuple[str, str, str]] = []

        def both(compiled: CompiledOffer, sit: Situation) -> tuple[Offer | None, str]:
            for each in engine.policy.offers:  # every offer, not only the eligible one
                got, expected = made(each, sit), reference_figures(each, sit)
                assert got[1] == expected[1]
                if got[0] is None or expected[0] is None:
                    assert got[0] is expected[0]
                    continue
                compared[each.model.id] = compared.get(each.model.id, 0) + 1
                if got[0].model_dump_json() != expected[0].model_dump_json() or got[0] != expected[0]:
                    differing.append((each.model.id, got[0].model_dump_json(), expected[0].model_dump_json()))
                assert got[0].instalments is not made(each, sit)[0].instalments  # type: ignore[union-attr]
            return made(compiled, sit)

        monkeypatch.setattr(evaluate, "_figures", both)

        @given(with_principal(engine))
        @settings(
            max_examples=300,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        def check(case: tuple[dict[str, Any], dt.datetime]) -> None:
            record, now = case
            with contextlib.suppress(RecordError):
                engine.decide(record, now=now)

        check()
        assert [] == differing
        # every offer of the policy must have been compared with figures, or this proves little
        assert {o.model.id for o in engine.policy.offers} == set(compared), compared


class TestCachedArithmetic:
    """The parts made once equal the formulas they replace."""

    @given(
        st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2200, 12, 31)),
        st.integers(0, 120),
    )
    def test_monthly_dues_are_add_months(self, first: dt.date, count: int) -> None:
        """A plan's cached due dates are ``add_months`` of the first, month by month (31st, leap days)."""
        assert tuple(fig.add_months(first, i) for i in range(count)) == fig.monthly_dues(first, count)

    @given(
        st.one_of(
            st.integers(-(10**15), 10**15),
            st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12),
        ),
        st.integers(0, 6),
    )
    def test_number_is_the_cldr_pattern(self, value: int | Decimal, places: int) -> None:
        """``number`` rounds half to even and groups by thousands, whatever the places."""
        quantum = Decimal(1).scaleb(-places)
        expected = f"{Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN):,.{places}f}"
        assert expected == number(value, places)
