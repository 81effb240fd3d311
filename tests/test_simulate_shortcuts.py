"""The day loop's shortcuts change nothing: the events kept sorted from one day
to the next (``Book._events_of``), the reference engine's `offer` decisions
reused for their offers (``Remembering``) and the columnar evaluator's naming
of each `offer` row's offer and tier (``TableResult.offers``, instead of
deciding the account again) and the offer calls the contact audit's typed
screen clears (``OfferCalls.cleared``, instead of checking each call). Each
simulation runs with and without them and the output files must be
byte-identical."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from escalation.backends.columnar import ColumnarPolicy
from escalation.backends.columnar._offers import OfferChoice
from escalation.policy import load_policy
from escalation.policy._yaml import load_yaml
from escalation.portfolio.generate import generate
from escalation.simulate._loop import run_policy
from escalation.simulate._offers import OfferCalls, Remembering
from escalation.simulate._state import ACTIVE, Book
from escalation.simulate.model import ResponseModel, bundled_model
from escalation.simulate.run import _instants, _load_book, simulate

ROOT = Path(__file__).resolve().parent.parent
AT = dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
FILES = ("summary.json", "daily.parquet", "actions.parquet", "errors.jsonl")
CASES = {
    "cn": ("cn-card", "policies/consumer-credit-cn.yaml", "examples/cn-lawyer-letter-45.yaml", 3),
    "us": ("us-card", "policies/us-card-collector.yaml", None, 8),
    "uk": ("uk-loan", "policies/uk-consumer-loan.yaml", None, 5),
}


def _no_shortcuts(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Book._events_of

    def rebuilt(self: Book, active: np.ndarray) -> Any:
        self._sorted = None  # sort every event again, as before the shortcut
        return original(self, active)

    def decided_again(
        self: Remembering, record: Any, *, now: dt.datetime, trace: bool = True, locale: Any = None
    ) -> Any:
        return self._engine.decide(record, now=now, trace=trace, locale=locale)

    def unnamed(self: OfferChoice, rows: np.ndarray) -> OfferChoice:
        return OfferChoice.empty(len(rows))  # every offer row decided again by the reference engine

    monkeypatch.setattr(Book, "_events_of", rebuilt)
    monkeypatch.setattr(Remembering, "decide", decided_again)

    def none_cleared(self: OfferCalls, batch: Any, rows: list[int], calls: Any, now: dt.datetime) -> Any:
        return np.zeros(len(rows), bool)  # every offer call checked by the audit, one by one

    monkeypatch.setattr(OfferChoice, "without", unnamed)
    monkeypatch.setattr(OfferCalls, "cleared", none_cleared)


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_are_byte_identical_without_the_shortcuts(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile, policy, baseline, seed = CASES[case]
    book = tmp_path / "book.jsonl"
    book.write_text("".join(json.dumps(r) + "\n" for r in generate(150, seed=seed, profile=profile, at=AT)))
    args: dict[str, Any] = {"at": AT, "days": 15, "model": profile, "runs": 2, "seed": seed}
    if baseline is not None:
        args["baseline"] = ROOT / baseline
    simulate(ROOT / policy, book, out=tmp_path / "fast", **args)
    with monkeypatch.context() as patch:
        _no_shortcuts(patch)
        simulate(ROOT / policy, book, out=tmp_path / "slow", **args)
    for name in FILES:
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "slow" / name).read_bytes(), name


def test_the_kept_events_are_the_events_sorted_again(tmp_path: Path) -> None:
    """After some simulated days, the kept, merged events of the active
    accounts equal those sorted from scratch, row for row."""
    path = tmp_path / "book.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in generate(200, seed=2, at=AT)))
    book = _load_book(path, "CNY", AT, "Asia/Shanghai")
    model = ResponseModel.model_validate(
        load_yaml(bundled_model("cn-card").read_bytes(), "cn-card.yaml").data
    )
    policy = ColumnarPolicy(load_policy(ROOT / "policies" / "consumer-credit-cn.yaml"))
    done = run_policy(book, policy, model, _instants(AT, 10, "Asia/Shanghai"), seed=1, run=0, grace=3)
    final = done.book
    active = np.flatnonzero(final.status == ACTIVE)
    assert 0 < len(active) < len(final.status), "some accounts left the book, some are still in it"
    kept, kept_owner = final._events_of(active)
    final._sorted = None
    again, owner = final._events_of(active)
    assert kept.num_rows == again.num_rows > 0
    assert kept.equals(again)
    assert (kept_owner == owner).all()
