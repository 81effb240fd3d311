"""The typed folder as the columnar backend reads it: events dictionary-encoded
(``TypedBatch.encoded_events``), split across batches, facts derived without
re-sorting events already in order. Decisions equal those of the same records
typed in memory (plain text columns) and of the reference engine; facts equal
whether events arrive encoded or plain, in order or not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation import Engine  # noqa: E402
from escalation.backends.columnar import ColumnarPolicy, decide_table  # noqa: E402
from escalation.backends.columnar._facts import derive_batch  # noqa: E402
from escalation.policy import load_policy  # noqa: E402
from escalation.portfolio.arrow import ENCODED, EVENTS, TypedBatch, read_typed, to_batch, write_typed  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402
from escalation.portfolio.writer import decision_row  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("status", "action", "channel", "severity", "next_eligible_at", "hold", "blocked_guards")
NOW = dt.datetime.fromisoformat("2026-11-01T12:59:00+00:00")  # a US DST edge
FACTS = ("fallback", "today", "tier_done", "tier_last", "tier_counted", "stage", "actions_today")
EVENT_FACTS = (
    "ev_acc",
    "ev_ts",
    "ev_action",
    "ev_channel",
    "ev_outcome",
    "ev_outbound",
    "ev_in_cycle",
    "ev_day",
)


def _typed(tmp_path: Path, profile: str, count: int) -> tuple[list[dict[str, Any]], list[TypedBatch]]:
    records = list(generate(count, 11, profile, NOW))
    write_typed(records, tmp_path / "typed", batch=97)  # several row groups
    return records, list(read_typed(tmp_path / "typed", 61))  # batches cutting across them


def _same_facts(a: Any, b: Any) -> None:
    for name in FACTS + EVENT_FACTS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.why.code, b.why.code)
    assert list(a.columns) == list(b.columns)
    for name, column in a.columns.items():
        other = b.columns[name]
        assert column.kind == other.kind, name
        assert column.values.tolist() == other.values.tolist(), name
        assert column.known.tolist() == other.known.tolist(), name


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_typed_folder_decides_as_records_in_memory_and_the_reference(tmp_path: Path, profile: str) -> None:
    records, batches = _typed(tmp_path, profile, 400)
    assert len(batches) == 7 and sum(len(b) for b in batches) == 400
    policy = load_policy(ROOT / PROFILES[profile].policy)
    engine = Engine(policy)
    start = 0
    for batch in batches:
        encoded = batch.encoded_events
        for name in ENCODED:
            assert pa.types.is_dictionary(encoded.schema.field(name).type), name
        assert batch.events.schema == EVENTS  # decoded on use
        mine = records[start : start + len(batch)]
        memory = to_batch(list(enumerate(mine, start + 1)))
        assert batch.events.to_pylist() == memory.events.to_pylist()
        got = decide_table(batch, [ColumnarPolicy(policy)], now=NOW)
        want = decide_table(memory, [ColumnarPolicy(policy)], now=NOW)
        assert got.vectorised == want.vectorised
        assert got.decisions == want.decisions
        for record, row in zip(mine, got.decisions[0], strict=True):
            ref = decision_row(engine.decide(record, now=NOW, trace=False))
            assert row is not None
            assert {k: row[k] for k in KEYS} == {k: ref[k] for k in KEYS}, record["id"]
        start += len(batch)


def test_facts_equal_from_encoded_plain_and_shuffled_events(tmp_path: Path) -> None:
    _, batches = _typed(tmp_path, "cn-card", 150)
    policy = load_policy(ROOT / PROFILES["cn-card"].policy)
    batch = batches[1]
    events = batch.events
    assert events.num_rows > 100
    # accounts in reverse order, each account's events kept in their order: re-sorted on derive
    owners = np.asarray(events.column("account"), dtype=np.int64)
    order = np.lexsort((np.arange(len(owners)), -owners))
    shuffled = TypedBatch(batch.accounts, events.take(pa.array(order)))
    derived = derive_batch(batch, policy, NOW)
    assert derived.ev_acc.tolist() == sorted(derived.ev_acc.tolist())
    _same_facts(derived, derive_batch(TypedBatch(batch.accounts, events), policy, NOW))
    _same_facts(derived, derive_batch(shuffled, policy, NOW))


@pytest.mark.parametrize(("group", "size"), [(97, 61), (7, 61), (61, 61), (500, 61), (13, 1)])
def test_batches_have_exactly_the_asked_size_whatever_the_row_groups(
    tmp_path: Path, group: int, size: int
) -> None:
    """Each row group is read by its own reader (one reader over the whole file
    kept decoded memory), and the accounts are regrouped: every batch but the
    last has exactly ``size`` accounts, each with exactly its own events, in
    order, whatever the row groups of the file."""
    records = list(generate(300, 5, "cn-card", NOW))
    write_typed(records, tmp_path / "typed", batch=group)
    batches = list(read_typed(tmp_path / "typed", size))
    assert [len(b) for b in batches[:-1]] == [size] * (len(batches) - 1)
    assert 0 < len(batches[-1]) <= size
    ids = [i for b in batches for i in b.accounts.column("id").to_pylist()]
    assert [r["id"] for r in records] == ids
    for batch in batches:
        owners = batch.encoded_events.column("account").to_numpy()
        assert np.all(np.diff(owners) >= 0) and (len(owners) == 0 or owners.max() < len(batch))
    events = sum(b.encoded_events.num_rows for b in batches)
    assert sum(len(r.get("history", [])) for r in records) == events
