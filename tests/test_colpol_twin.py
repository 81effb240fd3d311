"""The columnar policies stage's cheaper forms held to their plain ones: a
policy differing from one already decided on the batch only in its holds' and
tiers' conditions (a twin, ``_twin``) decides again only the accounts where
those differ — its outcome must be the one it gets alone, on every profile,
at any instant; and the ladder's string columns kept as codes (``_labels``)
are the object arrays and Arrow columns they stand for."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

from escalation._ladder import LadderPlan  # noqa: E402
from escalation.backends.columnar import ColumnarPolicy, decide_table  # noqa: E402
from escalation.backends.columnar._facts import derive_batch  # noqa: E402
from escalation.backends.columnar._labels import Labels, arrow_strings  # noqa: E402
from escalation.backends.columnar._ladder import Outcome, decide  # noqa: E402
from escalation.backends.columnar._twin import ladder_key  # noqa: E402
from escalation.policy import Policy, load_policy  # noqa: E402
from escalation.portfolio.arrow import to_batch  # noqa: E402
from escalation.portfolio.generate import PROFILES, generate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)  # a Friday: the week spans a weekend
ZONES = ["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
_NUMBER = re.compile(r"(days_overdue|amount_overdue|balance|broken_promises) (>=|<|>|<=) (\d+)")


def _records(profile: str, count: int, seed: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Generated accounts, every fifth one also in one or two other zones."""
    records = list(generate(count, seed, profile, now))
    for k, record in enumerate(records[::5]):
        record["timezones"] = [ZONES[k % 4], ZONES[(k + 1) % 4]][: 1 + k % 2]
    return records


def _twin(path: Path, tmp: Path, seed: int) -> tuple[Policy, Policy]:
    """The policy and a twin: some thresholds of its holds' and tiers' conditions
    moved (its guards, offers and the rest untouched)."""
    text = path.read_text()
    start = text.index("\nholds:\n") if "\nholds:\n" in text else text.index("\ntiers:\n")
    end = text.index("\nguards:\n", start) if "\nguards:\n" in text[start:] else len(text)
    rng = random.Random(seed)

    def move(m: re.Match[str]) -> str:
        if rng.random() < 0.5:
            return m.group(0)
        return f"{m.group(1)} {m.group(2)} {max(0, int(m.group(3)) + rng.choice([-2, -1, 1, 3]))}"

    variant = text[:start] + _NUMBER.sub(move, text[start:end]) + text[end:]
    (tmp / "original.yaml").write_text(text)
    (tmp / "variant.yaml").write_text(variant)  # (shipped packs are found by name)
    return load_policy(tmp / "original.yaml"), load_policy(tmp / "variant.yaml")


def _tables(result: Any) -> list[list[dict[str, Any]]]:
    return [table.to_pylist() for table in result.tables]


def _plain(out: Outcome) -> dict[str, Any]:
    """An outcome's every part as plain values (blocked: the guards that block a row)."""
    fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
    plain = {
        k: (v.objects() if isinstance(v, Labels) else v).tolist() for k, v in fields.items() if k != "blocked"
    }
    plain["blocked"] = {g: np.flatnonzero(m).tolist() for g, m in out.blocked.items() if m.any()}
    return plain


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.sampled_from(sorted(PROFILES)),
    minutes=st.integers(0, 7 * 24 * 60 - 1),
    seed=st.integers(0, 10_000),
)
def test_a_twin_decides_as_it_does_alone(
    tmp_path_factory: pytest.TempPathFactory, profile: str, minutes: int, seed: int
) -> None:
    """A twin decided after its original on one batch (outcome reused where the
    conditions agree, the other accounts decided over their facts alone) has
    the outcome and decision tables it has when decided alone."""
    now = START + dt.timedelta(minutes=minutes)
    original, variant = _twin(ROOT / PROFILES[profile].policy, tmp_path_factory.mktemp("twin"), seed)
    plans = [LadderPlan.build(p) for p in (original, variant)]
    assert ladder_key(original, plans[0]) == ladder_key(variant, plans[1])  # twins: the path under test
    batch = to_batch(list(enumerate(_records(profile, 400, seed, now), 1)))
    facts = derive_batch(batch, original, now)
    decide(original, plans[0], facts)
    shared = decide(variant, plans[1], facts)
    alone = decide(variant, plans[1], derive_batch(batch, original, now))
    assert _plain(shared) == _plain(alone)
    both = decide_table(batch, [ColumnarPolicy(original), ColumnarPolicy(variant)], now=now, dicts=False)
    each = [decide_table(batch, [ColumnarPolicy(p)], now=now, dicts=False) for p in (original, variant)]
    assert _tables(both) == [_tables(each[0])[0], _tables(each[1])[0]]


