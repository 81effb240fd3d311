"""Reasons a person can read aloud (issue 11): the issue's example sentences,
every reason of every shipped suite in both locales, the bundled sample, the
formatting checked against Babel, labels, and the strategist's workflow
(``pack:`` includes, candidates outside the repository, error hints)."""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine, PolicyError, UsageError, load_policy
from escalation.policy._yaml import load_yaml
from escalation.reasons import _format as fmt
from escalation.reasons._labels import clip

from .conftest import CN_POLICY, ROOT, SHIPPED_SUITES

NOW = dt.datetime.fromisoformat("2026-11-23T10:00:00+08:00")
FIXTURES = Path(__file__).parent / "fixtures" / "reasons"
LOCALES = ("en", "zh-CN")

# What a reason must never contain: an expression or an internal id.
IDENTIFIER = re.compile(r"[A-Za-z0-9]_[A-Za-z0-9]")
OPERATOR = re.compile(r">=|<=|==|!=|\s[<>]\s|`")
N_OF_M = re.compile(r"(\d+) of (?:at most )?(\d+)")


def problems(reason: str) -> list[str]:
    """Why ``reason`` is not a sentence a collector can read aloud."""
    found = []
    if IDENTIFIER.search(reason):
        found.append("an internal id")
    if OPERATOR.search(reason):
        found.append("an expression operator or a backtick")
    for n, m in N_OF_M.findall(reason):
        if int(n) > int(m):
            found.append(f"{n} of {m}")
    if not re.search(r"\d", reason):
        found.append("no figure")
    return found


