"""Guard verdicts over columns: for each account, at ``now`` or at an instant
of its own (when a tier that is not due yet becomes due), whether a guard
blocks, until when (``-1``: only an event lifts it) and whether the vectorised
check is unsure (the account then goes to the reference engine).

The semantics are the guard modules' (:mod:`escalation.guards`) for accounts in
one time zone; instants are µs since the epoch."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from escalation._calendar import is_holiday
from escalation._ladder import LadderPlan
from escalation._language import EventFilter
from escalation.backends.columnar import _hours
from escalation.backends.columnar._asked import asked_verdict
from escalation.backends.columnar._conditions import truth
from escalation.backends.columnar._events import Verdict, VerdictMemo, before_now, filter_mask, signature
from escalation.backends.columnar._facts import Facts
from escalation.backends.columnar._local import (
    _LOW,
    _group_max,
    local_days,
    zone_rows,
)
from escalation.backends.columnar._multizone import (
    slot_view,
    strictest,
)
from escalation.backends.columnar._starts import day_start, zone_day_starts
from escalation.backends.columnar._subset import events_at
from escalation.guards import (
    BlockGuard,
    ConsentGuard,
    ContactHoursGuard,
    CooldownGuard,
    FrequencyGuard,
    PrerequisiteGuard,
)
from escalation.guards.inconvenient import InconvenientGuard
from escalation.policy import GuardRule, Policy
from escalation.record import Channel

__all__ = ["NEVER", "Guards", "Verdict"]

_EPOCH = dt.date(1970, 1, 1)
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NEVER = -1  # an until that only an event lifts
# kinds whose verdict depends on the channel asked (the others' verdicts are shared by channels)
_BY_CHANNEL = (ConsentGuard, FrequencyGuard)
# kinds whose verdict reads no instant (conditions, flags): one verdict serves every instant
_TIMELESS = (BlockGuard, ConsentGuard, InconvenientGuard)
# kinds worked out at now for the rows asked only (passes over the events; :mod:`._asked`)
_BY_ROWS = (CooldownGuard, FrequencyGuard, PrerequisiteGuard)


class Guards:
    """Guard verdicts for one policy over one batch (at ``now`` memoised)."""

    def __init__(self, policy: Policy, plan: LadderPlan, facts: Facts) -> None:
        self.policy, self.plan, self.facts = policy, plan, facts
        self.tier_ids = [t.model.id for t in policy.tiers]
        self.tags_of = dict(plan.tags_of)
        self.now = np.full(facts.n, facts.now_us, np.int64)
        self.context = (tuple(self.tier_ids), tuple(sorted(self.tags_of.items())))
        self.shared = VerdictMemo.of(facts, self.context)  # verdicts, shared by the batch's policies
        self.sigs: dict[int, str] = {}
        self.holidays: dict[tuple[str, int], bool] = {}
        self.views: dict[int, Guards] = {}  # per zone slot ≥ 1: the same checks in that zone
        self.parts: dict[int, Guards] = {}  # per subset of the batch (`view`)

    def verdict(
        self, rule: GuardRule, channel: Channel, at: np.ndarray | None = None, rows: np.ndarray | None = None
    ) -> Verdict:
        """(blocked, until, unsure) of ``rule`` on ``channel`` at each account's
        instant ``at`` (``now`` when not given); memoised per batch and shared
        with the other policies of the batch that define the guard alike.
        ``rows`` (at now; increasing indices): the verdict is read at those rows
        only, so an event-based guard may work out only those (:mod:`._asked`)."""
        sig = self.sigs.get(id(rule))
        if sig is None:
            sig = self.sigs[id(rule)] = _signature(rule)
        key = (sig, channel if isinstance(rule.model, _BY_CHANNEL) else None)
        if isinstance(rule.model, _TIMELESS):
            at = None  # the same at every instant: the verdict at now
        found = self.shared.now.get(key) if at is None else self.shared.find(key, at)
        if found is not None:
            return found
        if at is None and rows is not None and isinstance(rule.model, _BY_ROWS):
            return asked_verdict(self, rule, channel, key, rows)
        blocked, until, unsure = self._check(rule, channel, self.now if at is None else at)
        if rule.unless is not None:
            lifted = truth(rule.unless.tree, self.facts)[0]
            blocked, unsure = blocked & ~lifted, unsure & ~lifted
        found = (blocked, until, unsure)
        if at is None:
            self.shared.now[key] = found
        else:
            self.shared.keep(key, at.copy(), found)
        return found

    def view(self, part: Facts) -> Guards:
        """The same checks over ``part``, a subset of the batch (one per subset)."""
        found = self.parts.get(id(part))
        if found is None or found.facts is not part:
            found = self.parts[id(part)] = Guards(self.policy, self.plan, part)
            found.holidays = self.holidays
        return found

    # ---------------------------------------------------------------- events

    def _mask(self, flt: EventFilter, channels: tuple[Channel, ...]) -> np.ndarray:
        return filter_mask(self.facts, flt, channels, self.tier_ids, self.tags_of)

    def _events(
        self,
        flt: EventFilter,
        exclude: tuple[EventFilter, ...],
        channels: tuple[Channel, ...],
        at: np.ndarray,
    ) -> np.ndarray:
        f = self.facts
        before = before_now(f) if at is self.now else f.ev_ts <= at[f.ev_acc]
        m = self._mask(flt, channels)  # (the memo's mask: callers never write into what this returns)
        if before is not None:
            m = m & before
        for x in exclude:
            m = m & ~self._mask(x, ())
        return m

    # ---------------------------------------------------------------- kinds

    def _check(self, rule: GuardRule, channel: Channel, at: np.ndarray) -> Verdict:
        f, g = self.facts, rule.model
        n = f.n
        none, never = np.zeros(n, bool), np.full(n, NEVER, np.int64)
        if _newer_than_columnar(g):  # parameters not vectorised: the reference engine decides
            return none, never, np.ones(n, bool)
        if isinstance(g, ConsentGuard):
            if g.confirm_on:  # `opt_out_at` lives in `rest`: no vectorised account can confirm
                return np.ones(n, bool), never, none
            return f.cache["opt_out"][channel.value], never, none
        if isinstance(g, InconvenientGuard):
            return none, never, none  # designated times and places live in `rest`: never here
        if isinstance(g, BlockGuard):
            blocked = truth(rule.conditions["when"].tree, f)[0]
            return blocked, never, blocked if g.until is not None else none
        if isinstance(g, ContactHoursGuard):
            if at is self.now:  # one instant: once per zone (:func:`._hours.shut_at_now`)
                shut, until = _hours.shut_at_now(f, self._holiday, g, f.now_us)
            else:  # once per distinct (zones, instant)
                shut, until, _found = _hours.shut_and_next(f, self._holiday, g, at)
            return shut, until, none
        if isinstance(g, CooldownGuard | FrequencyGuard):
            verdict = (
                self._cooldown(g, at) if isinstance(g, CooldownGuard) else self._frequency(g, channel, at)
            )
            if g.days_in == "every_zone" and len(f.zone_slots) > 1:
                return self._every_zone(g, channel, at, verdict)
            return verdict
        if isinstance(g, PrerequisiteGuard):
            return self._prerequisite(g, at)
        return none, never, np.ones(n, bool)  # a kind not vectorised: the reference engine decides

    def _holiday(self, code: str, days: np.ndarray) -> np.ndarray:
        """Whether each local day is a holiday of ``code`` (each distinct day looked up once)."""
        if not len(days):
            return np.zeros(days.shape, bool)
        low, high = int(days.min()), int(days.max())
        if high - low < 1 << 14:  # a short range of days (the usual): a flag table, no sort
            present = np.zeros(high - low + 1, bool)
            present[days - low] = True
            wanted = np.flatnonzero(present)
            table = np.zeros(high - low + 1, bool)
            table[wanted] = [self._is_holiday(code, d) for d in (wanted + low).tolist()]
            result: np.ndarray = table[days - low]
            return result
        unique, inverse = np.unique(days, return_inverse=True)
        flags = np.asarray([self._is_holiday(code, d) for d in unique.tolist()], bool)
        return flags[inverse].reshape(days.shape)

    def _is_holiday(self, code: str, day: int) -> bool:
        key = (code, day)
        if key not in self.holidays:
            self.holidays[key] = is_holiday(code, _EPOCH + dt.timedelta(days=day))
        return self.holidays[key]

    def window_open(self, g: ContactHoursGuard, at: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Whether each account's instant is inside the window (``rows``: of those accounts only)."""
        return _hours.window_open(self.facts, self._holiday, g, at, rows)

    def next_open(
        self, g: ContactHoursGuard, at: np.ndarray, shut: np.ndarray, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first instant at or after ``at`` inside the window (``contact_hours.next_open``)
        and where one was found within its 21-day search."""
        return _hours.next_open(self.facts, self._holiday, g, at, shut, rows)

    def _every_zone(
        self, g: CooldownGuard | FrequencyGuard, channel: Channel, at: np.ndarray, own: Verdict
    ) -> Verdict:
        """The strictest of ``own`` (days counted in the account's zone) and the
        verdicts with days counted in each of its other zones."""
        f = self.facts
        verdicts = [(own[0], own[1])]
        for slot in range(1, len(f.zone_slots)):
            view = slot_view(f, slot)
            other = self.views.get(slot)
            if other is None:
                other = self.views[slot] = Guards(self.policy, self.plan, view)
                other.holidays = self.holidays
            b, until, _unsure = (
                other._cooldown(g, at) if isinstance(g, CooldownGuard) else other._frequency(g, channel, at)
            )
            verdicts.append((b & (view.zone_names != None), until))  # noqa: E711 - elementwise
        blocked, until = strictest(verdicts)
        return blocked, until, own[2]

    def _days(self, at: np.ndarray) -> np.ndarray:
        """The local day of each account's instant (at ``now``: once per batch and zone view)."""
        if at is not self.now:
            return local_days(self.facts, at)
        days: np.ndarray | None = self.facts.cache.get(("now_days", None))
        if days is None:
            days = self.facts.cache[("now_days", None)] = local_days(self.facts, at)
        return days

    def _cooldown(self, g: CooldownGuard, at: np.ndarray) -> Verdict:
        f = self.facts
        n = f.n
        day = self._days(at)
        since = day_start(f, day - (g.wait - 1), np.ones(n, bool))
        m = self._events(g.after, g.exclude, (), at) & (f.ev_ts >= since[f.ev_acc])
        last = _group_max(f.ev_acc, f.ev_day, m, n)
        blocked = (last > _LOW) & (day < last + g.wait)
        until = np.where(blocked, day_start(f, last + g.wait, blocked), NEVER)
        return blocked, until, np.zeros(n, bool)

    def _frequency(self, g: FrequencyGuard, channel: Channel, at: np.ndarray) -> Verdict:
        f = self.facts
        n = f.n
        never = np.full(n, NEVER, np.int64)
        day = self._days(at)
        m = self._events(g.count, g.exclude, g.channels or (channel,), at)
        if g.window == "calendar_month":
            first = np.asarray(
                [((_EPOCH + dt.timedelta(days=d)).replace(day=1) - _EPOCH).days for d in day.tolist()],
                dtype=np.int64,
            )
        else:
            assert isinstance(g.window, int)
            first = day - (g.window - 1)
        # only the selected events count: the passes below run over those alone
        chosen = np.flatnonzero(m)
        ev_acc, ev_day = f.ev_acc[chosen], events_at(f, "ev_day", chosen)
        inside = ev_day >= first[ev_acc]
        if g.per == "account":
            owner = np.arange(n)
            key_of = ev_acc
        else:  # one group per address used before `at` (an address used only earlier counts 0)
            address = events_at(f, "ev_address", chosen)
            width = int(address.max()) + 2 if len(address) else 1  # (any width above the codes: same groups)
            pair = ev_acc * width + (address + 1)
            keys, picked = np.unique(pair, return_inverse=True)
            key_of = picked.reshape(-1)
            owner = keys // width
        k = len(owner)
        counts = np.bincount(key_of[inside], minlength=k)
        at_limit = counts >= g.max
        groups = np.bincount(owner, minlength=n)
        full = np.bincount(owner[at_limit], minlength=n)
        blocked = (groups > 0) & (full == groups)
        if g.max == 0:
            return np.ones(n, bool), never, np.zeros(n, bool)
        if g.window == "calendar_month":
            nxt = np.asarray(
                [((_EPOCH + dt.timedelta(days=d)).replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                 for d in day.tolist()],
                dtype=object,
            )  # fmt: skip
            release = np.asarray([(d - _EPOCH).days for d in nxt], np.int64)
            return blocked, np.where(blocked, day_start(f, release, blocked), NEVER), np.zeros(n, bool)
        assert isinstance(g.window, int)
        # per group: the first later day whose window holds fewer than `max` of its events
        key_release = np.full(k, _LOW, np.int64)
        key_day = day[owner]
        pending = at_limit & blocked[owner]
        for offset in range(1, g.window + 1):
            if not pending.any():
                break
            low = key_day + offset - (g.window - 1)
            c = np.bincount(key_of[inside & (ev_day >= low[key_of])], minlength=k)
            hit = pending & (c < g.max)
            key_release[hit] = key_day[hit] + offset
            pending &= ~hit
        key_release[pending] = key_day[pending] + g.window  # pragma: no cover - always found
        release = np.full(n, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(release, owner[at_limit], key_release[at_limit])
        return blocked, np.where(blocked, day_start(f, release, blocked), NEVER), np.zeros(n, bool)

    def _event_day_start(self, days: np.ndarray, owners: np.ndarray) -> np.ndarray:
        """µs of local day starts ``days`` of some events, in their accounts' (``owners``) zones."""
        out = np.zeros(len(days), np.int64)
        for name, _table, mine in zone_rows(self.facts):  # (`mine`: per account, no object compare per event)
            here = mine[owners]
            if here.any():
                out[here] = zone_day_starts(name, days[here])
        return out

    def _prerequisite(self, g: PrerequisiteGuard, at: np.ndarray) -> Verdict:
        f = self.facts
        n = f.n
        met = np.zeros(n, bool)
        soonest = np.full(n, np.iinfo(np.int64).max, np.int64)
        for alt in g.alternatives():
            if alt.nth > 1 or alt.min_gap is not None:
                return np.zeros(n, bool), np.full(n, NEVER, np.int64), np.ones(n, bool)
            if alt.record_date is not None:
                if alt.record_date != "validation_notice_sent_at":
                    continue  # kept in `rest`: absent for every vectorised account
                sent, known = f.cache["sent"]
                if alt.calendar_days:
                    ready = day_start(f, local_days(f, sent) + alt.at_least // dt.timedelta(days=1), known)
                else:
                    ready = sent + alt.at_least // dt.timedelta(microseconds=1)
                met |= known & (ready <= at)
                soonest = np.where(known & (ready > at), np.minimum(soonest, ready), soonest)
                continue
            assert alt.event is not None
            # over the selected events alone (indices): a prerequisite's events are few
            starts = np.flatnonzero(self._events(alt.event, g.exclude, (), at))
            if alt.undone_by is not None:  # undone by a later undo event (no `kept_by` here)
                undo = self._events(alt.undone_by, (), (), at)
                last_undo = _group_max(f.ev_acc, f.ev_ts, undo, n)
                starts = starts[f.ev_ts[starts] > last_undo[f.ev_acc[starts]]]
            owners = f.ev_acc[starts]
            if alt.calendar_days:
                ready = self._event_day_start(f.ev_day[starts] + alt.at_least // dt.timedelta(days=1), owners)
            else:
                ready = f.ev_ts[starts] + alt.at_least // dt.timedelta(microseconds=1)
            now_ok = ready <= at[owners]
            met[owners[now_ok]] = True
            np.minimum.at(soonest, owners[~now_ok], ready[~now_ok])
        blocked = ~met
        until = np.where(soonest < np.iinfo(np.int64).max, soonest, NEVER)
        return blocked, until, np.zeros(n, bool)

    def reopen(
        self,
        rules: tuple[GuardRule, ...],
        times: np.ndarray,
        known: np.ndarray,
        rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``_ladder._reopen`` over columns (:func:`._hours.reopen`); ``rows``: the
        accounts ``times`` and ``known`` are of (indices), else the whole batch."""
        return _hours.reopen(self.facts, self._holiday, rules, times, known, rows)


# signatures by rule object (kept with it, so its id is not reused): a rule's JSON and
# condition reprs cost ~0.1 ms, asked again by every batch's Guards
_SIGNATURES: dict[int, tuple[GuardRule, str]] = {}


def _signature(rule: GuardRule) -> str:
    found = _SIGNATURES.get(id(rule))
    if found is not None and found[0] is rule:
        return found[1]
    if len(_SIGNATURES) > 10_000:  # (policies loaded one after another: keep it bounded)
        _SIGNATURES.clear()
    sig = signature(rule)
    _SIGNATURES[id(rule)] = (rule, sig)
    return sig


def _newer_than_columnar(guard: Any) -> bool:
    """A guard using parameters the vectorised checks do not implement."""
    if isinstance(guard, PrerequisiteGuard):
        alternatives = (guard, *guard.any_of)
        return any(
            getattr(a, "kept_by", None) is not None
            or getattr(a, "more_than_months", None) is not None
            or getattr(a, "rest_days", None) is not None
            for a in alternatives
        )
    return False