def test_twins_differ_on_some_accounts(tmp_path: Path) -> None:
    """The twin pair of the CN policy used by the benchmarks (one threshold a day
    later) is a twin whose accounts differ somewhere: the test above can fail."""
    text = (ROOT / "policies" / "consumer-credit-cn.yaml").read_text()
    original = load_policy(ROOT / "policies" / "consumer-credit-cn.yaml")
    path = ROOT / "policies" / "consumer-credit-cn.yaml"
    variant_text = text.replace("days_overdue >= 8", "days_overdue >= 9")
    assert variant_text != text
    (tmp_path / "variant.yaml").write_text(variant_text)
    variant = load_policy(tmp_path / "variant.yaml")
    assert ladder_key(original, LadderPlan.build(original)) == ladder_key(variant, LadderPlan.build(variant))
    now = START + dt.timedelta(hours=12)
    result = decide_table(
        to_batch(list(enumerate(generate(400, 3, "cn-card", now), 1))),
        [ColumnarPolicy(original), ColumnarPolicy(load_policy(path)), ColumnarPolicy(variant)],
        now=now,
        dicts=False,
    )
    first, same, other = _tables(result)
    assert first == same
    assert first != other


def test_a_policy_with_another_guard_is_no_twin(tmp_path: Path) -> None:
    """A guard defined otherwise (here a contact window an hour later) makes two
    policies no twins: their outcomes are worked out apart."""
    path = ROOT / PROFILES["cn-card"].policy
    text = path.read_text()
    guard = (
        'guards:\n  - id: twin-test-hours\n    kind: contact_hours\n    from: "09:00"\n    to: "20:00"\n'
        "    authority: policy\n    reason: a test window\n    cite: a test\n"
    )
    (tmp_path / "a.yaml").write_text(text.replace("guards:\n", guard, 1))
    (tmp_path / "b.yaml").write_text(text.replace("guards:\n", guard.replace("09:00", "10:00"), 1))
    a, b = load_policy(tmp_path / "a.yaml"), load_policy(tmp_path / "b.yaml")
    assert ladder_key(a, LadderPlan.build(a)) != ladder_key(b, LadderPlan.build(b))


@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.none() | st.sampled_from(["a", "bb", "ccc", ""])), max_size=8
    ),
    other=st.lists(st.none() | st.sampled_from(["a", "bb", "x"]), min_size=40, max_size=40),
    picked=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_labels_are_the_object_column_they_stand_for(
    writes: list[tuple[int, str | None]], other: list[str | None], picked: list[bool]
) -> None:
    """Writes, comparisons, assignment and the Arrow column of a ``Labels`` are
    those of the object array written alike."""
    n = 40
    labels, plain = Labels(n), np.full(n, None, dtype=object)
    for seed, word in writes:
        rows = np.random.default_rng(seed).random(n) < 0.4
        labels.put(rows, word)
        plain[rows] = word
    assert labels.objects().tolist() == plain.tolist()
    for word in ("a", "bb", "ccc", "", "zz"):
        assert labels.equals(word).tolist() == (plain == word).tolist()
    theirs = Labels(n)
    for word in set(other) - {None}:
        theirs.put(np.asarray([w == word for w in other], dtype=bool), word)
    assert labels.differs(theirs).tolist() == [a != b for a, b in zip(plain.tolist(), other, strict=True)]
    rows = np.flatnonzero(picked)
    part = Labels(len(rows))
    for word in set(other) - {None}:
        part.put(np.asarray([other[i] == word for i in rows], dtype=bool), word)
    labels.assign(rows, part)
    plain[rows] = [other[i] for i in rows]
    assert labels.objects().tolist() == plain.tolist()
    column = arrow_strings(labels.codes, labels.words)
    assert column.equals(pa.array(plain, pa.string()))