def _record(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


class TestIssueExamples:
    """The three sentences of issue 11 come out of the bundled CN policy."""

    def test_call_in_english(self) -> None:
        """An act reason: figures, thresholds, the dates of earlier steps, the count in words."""
        decision = Engine.from_file(CN_POLICY).decide(_record("issue11-call.json"), now=NOW)
        assert (
            "Call the customer: 13 days overdue (calls from day 8), CNY 2,450.00 owed; "
            "2 reminder SMS sent (last on 22 Nov); this is call 3 of at most 10."
        ) == decision.reason

    def test_call_in_chinese(self) -> None:
        """The same decision read in Chinese."""
        decision = Engine.from_file(CN_POLICY, locale="zh-CN").decide(_record("issue11-call.json"), now=NOW)
        assert (
            "致电客户：逾期13天（第8天起可致电），欠款 ¥2,450.00；"
            "已发送提醒短信2条（最近一次11月22日）；本次为第3次致电（最多10次）。"
        ) == decision.reason

    def test_one_day_overdue_is_singular(self) -> None:
        """On the first day of arrears the reminder reason says ``1 day``, not ``1 days``."""
        first_day = {"days_overdue": 1, "overdue_since": "2026-11-22", "history": []}
        record = {**_record("issue11-call.json"), **first_day}
        decision = Engine.from_file(CN_POLICY).decide(record, now=NOW)
        assert decision.action == "sms_reminder"
        assert "1 day overdue (reminder SMS from day 1)" in decision.reason, decision.reason

    def test_nothing_to_do_names_what_is_missing(self) -> None:
        """A none reason names the missing threshold and the returned letter, with its date."""
        decision = Engine.from_file(CN_POLICY).decide(_record("issue11-returned-letter.json"), now=NOW)
        assert "none" == decision.status
        assert (
            "Nothing to do yet: all 10 calls made; no demand letter tries left (4 made); "
            "the lawyer's letter needs 61 days overdue (now 45) and a delivered demand letter "
            "(the one sent on 2 Nov was returned undeliverable)."
        ) == decision.reason

    def test_nothing_to_do_in_chinese(self) -> None:
        """The same in Chinese."""
        engine = Engine.from_file(CN_POLICY)
        decision = engine.decide(_record("issue11-returned-letter.json"), now=NOW, locale="zh-CN")
        assert (
            "暂无可执行的行动：已致电10次（已达上限）；催收函已尝试4次，无剩余次数；"
            "律师函需逾期61天（目前45）且一封已送达的催收函（11月2日寄出的一封被退回）。"
        ) == decision.reason

    def test_the_locale_changes_only_the_reason(self) -> None:
        """Decisions in en and zh-CN differ in `reason` alone (same id, trace, blocked guards)."""
        engine = Engine.from_file(CN_POLICY)
        en = engine.decide(_record("issue11-call.json"), now=NOW).model_dump(mode="json")
        zh = engine.decide(_record("issue11-call.json"), now=NOW, locale="zh-CN").model_dump(mode="json")
        assert {k: v for k, v in en.items() if k != "reason"} == {
            k: v for k, v in zh.items() if k != "reason"
        }

    def test_unknown_locale_is_a_usage_error(self) -> None:
        """A locale reasons cannot be written in is refused, naming the choices."""
        with pytest.raises(UsageError, match="zh-CN"):
            Engine.from_file(CN_POLICY, locale="fr")  # type: ignore[arg-type]


def _suite_cases() -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    out = []
    for suite in SHIPPED_SUITES:
        data = load_yaml(suite.read_bytes(), str(suite)).data
        for case in data["cases"]:
            out.append((suite, data, case))
    return out


CASES = _suite_cases()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_suite_reason_reads_aloud(locale: str) -> None:
    """Every reason of every case of every shipped suite, in both locales: no
    backtick, no `_` id, no operator, no "N of M" with N > M, and a figure."""
    engines: dict[Path, Engine] = {}
    bad = []
    for suite, data, case in CASES:
        policy = suite.parent / (data.get("policy") or suite.name.replace("_test.yaml", ".yaml"))
        engine = engines.setdefault(policy, Engine.from_file(policy, locale=locale))  # type: ignore[arg-type]
        try:
            decision = engine.decide({**data.get("defaults", {}), **case["account"]}, now=_at(case["now"]))
        except Exception:  # a record-error case: no reason to read
            continue
        if found := problems(decision.reason):
            bad.append((case["name"], decision.reason, found))
    assert [] == bad


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize("locale", LOCALES)
def test_sample_reasons_are_short_and_clean(locale: str) -> None:
    """On the bundled 1,000-account sample the median reason is under 160
    characters and no reason carries an expression or an internal id."""
    engine = Engine.from_file(CN_POLICY, locale=locale)  # type: ignore[arg-type]
    lines = (ROOT / "examples" / "portfolio-cn.jsonl").read_text(encoding="utf-8").splitlines()
    reasons = [engine.decide(json.loads(line), now=NOW, trace=False).reason for line in lines]
    assert 1000 == len(reasons)
    assert statistics.median(len(r) for r in reasons) < 160
    assert [] == [(r, p) for r in reasons if (p := problems(r))]


class TestFormatting:
    """Numbers, money and dates as CLDR (Babel) writes them for en and zh-CN."""

    babel = pytest.importorskip("babel.numbers")

    @pytest.mark.parametrize("amount", ["0", "2450", "1234567.891", "0.5"])
    def test_money_matches_babel(self, amount: str) -> None:
        """en: code and grouped number; zh-CN: CLDR's symbol and pattern."""
        from babel.numbers import format_currency, format_decimal

        value = Decimal(amount)
        assert format_currency(value, "CNY", locale="zh_CN") == fmt.money(value, "CNY", "zh-CN")
        assert format_currency(value, "USD", locale="zh_CN") == fmt.money(value, "USD", "zh-CN")
        number = format_decimal(value, format="#,##0.00", locale="en")
        assert f"CNY {number}" == fmt.money(value, "CNY", "en")
        assert format_currency(value, "JPY", locale="zh_CN") == fmt.money(value, "JPY", "zh-CN")

    @pytest.mark.parametrize("day", [dt.date(2026, 11, 2), dt.date(2026, 1, 22), dt.date(2025, 12, 31)])
    def test_dates_match_babel(self, day: dt.date) -> None:
        """`22 Nov` / `11月22日`, with the year when it is another year's."""
        from babel.dates import format_date

        today = dt.date(2026, 11, 23)
        same = day.year == today.year
        assert format_date(day, "d MMM" if same else "d MMM y", locale="en") == fmt.date(day, "en", today)
        assert format_date(day, "M月d日" if same else "y年M月d日", locale="zh_CN") == fmt.date(
            day, "zh-CN", today
        )


class TestLabels:
    """Labels are presentation: they name things in reasons, not in fingerprints."""

    def test_labels_do_not_change_the_fingerprint(self, tmp_path: Path) -> None:
        """Removing every label (or translating it) keeps the policy's fingerprint."""
        text = CN_POLICY.read_text(encoding="utf-8")
        bare = "\n".join(
            line for line in text.splitlines() if not line.strip().startswith(("label:", "labels:"))
        )
        (tmp_path / "bare.yaml").write_text(bare, encoding="utf-8")
        assert load_policy(CN_POLICY).fingerprint == load_policy(tmp_path / "bare.yaml").fingerprint

    def test_unlabelled_tiers_and_guards_still_read(self, tmp_path: Path) -> None:
        """Without labels a tier reads as its id in words and a guard as its reason's first clause."""
        text = CN_POLICY.read_text(encoding="utf-8")
        bare = "\n".join(
            line for line in text.splitlines() if not line.strip().startswith(("label:", "labels:"))
        )
        (tmp_path / "bare.yaml").write_text(bare, encoding="utf-8")
        lines = (ROOT / "examples" / "portfolio-cn.jsonl").read_text(encoding="utf-8").splitlines()[:300]
        engine = Engine.from_file(tmp_path / "bare.yaml")
        for line in lines:
            reason = engine.decide(json.loads(line), now=NOW, trace=False).reason
            assert [] == problems(reason), reason

    def test_clip_keeps_the_first_clause(self) -> None:
        """A guard's long reason is cut at its first clause, identifiers as words."""
        assert "the notice of negative info notice sent at" == clip(
            "the notice of `negative_info_notice_sent_at`; supplied after"
        )


class TestStrategistWorkflow:
    """A candidate policy works from any folder; mistakes get hints."""

    def test_pack_include_works_from_any_folder(self, tmp_path: Path) -> None:
        """A copy of a shipped policy outside the repository loads (`include: [pack:…]`)."""
        copy = tmp_path / "elsewhere" / "candidate.yaml"
        copy.parent.mkdir()
        copy.write_text(CN_POLICY.read_text(encoding="utf-8"), encoding="utf-8")
        assert load_policy(CN_POLICY).fingerprint == load_policy(copy).fingerprint

    def test_unknown_pack_gets_a_hint(self, tmp_path: Path) -> None:
        """A misspelt pack name is located and the nearest shipped pack suggested."""
        text = CN_POLICY.read_text(encoding="utf-8").replace("pack:cn-collections", "pack:cn-colections")
        (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError, match="did you mean `cn-collections`"):
            load_policy(tmp_path / "p.yaml")

    def test_relative_includes_still_work(self, tmp_path: Path) -> None:
        """`include: [../rules/…]` resolves beside the file, as before."""
        (tmp_path / "policies").mkdir()
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "cn.yaml").write_text(
            (ROOT / "rules" / "cn-collections.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
        text = CN_POLICY.read_text(encoding="utf-8").replace("pack:cn-collections", "../rules/cn.yaml")
        (tmp_path / "policies" / "p.yaml").write_text(text, encoding="utf-8")
        assert load_policy(CN_POLICY).fingerprint == load_policy(tmp_path / "policies" / "p.yaml").fingerprint

    def test_thousands_separator_gets_a_hint(self, tmp_path: Path) -> None:
        """`balance >= 3,000` is an error that suggests `3000`."""
        text = CN_POLICY.read_text(encoding="utf-8").replace("balance >= 3000", "balance >= 3,000")
        (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError, match="did you mean `3000`"):
            load_policy(tmp_path / "p.yaml")

    def test_schema_error_does_not_hide_expression_errors(self, tmp_path: Path) -> None:
        """An unknown key and a misspelt fact in the same file are both reported."""
        text = CN_POLICY.read_text(encoding="utf-8").replace("days_overdue >= 8", "days_overdu >= 8")
        text = text.replace("    tags: [reminder]\n", "    tags: [reminder]\n    colour: red\n", 1)
        (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError) as info:
            load_policy(tmp_path / "p.yaml")
        assert {"unknown-key", "unknown-fact"} <= {issue.code for issue in info.value.issues}

    def test_a_candidate_left_in_policies_needs_no_suite(self) -> None:
        """The suite requirement is scoped to the shipped policies, listed once."""
        from escalation._bundled import SHIPPED_POLICIES

        shipped = {p.name.replace("_test.yaml", "") for p in SHIPPED_SUITES}
        assert set(SHIPPED_POLICIES) == shipped
