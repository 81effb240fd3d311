"""Offers that come first (``offer_first``) over columns, with
:func:`escalation.offers.evaluate.after_ladder`'s semantics: an account whose
ladder acts on a tier with ``offer_first`` gets status ``offer`` (no action,
channel or severity; the same blocked guards) when none of those offers was
made in this delinquency cycle and one of them is eligible now — its ``when``
holds (an unknown is never true) and its figures can be computed.

The offers themselves are not in a decision row, so only the status is
decided here; an account the check cannot judge (an offer condition or kind
not vectorised) goes to the reference engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow.compute as pc

from escalation.backends.columnar._conditions import Unsupported, check_tree, truth
from escalation.backends.columnar._facts import OUTCOMES, Facts
from escalation.offers.evaluate import REACHED
from escalation.offers.schema import ExtensionOffer, FeeWaiverOffer, InstalmentPlanOffer, SettlementOffer

if TYPE_CHECKING:
    from escalation.backends.columnar._ladder import Outcome
    from escalation.policy import Policy
    from escalation.policy._compile import CompiledOffer

__all__ = ["offers_first"]

_REACHED = [OUTCOMES.index(o.value) for o in REACHED]


def _made(facts: Facts, first: frozenset[str]) -> np.ndarray:
    """Accounts to whom one of ``first`` was made in this cycle (it reached them)."""
    offers = facts.cache["events"].column("offer")
    if offers.null_count == len(offers):
        return np.zeros(facts.n, bool)
    named = np.asarray(pc.is_in(offers, value_set=pc.cast(sorted(first), offers.type)).fill_null(False), bool)
    reached = (facts.ev_outcome < 0) | np.isin(facts.ev_outcome, _REACHED)
    made = named & facts.ev_in_cycle & reached
    return np.bincount(facts.ev_acc[made], minlength=facts.n) > 0


def _computable(offer: CompiledOffer, facts: Facts) -> np.ndarray | None:
    """Accounts whose figures for ``offer`` can be computed (``None``: a kind not vectorised)."""
    model = offer.model
    columns = facts.columns
    if isinstance(model, InstalmentPlanOffer):
        base = columns["balance" if model.of == "balance" else "amount_overdue"].values
        return base > 0
    if isinstance(model, ExtensionOffer):
        return columns["amount_overdue"].values > 0
    if isinstance(model, SettlementOffer):
        return columns["balance"].values > 0
    if isinstance(model, FeeWaiverOffer):
        # needs `principal`, kept in `rest`: no vectorised account has it
        return np.zeros(facts.n, bool)
    return None


def offers_first(policy: Policy, facts: Facts, out: Outcome) -> np.ndarray:
    """Turn the ``act`` rows of ``out`` an offer must come before into status
    ``offer``; the rows this cannot judge (for the reference engine)."""
    unsure = np.zeros(facts.n, bool)
    if not policy.offers:
        return unsure
    acting = out.covered & (out.status == "act")
    for tier in policy.tiers:
        first = frozenset(tier.model.offer_first)
        if not first:
            continue
        rows = acting & (out.action == tier.model.id)
        if not rows.any():
            continue
        rows &= ~_made(facts, first)
        eligible = np.zeros(facts.n, bool)
        unknown = np.zeros(facts.n, bool)
        for offer in policy.offers:
            if offer.model.id not in first:
                continue
            computable = _computable(offer, facts)
            try:
                check_tree(offer.when.tree)
                holds = truth(offer.when.tree, facts)[0]
            except Unsupported:
                computable = None
            if computable is None:
                unknown |= rows
                continue
            eligible |= rows & holds & computable
        offer = rows & eligible  # an eligible offer: status `offer` whatever the others
        out.status[offer] = "offer"
        out.action[offer] = None
        out.channel[offer] = None
        out.severity[offer] = 0
        unsure |= rows & ~eligible & unknown
    return unsure
