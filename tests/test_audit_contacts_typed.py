"""The typed contact audit (``evaluator="typed"``: whole accounts screened over
the typed layout's columns, the per-account path only for the accounts the
screen cannot clear) against the reference: the same ``violations.jsonl``,
``errors.jsonl`` and summary, byte for byte, on generated portfolios with
planted violations of every kind on every shipped policy, on the same books
with dated state scattered through the histories, and on a portfolio of broken
records — read as JSONL (typed on the fly) and as a typed folder."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("pyarrow")

from escalation import audit_contacts
from escalation.portfolio.generate import PROFILES

from .conftest import CN_POLICY, NOW, ROOT
from .test_audit_contacts_fast import END, EVER, _perturb, _planted


def _files(folder: Path) -> dict[str, Any]:
    summary = json.loads((folder / "summary.json").read_text())
    summary.pop("files")
    return {
        "violations": (folder / "violations.jsonl").read_text(),
        "errors": (folder / "errors.jsonl").read_text(),
        "summary": summary,
    }


def _agree(tmp_path: Path, policy: Any, path: Path) -> tuple[Any, Any]:
    """The reference on ``path``; the typed path on ``path`` and on its typed
    folder: every file identical (a typed folder's error rows name the folder)."""
    from escalation.portfolio.arrow import convert

    typed = tmp_path / "typed-folder"
    convert(path, typed)
    results = {}
    for name, evaluator, source in (
        ("reference", "reference", path),
        ("typed", "typed", path),
        ("folder", "typed", typed),
    ):
        results[name] = audit_contacts(
            policy, source, start=EVER, end=END, at=NOW, out=tmp_path / name, evaluator=evaluator
        )
    expected = _files(tmp_path / "reference")
    assert _files(tmp_path / "typed") == expected
    folder = _files(tmp_path / "folder")
    assert folder["violations"] == expected["violations"]
    assert folder["summary"] == expected["summary"]
    assert folder["errors"] == expected["errors"].replace(json.dumps(str(path)), json.dumps(str(typed)))
    return results["reference"], results["folder"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_planted_portfolios_agree(profile: str, tmp_path: Path) -> None:
    """Planted violations of every kind: the typed path reports exactly what the reference reports."""
    path = _planted(tmp_path, profile, seed=11, rate="40%", n=120)
    ref, typed = _agree(tmp_path, PROFILES[profile].policy, path)
    assert ref.violations > 20  # the comparison is about real findings
    assert typed.stats["accounts_cleared"] > 10  # and the screen cleared accounts, not referred them all


def test_ranked_keys_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Histories spanning too long for instants in the sort key (ranks instead): still identical."""
    from escalation.contacts import _typed_time

    monkeypatch.setattr(_typed_time, "DIRECT_KEYS", 0)
    path = _planted(tmp_path, "cn-card", seed=12, rate="40%", n=80)
    ref, typed = _agree(tmp_path, PROFILES["cn-card"].policy, path)
    assert ref.violations > 10
    assert typed.stats["accounts_cleared"] > 10


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("seed", [1, 2])
def test_dated_state_mid_history_agrees(profile: str, seed: int, tmp_path: Path) -> None:
    """Dated state crossing the histories, extra zones, bursts of calls at any hour: still identical."""
    source = _planted(tmp_path, profile, seed=20 + seed, rate="10%", n=100)
    rng = random.Random(seed)
    records = [_perturb(json.loads(line), rng) for line in source.read_text().splitlines()]
    path = tmp_path / "perturbed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    ref, typed = _agree(tmp_path, PROFILES[profile].policy, path)
    assert ref.violations > 10
    assert typed.audited == ref.audited > 50
    assert typed.stats["accounts_cleared"] > 5


def test_error_rows_are_the_same(tmp_path: Path) -> None:
    """A portfolio of broken records: the same error rows, row for row (accounts = audited + errors)."""
    ref, typed = _agree(tmp_path, CN_POLICY, ROOT / "examples" / "portfolio-bad.jsonl")
    assert typed.errors == ref.errors > 0
    assert typed.accounts == typed.audited + typed.errors


def test_sample_portfolio_is_clean_and_cleared(tmp_path: Path) -> None:
    """The bundled sample: same result, and the screen clears most accounts on its own."""
    ref, typed = _agree(tmp_path, CN_POLICY, ROOT / "examples" / "portfolio-cn.jsonl")
    assert ref.violations == typed.violations == 0
    assert typed.stats["accounts_cleared"] + typed.stats["accounts_referred"] == typed.accounts
    # 799 of 1,000 (the rest: promises on record, dated disputes, opt-outs, bursts over a limit)
    assert typed.stats["accounts_cleared"] > typed.accounts * 0.7


@pytest.mark.parametrize(
    "name", ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
def test_local_offsets_match_astimezone(name: str) -> None:
    """The screen's local times (an offset per hour, exact near transitions) equal ``astimezone``'s."""
    import numpy as np

    from escalation.contacts._typed_time import local_offsets

    tz = ZoneInfo(name)
    rng = random.Random(name)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    moments = [base + dt.timedelta(seconds=rng.randrange(366 * 86400)) for _ in range(3000)]
    # and every second around this year's transitions
    for day in range(366):
        a, b = base + dt.timedelta(days=day), base + dt.timedelta(days=day + 1)
        if a.astimezone(tz).utcoffset() != b.astimezone(tz).utcoffset():
            lo, hi = a, b
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (
                    (mid, hi)
                    if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset()
                    else (lo, mid)
                )
            moments += [hi + dt.timedelta(microseconds=k) for k in (-1_000_001, -1, 0, 1, 999_999)]
    stamps = np.asarray(
        [(m - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) for m in moments]
    )
    expected = [m.astimezone(tz).utcoffset() // dt.timedelta(microseconds=1) for m in moments]  # type: ignore[operator]
    assert local_offsets(tz, stamps).tolist() == expected


def _dense(record: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """The record without the state that blocks everything, its history replaced by
    calls at uneven gaps (hours to a week: every window edge is met), inside the day."""
    phone = next((e for e in record.get("history") or [] if e.get("channel") == "phone"), None)
    if phone is None:
        return None
    blocking = ("flags", "opt_out", "payment_plan", "promise_to_pay")
    record = {k: v for k, v in record.items() if k not in blocking}
    tz = ZoneInfo(record.get("timezone") or "UTC")
    moment = (NOW - dt.timedelta(days=45)).astimezone(tz).replace(hour=10, minute=0, second=0)
    history = []
    for _ in range(rng.randint(4, 24)):
        moment += dt.timedelta(hours=rng.choice((2, 5, 22, 24, 26, 48, 120, 144, 150, 168, 170)))
        if moment.hour < 9 or moment.hour > 19:
            moment = moment.replace(hour=rng.choice((9, 12, 17)))
        if moment >= NOW:
            break
        call = dict(phone)
        call["at"] = moment.isoformat()
        call["outcome"] = rng.choice(("no_answer", "conversation", "busy", "no_answer"))
        history.append(call)
    record["history"] = history
    return record


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_dense_histories_at_window_edges_agree(profile: str, tmp_path: Path) -> None:
    """Calls at uneven gaps around every frequency window's and cooldown's edge, on
    accounts the screen takes: the same violations (a window off by one day fails here)."""
    rng = random.Random(profile)
    source = _planted(tmp_path, profile, seed=41, rate="0%", n=150)
    records = [_dense(json.loads(line), rng) for line in source.read_text().splitlines()]
    path = tmp_path / "dense.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records if r is not None))
    ref, typed = _agree(tmp_path, PROFILES[profile].policy, path)
    assert ref.violations > 5
    assert typed.stats["accounts_cleared"] > 2  # (IE's limits are tight: most of these books break them)


def test_typed_without_the_extra_is_a_one_line_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from escalation import _extras
    from escalation.errors import MissingExtraError

    monkeypatch.setattr(_extras, "missing", lambda extra: ["pyarrow"])
    with pytest.raises(MissingExtraError, match=r"pip install 'escalation\[portfolio\]'"):
        audit_contacts(
            CN_POLICY,
            ROOT / "examples" / "portfolio-cn.jsonl",
            start=EVER,
            end=END,
            at=NOW,
            evaluator="typed",
        )


def test_auto_takes_the_typed_path_for_a_typed_folder_only(tmp_path: Path) -> None:
    """``evaluator="auto"`` (the default) screens a typed folder over its
    columns (the typed path's counters are filled) and JSON lines with the fast
    screen (they are not), with the same findings either way."""
    from escalation.portfolio.arrow import convert

    path = _planted(tmp_path, "cn-card", 3, "2%", 300)
    typed = tmp_path / "typed-folder"
    convert(path, typed)
    by_folder = audit_contacts(CN_POLICY, typed, start=EVER, end=END, at=NOW, out=tmp_path / "a")
    by_lines = audit_contacts(CN_POLICY, path, start=EVER, end=END, at=NOW, out=tmp_path / "b")
    assert by_folder.stats.get("accounts_cleared", 0) > 0
    assert "accounts_cleared" not in by_lines.stats
    assert _files(tmp_path / "a")["violations"] == _files(tmp_path / "b")["violations"]
    assert by_folder.by_breach == by_lines.by_breach
