"""Contact counts over a batch's events (a helper of :mod:`._facts`):
``contacts_30d.*``, ``contacts_7d.*`` and ``conversations_30d``.

Both windows of every channel come from one ``np.bincount``: each recent
outbound event's key is (channel, account, within 7 days), so the 7-day
counts are the odd cells and the 30-day ones the sum of each pair."""

from __future__ import annotations

import numpy as np

from escalation.backends.columnar._column import Column
from escalation.backends.columnar._zones import DAY_US

__all__ = ["contact_columns"]


def contact_columns(
    n: int,
    now_us: int,
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    channels: list[str],
    conversation: int,
) -> dict[str, Column]:
    """``events`` = (account, instant, channel code, outcome code, outbound),
    sorted by account; ``conversation``: the outcome code counted."""
    ev_acc, ev_ts, channel, outcome, outbound = events
    month, week = now_us - 30 * DAY_US, now_us - 7 * DAY_US
    recent = ev_ts > month
    on = np.flatnonzero(outbound & (channel >= 0) & recent)
    key = np.take(channel, on) * n
    key += np.take(ev_acc, on)
    key *= 2
    key += np.take(ev_ts, on) > week
    pairs = np.bincount(key, minlength=2 * len(channels) * n).reshape(len(channels), n, 2)
    c7 = np.ascontiguousarray(pairs[:, :, 1])
    c30 = pairs[:, :, 0] + c7
    everyone = np.ones(n, bool)
    columns: dict[str, Column] = {}
    for c, name in enumerate(channels):
        columns[f"contacts_30d.{name}"] = Column("num", c30[c], everyone)
        columns[f"contacts_7d.{name}"] = Column("num", c7[c], everyone)
    recent &= outcome == conversation
    talks = np.bincount(np.take(ev_acc, np.flatnonzero(recent)), minlength=n)
    columns["conversations_30d"] = Column("num", talks, everyone)
    return columns
