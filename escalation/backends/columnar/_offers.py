"""Offers that come first (``offer_first``) over columns, with
:func:`escalation.offers.evaluate.after_ladder`'s semantics: an account whose
ladder acts on a tier with ``offer_first`` gets status ``offer`` (no action,
channel or severity; the same blocked guards) when none of those offers was
made in this delinquency cycle and one of them is eligible now — its ``when``
holds (an unknown is never true) and its figures can be computed.

The offers themselves are not in a decision row, so only the status is
decided here, with (:class:`OfferChoice`) the first eligible offer of each
row at status ``offer`` (in the policy's order of offers, as the reference
engine lists them) and the first tier, in the policy's order, listing one of
the row's eligible offers in its ``offer_first`` (the tier the simulator's
offer call is priced as). An account the check cannot judge (an offer
condition or kind not vectorised) goes to the reference engine; a row at
status ``offer`` one of whose gated offers cannot be judged gets no choice
(``None``: ask the reference engine for its offers)."""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["OfferChoice", "offers_first"]

_REACHED = [OUTCOMES.index(o.value) for o in REACHED]


@dataclass(frozen=True)
class OfferChoice:
    """Per row (object arrays): the first eligible offer id of a row at status
    ``offer`` and the tier it is presented as coming before; ``None`` in
    both for every other row and for a row this check cannot name."""

    offer: np.ndarray
    before: np.ndarray

    @classmethod
    def empty(cls, n: int) -> OfferChoice:
        return cls(np.full(n, None, object), np.full(n, None, object))

    def without(self, rows: np.ndarray) -> OfferChoice:
        """The same choice with ``rows`` (a mask: decided elsewhere) unnamed."""
        offer, before = self.offer.copy(), self.before.copy()
        offer[rows] = None
        before[rows] = None
        return OfferChoice(offer, before)


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


def offers_first(policy: Policy, facts: Facts, out: Outcome) -> tuple[np.ndarray, OfferChoice]:
    """Turn the ``act`` rows of ``out`` an offer must come before into status
    ``offer``; the rows this cannot judge (for the reference engine) and the
    offer and tier of each row turned."""
    unsure = np.zeros(facts.n, bool)
    choice = OfferChoice.empty(facts.n)
    if not policy.offers:
        return unsure, choice
    acting = out.covered & out.status.equals("act")
    for tier in policy.tiers:
        first = frozenset(tier.model.offer_first)
        if not first:
            continue
        rows = acting & out.action.equals(tier.model.id)
        if not rows.any():
            continue
        rows &= ~_made(facts, first)
        eligible = np.zeros(facts.n, bool)
        unknown = np.zeros(facts.n, bool)
        each: list[tuple[str, np.ndarray]] = []  # eligible rows per gated offer, in the policy's order
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
            ok = rows & holds & computable
            eligible |= ok
            each.append((offer.model.id, ok))
        offer = rows & eligible  # an eligible offer: status `offer` whatever the others
        out.status.put(offer, "offer")
        out.action.put(offer, None)
        out.channel.put(offer, None)
        out.severity[offer] = 0
        unsure |= rows & ~eligible & unknown
        _choose(policy, choice, offer & ~unknown, each)
    return unsure, choice


def _choose(
    policy: Policy, choice: OfferChoice, rows: np.ndarray, each: list[tuple[str, np.ndarray]]
) -> None:
    """Name ``rows``' first eligible offer and the first tier listing one of
    their eligible offers first (assigned last to first: the earliest wins)."""
    if not rows.any():
        return
    for ident, ok in reversed(each):
        choice.offer[rows & ok] = ident
    for tier in reversed(policy.tiers):
        listed = frozenset(tier.model.offer_first)
        hit = np.zeros(len(rows), bool)
        for ident, ok in each:
            if ident in listed:
                hit |= ok
        choice.before[rows & hit] = tier.model.id
