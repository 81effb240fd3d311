"""Changed rows' reasons when the two policies share guards, and when they
differ in one guard parameter alone: the explainer's output rows (record
validated once, facts derived once) equal ``decision_row(Engine.decide(...))``
for each policy, on generated accounts of every profile.

A policy pair of a dry-run usually shares every guard (it differs in tier
conditions); anything the two evaluations share must hold for equal guards
only. The pair differing in one guard parameter must decide some accounts
differently, so a verdict taken from the other policy shows here."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from escalation import Engine
from escalation.backends.columnar._explain import Explainer
from escalation.policy import Policy, load_policy
from escalation.portfolio.generate import PROFILES, generate

from ._explainer_checks import explained_rows, reference_rows

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")


def _later(text: str) -> str:
    """Every ``days_overdue >= N`` one day later: the tier conditions alone differ."""
    return re.sub(r"days_overdue >= (\d+)", lambda m: f"days_overdue >= {int(m[1]) + 1}", text)


#: per profile, one of the policy's own guards and one new parameter value
#: (a rule pack's guards are not in the file): each changes some decisions
_CHANGED = {
    "cn-card": ("cn-placed-agency-collects", "when", "days_overdue >= 0"),
    "us-card": ("us-hardship-no-legal", "when", "days_overdue >= 0"),
    "uk-loan": ("uk-hardship-no-legal", "when", "days_overdue >= 0"),
    "ie-loan": ("ie-text-hours", "from", "12:00"),
}


def _one_guard_changed(text: str, profile: str) -> str:
    """The policy with one parameter of one guard changed (:data:`_CHANGED`)."""
    doc: Any = yaml.safe_load(text)
    guard_id, field, value = _CHANGED[profile]
    guard = next(g for g in doc["guards"] if g["id"] == guard_id)
    assert guard[field] != value
    guard[field] = value
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _decided(row: dict[str, Any]) -> dict[str, Any]:
    """An output row without its policy's fingerprint (which always differs)."""
    return {k: v for k, v in row.items() if k != "policy_fingerprint"}


def _load(tmp_path: Path, name: str, text: str) -> Policy:
    path = tmp_path / name
    path.write_text(text)
    return load_policy(path)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_pairs_sharing_every_guard_equal_decide(profile: str, tmp_path: Path) -> None:
    """Tier thresholds differ, every guard and hold is the same: each output
    row equals the reference engine's, in both orders."""
    text = (ROOT / PROFILES[profile].policy).read_text()
    base, later = _load(tmp_path, "base.yaml", text), _load(tmp_path, "later.yaml", _later(text))
    records = list(generate(300, 21, profile, NOW))
    for pair in ([later, base], [base, later]):
        engines = [Engine(p) for p in pair]
        explainer = Explainer(engines, NOW)
        assert explainer.facts_of == [0, 0]
        for record in records:
            assert explained_rows(explainer, record) == reference_rows(engines, record)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_pairs_differing_in_one_guard_parameter_equal_decide(profile: str, tmp_path: Path) -> None:
    """One guard parameter differs (same guard id, kind, citation): each
    output row equals the reference engine's, and the two policies decide
    some accounts differently because of it."""
    text = (ROOT / PROFILES[profile].policy).read_text()
    shifted_text = _one_guard_changed(text, profile)
    base = _load(tmp_path, "base.yaml", text)
    shifted = _load(tmp_path, "shifted.yaml", shifted_text)
    later = _load(tmp_path, "later.yaml", _later(shifted_text))
    assert [g.model.id for g in base.guards] == [g.model.id for g in shifted.guards]
    records = list(generate(300, 22, profile, NOW))
    for pair in ([base, shifted], [shifted, base], [later, base]):
        engines = [Engine(p) for p in pair]
        explainer = Explainer(engines, NOW)
        assert explainer.facts_of == [0, 0]  # the facts are shared: the guards are not
        differ = 0
        for record in records:
            want = reference_rows(engines, record)
            assert explained_rows(explainer, record) == want
            differ += not isinstance(want, str) and _decided(want[0]) != _decided(want[1])
        assert differ > 0, f"{_CHANGED[profile]}: no account is decided differently"
