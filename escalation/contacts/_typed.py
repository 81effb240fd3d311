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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escalation.contacts._check import ContactAuditor
from escalation.contacts._screen import NeedsReference
from escalation.contacts._typed_state import Columns, Facts, array, state_clean, state_column
from escalation.contacts._typed_time import TIME_KINDS, Events, distinct, local_offsets, might_block
from escalation.record import KNOWN_FLAGS, Channel, Direction, Outcome, local_date, zone

_EPOCH = dt.date(1970, 1, 1).toordinal()
_STATES = 100_000  # distinct states remembered across batches, at most (then forgotten)

__all__ = ["Screened", "TypedScreen"]


@dataclass(frozen=True)
class Screened:
    """One batch's screen: the accounts cleared, and their tallies."""

    cleared: np.ndarray  # bool per account row
    contacts: dict[str, int]  # the cleared accounts' contacts in the period, by actor
    undated: int  # cleared accounts carrying undated state (see ``undated_state``)


class TypedScreen:
    """Screens typed batches under one policy (see the module docstring)."""

    def __init__(self, auditor: ContactAuditor) -> None:
        policy = auditor.policy
        self.auditor = auditor
        self.currency = policy.header.currency
        self.default_zone = policy.header.timezone
        names: set[str] = set()
        for hold in policy.holds:
            names |= hold.when.facts
        for rule in policy.guards:
            if rule.unless is not None:
                names |= rule.unless.facts
            for condition in rule.conditions.values():
                names |= condition.facts
        self.names = tuple(sorted(names | {"opt_out"}))  # the consent guard reads the opt-outs
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
        self.vocabulary = pa.array(sorted(KNOWN_FLAGS | policy.flags), pa.string())
        #: every distinct state met (its facts, in ``names`` order) → its id
        self.states: dict[tuple[Any, ...], int] = {}
        #: (state id, tier and channel code) → the time screens left, or None: refer
        self.memo: dict[tuple[int, int], tuple[int, ...] | None] = {}
        self.today: dict[tuple[str, dt.datetime], int] = {}

    # -- the state: holds and state guards, once per distinct state ---------------------------

    def _settle(self, key: tuple[Any, ...], action: str | None, channel: Channel) -> tuple[int, ...] | None:
        """The time screens left for a contact of ``action`` on ``channel`` in
        state ``key``; ``None`` when a hold or a state guard might block it."""
        facts = cast("Mapping[str, Any]", Facts(dict(zip(self.names, key, strict=True))))
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
                elif not state_clean(rule, facts, channel):
                    return None
        except (NeedsReference, ArithmeticError, TypeError, ValueError):
            return None
        return tuple(active)

    def _dates_ok(self, accounts: pa.Table, today: np.ndarray, at_us: int) -> np.ndarray:
        """The record's own dates pass ``check_at`` for the export instant
        (``today``: the export's local day in each account's zone, days since the epoch)."""
        never = np.iinfo(np.int64).min
        since = array(accounts["overdue_since"], never)
        days = array(accounts["days_overdue"], -1)
        bad = since > today
        counted = today - np.where(since == never, today, since)
        bad |= (since != never) & (days != -1) & (counted != days)
        bad |= array(accounts["last_payment_at"], never) > today
        for name in ("validation_notice_sent_at", "promise_made_at"):
            bad |= array(accounts[name], never) > at_us
        return ~bad

    def _flags_ok(self, accounts: pa.Table) -> np.ndarray:
        """Every flag is a known or declared one (else ``validate`` refuses the record)."""
        flags = accounts["flags"].combine_chunks()
        flat = pc.list_flatten(flags)
        unknown = ~np.asarray(pc.is_in(flat, value_set=self.vocabulary).to_numpy(zero_copy_only=False), bool)
        parents = np.asarray(pc.list_parent_indices(flags).to_numpy(), np.int64)
        return np.asarray(np.bincount(parents[unknown], minlength=accounts.num_rows) == 0, bool)

    def _accounts(
        self, accounts: pa.Table, dated: dict[str, np.ndarray], at: dt.datetime, at_us: int
    ) -> tuple[np.ndarray, np.ndarray, list[list[str]], np.ndarray]:
        """Which accounts the screen can take, their state ids (equal ids: equal
        states, see ``states``), zones and undated state."""
        n = accounts.num_rows
        whole = pc.and_(pc.is_null(accounts["raw"]), pc.is_null(accounts["rest"]))
        same = pc.fill_null(pc.equal(accounts["currency"], self.currency), False)
        ok = np.asarray(pc.and_(whole, same).to_numpy(zero_copy_only=False), bool) & ~dated["unfit"]
        ok &= self._flags_ok(accounts)
        c = Columns(accounts, {k: v for k, v in dated.items() if k != "unfit"})
        zones: list[list[str]] = [[]] * n
        today = np.zeros(n, np.int64)
        for i, (tz, extra) in enumerate(zip(c["timezone"], c["timezones"], strict=True)):
            if not ok[i]:
                continue
            names = (
                [tz or self.default_zone]
                if not extra
                else list(dict.fromkeys([tz or self.default_zone, *extra]))
            )
            try:
                today[i] = self._today(names, at)
            except (ValueError, LookupError, OverflowError):
                ok[i] = False
                continue
            zones[i] = names
        ok &= self._dates_ok(accounts, today, at_us)
        state = np.full(n, -1, np.int64)
        keys = zip(*(state_column(name, c, n) for name in self.names), strict=True)
        states = self.states
        for i, key in enumerate(keys):
            if ok[i]:
                state[i] = states.setdefault(key, len(states))
        undated = (
            np.asarray(pc.fill_null(pc.list_value_length(accounts["flags"]), 0).to_numpy(), np.int64) > 0
        ) | (np.asarray(pc.fill_null(pc.list_value_length(accounts["opt_out"]), 0).to_numpy(), np.int64) > 0)
        undated |= ~np.asarray(pc.is_null(accounts["plan_status"]).to_numpy(zero_copy_only=False), bool)
        return ok, state, zones, undated

    def _today(self, names: list[str], at: dt.datetime) -> int:
        """The export's local day in the account's zone (days since the epoch);
        raises ``ValueError`` for a zone that cannot be loaded."""
        found = self.today.get((names[0], at))
        if found is None:
            for name in names:
                zone(name)
            found = self.today[(names[0], at)] = local_date(at, zone(names[0])).toordinal() - _EPOCH
        else:
            for name in names[1:]:
                zone(name)
        return found

    # -- one batch -------------------------------------------------------------------------------

    def screen(self, batch: Any, start: dt.datetime, end: dt.datetime, at: dt.datetime) -> Screened:
        """Screen one :class:`~escalation.portfolio.arrow.TypedBatch`."""
        if len(self.states) > _STATES:  # a book of ever-new states (e.g. a hold reading the balance)
            self.states.clear()
            self.memo.clear()
        accounts, events = batch.accounts, batch.events
        n = accounts.num_rows
        at_us = _us(at)
        owners = np.asarray(events["account"].to_numpy(), np.int64)
        ts = np.asarray(events["at"].cast(pa.int64()).to_numpy(), np.int64)
        channel = _codes(events["channel"], self.channels)
        direction = _codes(events["direction"], [d.value for d in Direction])
        outbound = direction == self.codes["direction:outbound"]
        consented = ~np.asarray(pc.is_null(events["consent_until"]).to_numpy(zero_copy_only=False), bool)
        # dated after the export, an outbound event of no channel, an empty actor ("" counts as none)
        unfit = (ts > at_us) | (outbound & (channel < 0))
        if events["actor"].null_count < events.num_rows:
            unfit |= np.asarray(pc.fill_null(pc.equal(events["actor"], ""), False).to_numpy(), bool)
        action = _codes(events["action"], self.actions)
        places = np.isin(action, np.asarray(self.placing, np.int64))
        dated = {
            "unfit": np.bincount(owners[unfit], minlength=n) > 0,
            "consent": np.bincount(owners[consented], minlength=n) > 0,
            "places": np.bincount(owners[places], minlength=n) > 0,
        }
        ok, state, zones, undated = self._accounts(accounts, dated, at, at_us)
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
        self._refer_contacts(ev, g, state, refer)
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

    def _refer_contacts(self, ev: Events, g: np.ndarray, state: np.ndarray, refer: np.ndarray) -> None:
        """Mark the accounts a contact of which a hold, a guard or a time screen might block."""
        if not len(g):
            return
        n_channels = len(self.channels)
        tier = np.where(ev.action[g] < len(self.tiers), ev.action[g], -1)
        combo = (tier + 1) * n_channels + ev.channel[g]
        n_combos = (len(self.tiers) + 1) * n_channels
        # the holds and state guards: once per (state, tier and channel) met
        kinds, inverse = distinct(state[ev.acc[g]] * n_combos + combo)
        blocked = np.zeros(len(kinds), bool)
        has = np.zeros((len(kinds), max(len(self.time_rules), 1)), bool)
        keys = list(self.states)
        for k, code in enumerate(kinds.tolist()):
            st, c = divmod(code, n_combos)
            if (st, c) in self.memo:
                active = self.memo[(st, c)]
            else:
                action = self.tiers[c // n_channels - 1] if c >= n_channels else None
                channel = Channel(self.channels[c % n_channels])
                active = self.memo[(st, c)] = self._settle(keys[st], action, channel)
            if active is None:
                blocked[k] = True
            else:
                has[k, list(active)] = True
        refer[ev.acc[g[blocked[inverse]]]] = True
        # the time screens, over the contacts of each tier and channel
        for c in np.unique(combo).tolist():
            in_combo = combo == c
            for t, screen in enumerate(self.screens):
                sel = np.flatnonzero(in_combo & has[inverse, t])
                if len(sel):
                    might = screen(ev, g[sel], c % n_channels, self.codes)
                    refer[ev.acc[g[sel[might]]]] = True

    def _actors(
        self, accounts: pa.Table, events: pa.Table, ev: Events, g: np.ndarray, cleared: np.ndarray
    ) -> dict[str, int]:
        """The cleared accounts' contacts in the period, by actor (the event's, else the account's)."""
        mine = g[cleared[ev.acc[g]]]
        if not len(mine):
            return {}
        default = pc.fill_null(accounts["actor_type"], "(not recorded)").combine_chunks().dictionary_encode()
        if events["actor"].null_count == events.num_rows:  # no event names its actor: the accounts' own
            counts = np.bincount(np.asarray(default.indices)[ev.acc[mine]], minlength=len(default.dictionary))
            return {
                k: int(v) for k, v in zip(default.dictionary.to_pylist(), counts.tolist(), strict=True) if v
            }
        rows = pa.array(ev.acc[mine])
        actors = pc.coalesce(
            pc.take(events["actor"], pa.array(ev.orig[mine])), pc.take(default.cast(pa.string()), rows)
        )
        return {item["values"]: item["counts"] for item in pc.value_counts(actors).to_pylist()}


def _codes(column: Any, values: list[str]) -> np.ndarray:
    """Each value's index in ``values`` (-1: null or not listed)."""
    found = pc.fill_null(pc.index_in(column, value_set=pa.array(values, pa.string())), -1)
    return np.asarray(found.to_numpy(), np.int64)


def _us(instant: dt.datetime) -> int:
    return (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
