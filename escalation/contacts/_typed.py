"""The typed contact audit: a screen over the typed layout's columns (an
accounts table, a flat events table) that clears whole accounts without
building a record per account.

An account is *cleared* when the screen can show that the per-account path
would validate it and find no violation among its contacts: the record is
one the typed columns hold whole (no ``raw`` or ``rest`` JSON), it passes the
checks :meth:`Engine.validate` adds (currency, flag vocabulary, a channel on
every outbound event, nothing dated after the export), no hold applies and
no state guard (block, consent, inconvenient) blocks for any of its contacts'
tier and channel — judged once per distinct state, on the facts
:class:`~escalation.contacts._screen.FactsAt` knows, anything else refers —
and no contact-hours, frequency or cooldown screen (over columns, see
:mod:`escalation.contacts._typed_time`) says a contact might be blocked.
Every other account goes to the per-account path, which alone writes
violations and error rows: the screen may refer a clean account, never
clear one with a violation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation.contacts._check import ContactAuditor
from escalation.contacts._screen import NeedsReference
from escalation.contacts._typed_time import TIME_KINDS, Events, local_offsets, might_block
from escalation.guards import BlockGuard, ConsentGuard, InconvenientGuard
from escalation.policy import GuardRule
from escalation.record import KNOWN_FLAGS, Channel, Direction, Outcome, local_date, zone

__all__ = ["Screened", "TypedScreen"]

_NEEDS = object()  # a fact the screen cannot know: reading it refers the account
_ABSENT = object()  # a fact the record does not have: the condition's default
_COLUMNS = (
    "flags", "opt_out", "plan_status", "plan_next_due_date", "promise_made_at", "validation_notice_sent_at",
    "timezone", "timezones", "currency", "balance", "amount_overdue", "segment", "product", "jurisdiction",
    "actor_type", "overdue_since", "days_overdue", "last_payment_at",
)  # fmt: skip
_STATIC = ("currency", "balance", "amount_overdue", "segment", "product", "jurisdiction", "actor_type")


@dataclass(frozen=True)
class Screened:
    """One batch's screen: the accounts cleared, and their tallies."""

    cleared: np.ndarray  # bool per account row
    contacts: dict[str, int]  # the cleared accounts' contacts in the period, by actor
    undated: int  # cleared accounts carrying undated state (see ``undated_state``)


class _Facts:
    """The facts of an account's state, as the compiled conditions read them."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name, _NEEDS)
        if value is _NEEDS:
            if name.startswith("attributes."):
                return default  # the record has none (they would be in `rest`)
            raise NeedsReference(name)
        return default if value is _ABSENT else value


def _getter(name: str) -> Callable[[dict[str, Any]], Any]:
    """How one fact reads an account's columns (its state at every contact)."""
    if name in ("flags", "opt_out"):
        return lambda r: frozenset(r[name] or ())
    if name in _STATIC:
        return lambda r: _ABSENT if r[name] is None else r[name]
    fixed: dict[str, Callable[[dict[str, Any]], Any]] = {
        "plan_active": lambda r: r["plan_status"] == "active",
        "letter_of_claim_reply": lambda r: frozenset(),
        "principal": lambda r: _ABSENT,
        "dispute_open": lambda r: False,  # no dispute_received_at (it would be in `rest`)
        "breathing_space_active": lambda r: False,
        "cease_received": lambda r: "cease_communication" in (r["flags"] or ()),
        "plan_days_to_due": lambda r: _ABSENT if r["plan_next_due_date"] is None else _NEEDS,
        "promise_active": lambda r: False if r["promise_made_at"] is None else _NEEDS,
        "consent_day": lambda r: _NEEDS if r["consent"] else _ABSENT,
        "in_validation_period": lambda r: _ABSENT if r["validation_notice_sent_at"] is None else _NEEDS,
        # placement: only an event of a `place` or `recall` tier can place an account
        "placed": lambda r: _NEEDS if r["places"] else False,
        "placed_with": lambda r: _NEEDS if r["places"] else _ABSENT,
        "days_placed": lambda r: _NEEDS if r["places"] else _ABSENT,
    }
    found = fixed.get(name)
    if found is not None:
        return found
    if name.startswith("attributes."):
        return lambda r: _ABSENT
    return lambda r: _NEEDS


