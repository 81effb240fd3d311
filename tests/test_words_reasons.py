"""The phrasebook renderer (``escalation.reasons.render``: words worked out once
per policy and locale) writes exactly the reference ``Renderer``'s sentence:
on every shipped suite case and on generated accounts for every shipped
policy, in both locales, labelled and unlabelled, and from many threads."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Engine, RecordError, _ladder
from escalation._facts import Situation
from escalation._language import LOCALES, Locale
from escalation.policy import Policy
from escalation.policy._yaml import load_yaml
from escalation.reasons import render
from escalation.reasons._book import _atoms, book_for
from escalation.reasons._conditions import _facts_in, phrase
from escalation.reasons._render import Renderer
from escalation.reasons.parts import Parts

from .conftest import CN_POLICY, NOW, ROOT, SHIPPED, SHIPPED_SUITES
from .strategies import cases

EXAMPLES_PER_POLICY = 250
Rendered = tuple[str, str, str]  # (kind of parts, fast, reference)


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Rendered]]:
    """Every reason the engine renders, beside the reference renderer's sentence."""
    seen: list[Rendered] = []

    def both(parts: Parts, policy: Policy, sit: Situation, locale: Locale) -> str:
        fast = render(parts, policy, sit, locale)
        seen.append((type(parts).__name__, fast, Renderer(policy, sit, locale).render(parts)))
        return fast

    monkeypatch.setattr(_ladder, "render", both)
    yield seen


def _differing(seen: list[Rendered]) -> list[Rendered]:
    return [entry for entry in seen if entry[1] != entry[2]]


def _bare(tmp_path: Path) -> Path:
    """The CN policy without any label: every word falls back to ids and reasons."""
    text = CN_POLICY.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.strip().startswith(("label:", "labels:"))]
    path = tmp_path / "bare.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class TestSameSentences:
    """The renderer `decide` uses agrees with the reference, sentence for sentence."""

    @pytest.mark.parametrize("locale", LOCALES)
    def test_every_suite_case(self, rendered: list[Rendered], locale: Locale) -> None:
        """Every case of every shipped suite renders the reference's reason."""
        engines: dict[Path, Engine] = {}
        for suite in SHIPPED_SUITES:
            data = load_yaml(suite.read_bytes(), str(suite)).data
            path = suite.parent / (data.get("policy") or suite.name.replace("_test.yaml", ".yaml"))
            engine = engines.setdefault(path, Engine.from_file(path, locale=locale))
            for case in data["cases"]:
                record = {**data.get("defaults", {}), **case["account"]}
                try:
                    engine.decide(record, now=dt.datetime.fromisoformat(case["now"]))
                except RecordError:
                    continue
        assert len(rendered) > 100
        assert [] == _differing(rendered)

    @pytest.mark.parametrize("locale", LOCALES)
    @pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
    def test_generated_accounts(self, rendered: list[Rendered], path: Path, locale: Locale) -> None:
        """Generated accounts (thresholds ±1, histories, flags) render the reference's reason."""
        engine = Engine.from_file(path, locale=locale)

        @given(cases(engine.policy))
        @settings(
            max_examples=EXAMPLES_PER_POLICY,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        def check(case: tuple[dict[str, Any], dt.datetime]) -> None:
            record, now = case
            with contextlib.suppress(RecordError):
                engine.decide(record, now=now, trace=False)

        check()
        kinds = Counter(kind for kind, _fast, _ref in rendered)
        # the comparison proves little unless acting, waiting and nothing-to-do are all reached
        assert {"ActParts", "NoneParts", "WaitParts"} <= set(kinds), kinds
        assert [] == _differing(rendered)

    @pytest.mark.parametrize("locale", LOCALES)
    def test_unlabelled_policy(self, rendered: list[Rendered], tmp_path: Path, locale: Locale) -> None:
        """Without labels (ids and guard reasons as words) the sentences still agree."""
        engine = Engine.from_file(_bare(tmp_path), locale=locale)
        lines = (ROOT / "examples" / "portfolio-cn.jsonl").read_text(encoding="utf-8").splitlines()
        for line in lines[:400]:
            engine.decide(json.loads(line), now=NOW, trace=False)
        assert len(rendered) == 400
        assert [] == _differing(rendered)


class TestBooks:
    """A phrasebook per policy and locale, built once and shared safely."""

    def test_one_book_per_policy_and_locale(self) -> None:
        """The same policy and locale find the same book; another locale or policy, another."""
        policy = Engine.from_file(CN_POLICY).policy
        other = Engine.from_file(CN_POLICY).policy
        assert book_for(policy, "en") is book_for(policy, "en")
        assert book_for(policy, "en") is not book_for(policy, "zh-CN")
        assert book_for(policy, "en") is not book_for(other, "en")
        assert "zh-CN" == book_for(policy, "zh-CN").locale

    def test_threads_render_the_same_sentences(self, rendered: list[Rendered]) -> None:
        """Eight threads deciding at once on a fresh policy (its book built under
        contention) write the reasons one thread writes."""
        lines = (ROOT / "examples" / "portfolio-cn.jsonl").read_text(encoding="utf-8").splitlines()[:200]
        records = [json.loads(line) for line in lines]

        def reasons(engine: Engine) -> list[str]:
            return [engine.decide(r, now=NOW, trace=False).reason for r in records]

        expected = reasons(Engine.from_file(CN_POLICY, locale="zh-CN"))
        engine = Engine.from_file(CN_POLICY, locale="zh-CN")
        results: list[list[str]] = []
        start = threading.Barrier(8)

        def run(work: Callable[[Engine], list[str]]) -> None:
            start.wait()
            results.append(work(engine))

        threads = [threading.Thread(target=run, args=(reasons,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [expected] * 8 == results
        assert [] == _differing(rendered)


FIGURES = st.one_of(
    st.integers(-(10**20), 10**20),  # either side of the plain-int shortcut (|n| < 10**18)
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9, places=3),
    st.booleans(),
    st.sampled_from(["credit_card", "retail", "a_b.c"]),
)


class TestSaid:
    """Each atom of each tier's condition, said from the book, is the reference ``phrase``."""

    @pytest.mark.parametrize("locale", LOCALES)
    @pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
    def test_each_atom_with_any_figure(self, path: Path, locale: Locale) -> None:
        """Whatever the figures (ints large and small, decimals, yes/no, words,
        unknown) and the currency, the book says what ``phrase`` says."""
        policy = Engine.from_file(path).policy
        book = book_for(policy, locale)
        found = [atom for words in book.tiers.values() for atom in _atoms(words.walk)]
        assert found

        @given(st.data(), st.sampled_from(["CNY", "USD", "GBP", "JPY", "KWD"]))
        @settings(max_examples=200, deadline=None, derandomize=True)
        def check(data: st.DataObject, currency: str) -> None:
            for atom in found:
                facts = sorted(_facts_in(atom.node))
                values = {fact: data.draw(FIGURES) for fact in facts if data.draw(st.booleans())}
                expected = phrase(atom, values, currency, locale, book.label)
                assert expected == book.said(atom).now(values, currency)

        check()
