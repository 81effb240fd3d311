"""Offers presented: an account whose decision is status ``offer`` (a tier's
``offer_first`` holds it back) gets a phone call from the simulated collector
that presents the first offer the reference engine lists as eligible.

The call is answered like a phone contact of the tier the offer comes before:
the first response rule matching channel ``phone`` and that tier's id or tags
(a rule ``when: {channel: phone, actions: [lawyer_letter]}`` prices offer calls
on its own; the bundled models answer them with their generic call rule). Its
outcome is drawn from that rule with its own common random numbers (the label
``offer:<id>``). The event carries ``offer: <id>``; when the call reaches the
customer the offer counts as made (``offers_made``) and lifts the
``offer_first``. Acceptance is modelled by the same rule's ``promise``: after a
conversation, with the rule's promise probability, the customer accepts and
the acceptance is recorded as a ``promise_to_pay`` (carrying the offer) of the
rule's share of the arrears, kept with the rule's ``kept`` probability
(``offers_accepted``) — an assumption: a customer accepts an offer as often
as they promise on a collection call. The plan's own instalments are not
simulated."""

from __future__ import annotations

import datetime as dt

import numpy as np

from escalation.backends.columnar import ColumnarPolicy
from escalation.backends.columnar._table import TableResult
from escalation.offers.evaluate import REACHED
from escalation.simulate._respond import (
    DayMetrics,
    PendingDay,
    Responses,
    charge,
    pick_outcome,
    pick_share,
    promise_made,
    rule_for,
)
from escalation.simulate._rng import label_key, uniforms
from escalation.simulate._state import Book

__all__ = ["Offered", "offer_of", "present"]

#: An offer to present: account, the tier it comes before, the offer id, days overdue.
Offered = tuple[int, str, str, int]


def offer_of(policy: ColumnarPolicy, res: TableResult, k: int, now: dt.datetime) -> tuple[str, str] | None:
    """The tier held back and the first eligible offer of batch row ``k`` (status
    ``offer``, decided by the reference engine), or ``None`` when none is listed."""
    account = res.accounts.get(k)
    if account is None:  # pragma: no cover - status `offer` always comes from the reference engine
        return None
    decision = policy.engine.decide(account, now=now, trace=False)
    ids = [o.id for o in decision.offers]
    if not ids:
        return None
    for tier in policy.policy.tiers:
        if set(tier.model.offer_first or ()) & set(ids):
            return tier.model.id, ids[0]
    return None  # pragma: no cover


def present(
    book: Book,
    responses: Responses,
    keys: np.ndarray,
    offered: list[Offered],
    when: tuple[dt.datetime, int, int],
    seed: int,
    run: int,
    metrics: DayMetrics,
    spent: tuple[np.ndarray, np.ndarray],
    pending: PendingDay,
) -> None:
    """Call each account with its offer and record the answer."""
    if not offered:
        return
    now, day, today = when
    idx = np.array([o[0] for o in offered], np.int64)
    labels = np.array([label_key(f"offer:{o[2]}") for o in offered], np.uint64)
    draws = {
        name: uniforms(keys[idx], labels, seed=seed, run=run, day=day, stream=name)
        for name in ("outcome", "promise", "kept", "share")
    }
    s = metrics.scalars
    for k, (i, tier, offer, days) in enumerate(offered):
        rule = rule_for(responses.rules(tier, "phone"), responses.segment_names[book.segment[i]], days)
        charge(book, rule, metrics, spent, i, (f"offer:{offer}", "phone"))
        outcome = pick_outcome(rule, draws["outcome"][k])
        promise = rule.promise
        if outcome == "conversation" and promise is not None and draws["promise"][k] < promise.p:
            pending.event(i, now, None, "phone", "promise_to_pay", offer=offer)
            share = pick_share(rule, responses, draws["share"][k])
            promise_made(book, responses, promise, i, share, (now, day, today), draws["kept"][k])
            s["offers_made"] += 1
            s["offers_accepted"] += 1
            s["promises_made"] += 1
            continue
        pending.event(i, now, None, "phone", outcome, offer=offer)
        if outcome in REACHED:  # the engine's sense: a refusal heard the offer, a voicemail did not
            s["offers_made"] += 1