class TypedScreen:
    """Screens typed batches under one policy (see the module docstring)."""

    def __init__(self, auditor: ContactAuditor) -> None:
        policy = auditor.policy
        self.auditor = auditor
        self.currency = policy.header.currency
        self.default_zone = policy.header.timezone
        self.vocabulary = KNOWN_FLAGS | policy.flags
        names: set[str] = set()
        for hold in policy.holds:
            names |= hold.when.facts
        for rule in policy.guards:
            if rule.unless is not None:
                names |= rule.unless.facts
            for condition in rule.conditions.values():
                names |= condition.facts
        self.names = tuple(sorted(names | {"opt_out"}))  # the consent guard reads the opt-outs
        self.getters = tuple(_getter(n) for n in self.names)
        self.time_rules = [r for r in policy.guards if isinstance(r.model, TIME_KINDS)]
        self.time_index = {id(r): t for t, r in enumerate(self.time_rules)}
        self.screens = [might_block(r.model) for r in self.time_rules]
        self.tiers = [t.model.id for t in policy.tiers]
        self.placing = [k for k, t in enumerate(policy.tiers) if t.model.kind != "contact"]
        actions = list(self.tiers)
        for rule in self.time_rules:
            flt = getattr(rule.model, "after", None)
            actions += [a for a in (flt.actions if flt is not None else ()) if a not in actions]
        self.actions = actions
        self.channels = [c.value for c in Channel]
        self.outcomes = [o.value for o in Outcome]
        self.codes: dict[str, int] = {c: i for i, c in enumerate(self.channels)}
        self.codes.update({f"direction:{d.value}": i for i, d in enumerate(Direction)})
        self.codes.update({f"outcome:{o}": i for i, o in enumerate(self.outcomes)})
        self.codes.update({f"action:{a}": i for i, a in enumerate(actions)})
        self.memo: dict[Any, tuple[int, ...] | None] = {}
        self.today: dict[tuple[str, float], dt.date | None] = {}

    # -- the state: holds and state guards, once per distinct state ---------------------------

    def _settle(self, key: tuple[Any, ...], action: str | None, channel: Channel) -> tuple[int, ...] | None:
        """The time screens left for a contact of ``action`` on ``channel`` in
        state ``key``; ``None`` when a hold or a state guard might block it."""
        facts = cast("Mapping[str, Any]", _Facts(dict(zip(self.names, key, strict=True))))
        active: list[int] = []
        try:
            for hold in self.auditor.policy.holds:
                if hold.when.truth(facts) is True:
                    return None
            for rule in self.auditor.guards_for(action, channel):
                if rule.unless is not None and rule.unless.truth(facts) is True:
                    continue  # lifted, exactly as the reference lifts it
                t = self.time_index.get(id(rule))
                if t is not None:
                    active.append(t)
                elif not _state_clean(rule, facts, channel):
                    return None
        except (NeedsReference, ArithmeticError, TypeError, ValueError):
            return None
        return tuple(active)

    def _valid_dates(self, r: dict[str, Any], name: str, at: dt.datetime, at_us: int) -> bool:
        """The record's own dates pass ``check_at`` for the export instant."""
        today = self.today.get((name, at_us))
        if today is None:
            today = self.today[(name, at_us)] = local_date(at, zone(name))
        since, days = r["overdue_since"], r["days_overdue"]
        if since is not None and (since > today or (days is not None and (today - since).days != days)):
            return False
        paid = r["last_payment_at"]
        for instant in (r["validation_notice_sent_at"], r["promise_made_at"]):
            if instant is not None and instant > at:
                return False
        return paid is None or paid <= today

    def _accounts(
        self, accounts: pa.Table, dated: dict[str, np.ndarray], at: dt.datetime, at_us: int
    ) -> tuple[np.ndarray, list[Any], list[list[str]], np.ndarray]:
        """Which accounts the screen can take, their state keys, zones and undated state."""
        n = accounts.num_rows
        whole = pc.and_(pc.is_null(accounts["raw"]), pc.is_null(accounts["rest"]))
        same = pc.fill_null(pc.equal(accounts["currency"], self.currency), False)
        ok = np.asarray(pc.and_(whole, same).to_numpy(zero_copy_only=False), bool) & ~dated["unfit"]
        columns = {name: accounts[name].to_pylist() for name in _COLUMNS}
        keys: list[Any] = [None] * n
        zones: list[list[str]] = [[]] * n
        undated = np.zeros(n, bool)
        vocabulary = self.vocabulary
        for i in np.flatnonzero(ok).tolist():
            r = {name: values[i] for name, values in columns.items()}
            r["consent"], r["places"] = bool(dated["consent"][i]), bool(dated["places"][i])
            flags = r["flags"] or ()
            try:
                names = list(dict.fromkeys([r["timezone"] or self.default_zone, *(r["timezones"] or ())]))
                for name in names:
                    zone(name)
                valid = self._valid_dates(r, names[0], at, at_us)
            except (ValueError, LookupError, OverflowError):
                valid = False
            if not valid or any(f not in vocabulary for f in flags):
                ok[i] = False
                continue
            keys[i] = tuple(get(r) for get in self.getters)
            zones[i] = names
            undated[i] = bool(flags) or bool(r["opt_out"]) or r["plan_status"] is not None
        return ok, keys, zones, undated

    # -- one batch -------------------------------------------------------------------------------

    def screen(self, batch: Any, start: dt.datetime, end: dt.datetime, at: dt.datetime) -> Screened:
        """Screen one :class:`~escalation.portfolio.arrow.TypedBatch`."""
        accounts, events = batch.accounts, batch.events
        n = accounts.num_rows
        at_us = _us(at)
        owners = np.asarray(events["account"].to_numpy(), np.int64)
        ts = np.asarray(events["at"].cast(pa.int64()).to_numpy(), np.int64)
        channel = _codes(events["channel"], self.channels)
        direction = _codes(events["direction"], [d.value for d in Direction])
        outbound = direction == self.codes["direction:outbound"]
        consented = ~np.asarray(pc.is_null(events["consent_until"]).to_numpy(zero_copy_only=False), bool)
        unfit = (ts > at_us) | (outbound & (channel < 0))
        action = _codes(events["action"], self.actions)
        places = np.isin(action, np.asarray(self.placing, np.int64))
        dated = {
            "unfit": np.bincount(owners[unfit], minlength=n) > 0,
            "consent": np.bincount(owners[consented], minlength=n) > 0,
            "places": np.bincount(owners[places], minlength=n) > 0,
        }
        ok, keys, zones, undated = self._accounts(accounts, dated, at, at_us)
        keep = ok[owners]
        arrays = {
            "acc": owners[keep],
            "ts": ts[keep],
            "channel": channel[keep],
            "direction": direction[keep],
            "outcome": _codes(events["outcome"], self.outcomes)[keep],
            "action": action[keep],
            "orig": np.flatnonzero(keep),
        }
        slots = max((len(z) for z in zones), default=1) or 1
        ev = Events(arrays, slots)
        self._place(ev, zones, slots)
        refer = ~ok
        g = np.flatnonzero(
            (ev.direction == self.codes["direction:outbound"]) & (ev.ts >= _us(start)) & (ev.ts < _us(end))
        )
        self._refer_contacts(ev, g, keys, refer)
        cleared = ok & ~refer
        return Screened(cleared, self._actors(accounts, events, ev, g, cleared), int(undated[cleared].sum()))

    def _place(self, ev: Events, zones: list[list[str]], slots: int) -> None:
        """Each event's local time in each of its account's zones."""
        for slot in range(slots):
            names = sorted({z[slot] for z in zones if len(z) > slot})
            index = {name: k for k, name in enumerate(names)}
            per_account = np.asarray([index[z[slot]] if len(z) > slot else -1 for z in zones], np.int64)
            of_event = per_account[ev.acc] if len(per_account) else np.zeros(0, np.int64)
            for k, name in enumerate(names):
                where = np.flatnonzero(of_event == k)
                if not len(where):
                    continue
                offsets = local_offsets(zone(name), ev.ts[where])
                ev.local[slot][where] = ev.ts[where] + offsets
                ev.max_offset[slot][where] = offsets.max()
                ev.present[slot][where] = True

    def _refer_contacts(self, ev: Events, g: np.ndarray, keys: list[Any], refer: np.ndarray) -> None:
        """Mark the accounts a contact of which a hold, a guard or a time screen might block."""
        if not len(g):
            return
        n_channels = len(self.channels)
        tier = np.where(ev.action[g] < len(self.tiers), ev.action[g], -1)
        combo = (tier + 1) * n_channels + ev.channel[g]
        n_combos = (len(self.tiers) + 1) * n_channels
        pairs, inverse = np.unique(ev.acc[g] * n_combos + combo, return_inverse=True)
        has = np.zeros((len(pairs), max(len(self.time_rules), 1)), bool)
        for p, pair in enumerate(pairs.tolist()):
            a, c = divmod(pair, n_combos)
            if refer[a]:
                continue
            action = self.tiers[c // n_channels - 1] if c >= n_channels else None
            memo_key = (keys[a], c)
            if memo_key in self.memo:
                active = self.memo[memo_key]
            else:
                active = self.memo[memo_key] = self._settle(keys[a], action, Channel(self.channels[c % n_channels]))
            if active is None:
                refer[a] = True
            else:
                has[p, list(active)] = True
        for c in np.unique(combo).tolist():
            in_combo = combo == c
            for t, screen in enumerate(self.screens):
                sel = np.flatnonzero(in_combo & has[inverse, t])
                if not len(sel):
                    continue
                blocked = screen(ev, g[sel], c % n_channels, self.codes)
                refer[ev.acc[g[sel[blocked]]]] = True

    def _actors(self, accounts: pa.Table, events: pa.Table, ev: Events, g: np.ndarray, cleared: np.ndarray) -> dict[str, int]:
        """The cleared accounts' contacts in the period, by actor (the event's, else the account's)."""
        mine = g[cleared[ev.acc[g]]]
        if not len(mine):
            return {}
        default = pc.fill_null(accounts["actor_type"], "(not recorded)")
        rows = pa.array(ev.acc[mine])
        actors = pc.coalesce(pc.take(events["actor"], pa.array(ev.orig[mine])), pc.take(default, rows))
        return {item["values"]: item["counts"] for item in pc.value_counts(actors).to_pylist()}


def _state_clean(rule: GuardRule, facts: Mapping[str, Any], channel: Channel) -> bool:
    """A state guard that certainly does not block (as ``_screen.state_clean``)."""
    model = rule.model
    if isinstance(model, BlockGuard):
        return rule.conditions["when"].truth(facts) is not True
    if isinstance(model, ConsentGuard) and not model.confirm_on:
        return channel.value not in facts.get("opt_out", frozenset())
    # no inconvenient times or places: they would be in `rest`
    return isinstance(model, InconvenientGuard)


def _codes(column: Any, values: list[str]) -> np.ndarray:
    """Each value's index in ``values`` (-1: null or not listed)."""
    found = pc.fill_null(pc.index_in(column, value_set=pa.array(values, pa.string())), -1)
    return np.asarray(found.to_numpy(), np.int64)


def _us(instant: dt.datetime) -> int:
    return (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
