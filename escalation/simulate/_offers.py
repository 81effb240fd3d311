"""Offers presented: an account whose decision is status ``offer`` (a tier's
``offer_first`` holds it back) gets a phone call from the simulated collector
that presents the first offer the reference engine lists as eligible (the
columnar evaluator names it, and the tier, for the rows it decided:
``TableResult.offers``; the contact audit's typed screen clears most calls
over columns, its check judges the rest).

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
import pyarrow as pa

from escalation.backends.columnar import ColumnarPolicy
from escalation.backends.columnar._table import TableResult
from escalation.contacts._check import ContactAuditor
from escalation.contacts._typed import TypedScreen
from escalation.decision import Decision
from escalation.engine import Engine
from escalation.errors import EscalationError
from escalation.offers.evaluate import REACHED
from escalation.portfolio.arrow import EVENTS, TypedBatch, records_of
from escalation.reasons import Locale
from escalation.record import Account, Channel, HistoryEvent
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

__all__ = ["OfferCalls", "Offered", "Remembering", "offer_of", "present"]

#: An offer to present: account, the tier it comes before, the offer id, days overdue.
Offered = tuple[int, str, str, int]
_MICRO = dt.timedelta(microseconds=1)


def offer_of(
    policy: ColumnarPolicy, res: TableResult, k: int, now: dt.datetime, batch: TypedBatch
) -> tuple[Account, str, str] | None:
    """The account, the tier held back and the first eligible offer of batch
    row ``k`` (status ``offer``), or ``None`` when none is listed.

    The columnar evaluator names both for the rows it decided
    (``TableResult.offers``, equal to the reference engine's: the
    differential test ``tests/test_simulate_offer_choice.py``); any other row
    is decided again by the reference engine for its offers."""
    account = res.accounts.get(k)
    if account is None:  # pragma: no cover - the evaluator keeps every row at status `offer` validated
        account = policy.engine.validate(records_of(batch, [k])[0], now=now)  # type: ignore[arg-type]
    choice = res.offers[0] if res.offers else None
    if choice is not None and choice.offer[k] is not None:
        return account, str(choice.before[k]), str(choice.offer[k])
    decision = policy.engine.decide(account, now=now, trace=False)
    return _listed(policy, [o.id for o in decision.offers], account)


def _listed(policy: ColumnarPolicy, ids: list[str], account: Account) -> tuple[Account, str, str] | None:
    """The first tier listing one of ``ids`` first, and the first of ``ids``."""
    if not ids:
        return None
    for tier in policy.policy.tiers:
        if set(tier.model.offer_first or ()) & set(ids):
            return account, tier.model.id, ids[0]
    return None  # pragma: no cover


class Remembering:
    """A policy's engine that remembers the decisions of status ``offer`` it
    gave (the columnar evaluator's reference fallback decides those rows; the
    simulator asks again for their offers): the same account object at the
    same instant gets the very decision object back, so the answer is exact.
    :meth:`forget` drops them (each day)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._memo: dict[tuple[int, dt.datetime, bool], tuple[object, Decision]] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)

    def decide(
        self,
        record: Account | dict[str, object],
        *,
        now: dt.datetime,
        trace: bool = True,
        locale: Locale | None = None,
    ) -> Decision:
        if not isinstance(record, Account) or locale is not None:  # only frozen records are remembered
            return self._engine.decide(record, now=now, trace=trace, locale=locale)
        key = (id(record), now, trace)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is record:
            return hit[1]
        decision = self._engine.decide(record, now=now, trace=trace)
        if decision.status == "offer":
            self._memo[key] = (record, decision)  # the record is kept: its id is not reused
        return decision

    def forget(self) -> None:
        self._memo.clear()


class OfferCalls:
    """Whether an offer call may be made now, as the contact audit judges it:
    the audit's typed screen (:class:`~escalation.contacts._typed.TypedScreen`)
    clears the calls it can show the audit would not report, over columns; the
    audit's own check (:meth:`blocked`) judges the rest one by one."""

    def __init__(self, auditor: ContactAuditor) -> None:
        self.auditor = auditor
        self._screen: TypedScreen | None = None

    def cleared(
        self, batch: TypedBatch, rows: list[int], calls: list[tuple[str, str | None]], now: dt.datetime
    ) -> np.ndarray:
        """For batch rows ``rows``, each called at ``now`` with its offer and
        to its address (``calls``): whether the screen clears the call. A
        cleared call is one the audit's check would find nothing against (the
        screen may refer a clean contact, never clear one it would report:
        ``tests/test_audit_contacts_typed.py``, and on simulated days
        ``tests/test_simulate_offer_choice.py``)."""
        if not rows:
            return np.zeros(0, bool)
        if self._screen is None:
            self._screen = TypedScreen(self.auditor)
        m = len(rows)
        position = np.full(len(batch), -1, np.int64)
        position[np.asarray(rows, np.int64)] = np.arange(m)
        owner = position[np.asarray(batch.events.column("account"), np.int64)]
        keep = np.flatnonzero(owner >= 0)
        before = batch.events.take(pa.array(keep, pa.int64()))
        before = before.set_column(0, "account", pa.array(owner[keep], pa.int64()))
        trial = pa.Table.from_pydict(
            {
                "account": list(range(m)),
                "at": [now] * m,
                "action": [None] * m,
                "channel": ["phone"] * m,
                "outcome": [None] * m,
                "direction": ["outbound"] * m,
                "address": [address for _, address in calls],
                "consent_until": [None] * m,
                "misdirected": [False] * m,
                "amount": [None] * m,
                "offer": [offer for offer, _ in calls],
                "actor": [None] * m,
            },
            schema=EVENTS,
        )
        accounts = batch.accounts.take(pa.array(rows, pa.int64()))
        # each account's events, then its call (last in record order, as the check appends it)
        events = pa.concat_tables([before, trial])
        order = np.argsort(np.asarray(events.column("account"), np.int64), kind="stable")
        events = events.take(pa.array(order, pa.int64()))
        found = self._screen.screen(TypedBatch(accounts, events, batch.source), now, now + _MICRO, now)
        return np.asarray(found.cleared, bool)

    def blocked(
        self, account: Account, now: dt.datetime, address: str | None, offer: str
    ) -> list[str] | None:
        """``None`` when the call is permitted at ``now``; otherwise the ids of
        the holds and guards that forbid it (empty when it could not be judged:
        fail closed, no call)."""
        call = HistoryEvent(at=now, channel=Channel.PHONE, address=address, offer=offer)
        trial = account.model_copy(update={"history": (*account.history, call)})
        try:
            found = self.auditor.check_event(trial, len(account.history), now)
        except EscalationError:
            return []
        return sorted({v.id for v in found}) if found else None


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
