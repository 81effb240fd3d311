"""Rule packs are cited data: every guard in ``rules/*.yaml`` says where each
number comes from, how sure we are and with what authority; the shipped
policies that use them pass their suites through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from escalation.policy import PackDocument, load_policy
from escalation.policy._yaml import load_yaml

from .conftest import ROOT, SHIPPED, SHIPPED_SUITES

PACKS = sorted((ROOT / "rules").glob("*.yaml"))
POLICIES = SHIPPED
DOCS = ROOT / "docs" / "rules"
# A source tag as compliance.md uses them: primary, secondary, inference.
SOURCE_TAG = re.compile(r"\[(F|F2|I)\]")
# Keys that hold what a guard applies to or how it reads events, not a limit.
_NOT_PARAMETERS = {"id", "kind", "channels", "tags", "actions", "except_tags", "reason", "cite", "authority",
                   "description", "days", "holidays", "per", "days_in", "direction", "outcomes",
                   "label", "labels"}  # fmt: skip


def _guards(path: Path) -> list[dict[str, Any]]:
    data = load_yaml(path.read_bytes(), str(path)).data
    PackDocument.model_validate(data)  # the file is a valid pack
    guards: list[dict[str, Any]] = data.get("guards", [])
    return guards


def _numbers(value: Any) -> list[str]:
    """Every number a guard parameter carries: integers, durations (``14d``),
    clock times (``08:00``) and numeric literals inside conditions."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [str(value)]
    if isinstance(value, str):
        return re.findall(r"\d+(?:[.:]\d+)?", value)
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


ALL_GUARDS = [(path.name, guard) for path in PACKS for guard in _guards(path)]


def test_packs_exist() -> None:
    """The regimes ship as packs (EU CCD2 beside the four national ones)."""
    assert {"us-reg-f.yaml", "cn-collections.yaml", "uk-conc.yaml", "ie-ccma.yaml", "eu-ccd2.yaml"} <= {
        p.name for p in PACKS
    }


@pytest.mark.parametrize(("pack", "guard"), ALL_GUARDS, ids=[g["id"] for _, g in ALL_GUARDS])
class TestEveryGuard:
    """Each guard of each pack, walked one by one."""

    def test_has_cite_and_authority(self, pack: str, guard: dict[str, Any]) -> None:
        """A pack guard names its source and whether it is law, regulator, self-regulation or policy."""
        assert guard.get("cite", "").strip(), f"{pack}: {guard['id']} has no cite"
        assert guard.get("authority") in ("law", "regulator", "self-regulation", "policy")
        assert guard.get("reason", "").strip()

    def test_numbers_are_cited_with_certainty(self, pack: str, guard: dict[str, Any]) -> None:
        """A guard with a numeric parameter cites it with a [F]/[F2]/[I] tag."""
        numbers = [n for key, value in guard.items() if key not in _NOT_PARAMETERS for n in _numbers(value)]
        if numbers:
            assert SOURCE_TAG.search(guard.get("cite", "")), f"{guard['id']} carries {numbers} without a tag"

    def test_self_regulation_is_marked(self, pack: str, guard: dict[str, Any]) -> None:
        """Self-regulatory limits say so in their citation; policy limits say they are not law."""
        cite = guard["cite"].lower()
        if guard["authority"] == "self-regulation":
            assert "self-regulatory" in cite
        if guard["authority"] == "policy":
            assert "policy" in cite or "engineering choice" in cite

    def test_is_documented(self, pack: str, guard: dict[str, Any]) -> None:
        """Every guard id appears in the regime's page under docs/rules/."""
        text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
        assert f"`{guard['id']}`" in text


@pytest.mark.parametrize("pack", PACKS, ids=[p.name for p in PACKS])
def test_every_pack_is_used_by_a_shipped_policy(pack: Path) -> None:
    """Each pack is included by at least one policy under policies/."""
    used = {Path(p).resolve() for policy in POLICIES for p in _includes(policy)}
    assert pack.resolve() in used


def _includes(policy: Path) -> list[Path]:
    data = load_yaml(policy.read_bytes(), str(policy)).data
    return [
        ROOT / "rules" / f"{name[5:]}.yaml" if name.startswith("pack:") else policy.parent / name
        for name in data["policy"].get("include", [])
    ]


@pytest.mark.parametrize("policy", POLICIES, ids=[p.name for p in POLICIES])
def test_shipped_policy_loads_and_has_a_suite(policy: Path) -> None:
    """Every shipped policy loads and has a ``_test.yaml`` suite beside it."""
    load_policy(policy)
    assert policy.with_name(policy.stem + "_test.yaml").exists()


def test_policy_suites_pass_via_cli() -> None:
    """``escalation test policies/`` passes: every case, tier, hold, guard and status covered."""
    result = subprocess.run(
        [sys.executable, "-m", "escalation.cli", "test", *map(str, SHIPPED_SUITES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "0 failed" in result.stdout


def test_docs_have_index_and_disclaimer() -> None:
    """docs/rules has an index and each regime page says it is not legal advice."""
    assert (DOCS / "index.md").exists()
    for name in ("us-reg-f.md", "cn.md", "uk-conc.md", "ie.md", "index.md"):
        assert "not legal advice" in (DOCS / name).read_text(encoding="utf-8").lower()


class TestThirdPartyNoDemand:
    """cn-third-party-no-demand refuses a tier tagged `third_party` and `demand` (issue 19, item 6)."""

    POLICY = """
escalation: 1
policy:
  id: cn-third-party-misuse
  version: "1"
  currency: CNY
  timezone: Asia/Shanghai
  include: [{pack}]
tiers:
  - id: contact_person_message
    channel: phone
    tags: [third_party]
    when: days_overdue >= 1
  - id: contact_person_demand
    channel: phone
    tags: [third_party, demand]
    when: days_overdue >= 1
"""

    @pytest.mark.parametrize("backend", ["native", "rete"])
    def test_refused_on_both_evaluators(self, tmp_path: Path, backend: str) -> None:
        """The demand to a third party is blocked (no end); the bare message to the same person is not."""
        from escalation import Engine
        from escalation.backends.rete import rete_unavailable_reason

        if backend == "rete" and rete_unavailable_reason() is not None:
            pytest.skip("rete backend unavailable")
        path = tmp_path / "misuse.yaml"
        path.write_text(self.POLICY.format(pack=ROOT / "rules" / "cn-collections.yaml"), encoding="utf-8")
        engine = Engine.from_file(path, backend=backend)  # type: ignore[arg-type]
        import datetime as dt

        record = {
            "id": "TP-1",
            "currency": "CNY",
            "amount_overdue": "100.00",
            "balance": "100.00",
            "days_overdue": 40,
            "history": [
                {"at": f"2026-11-2{d}T10:00:00+08:00", "channel": "phone", "outcome": "no_answer"}
                for d in (0, 1, 2)
            ],
        }
        decision = engine.decide(record, now=dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00"))
        assert ("act", "contact_person_message") == (decision.status, decision.action)
        refused = [b for b in decision.blocked if b.action == "contact_person_demand"]
        assert ["cn-third-party-no-demand"] == [
            b.guard for b in refused if b.guard == "cn-third-party-no-demand"
        ]
        assert all(b.until is None for b in refused)
