"""The strict YAML loader: no surprises from YAML 1.1."""

from __future__ import annotations

import pytest

from escalation.policy._yaml import MAX_YAML_BYTES, YamlLoadError, load_yaml


class TestScalars:
    def test_norway_problem(self) -> None:
        """`no`, `off`, `on`, `yes` stay strings; only true/false are booleans."""
        data = load_yaml("a: no\nb: off\nc: on\nd: yes\ne: true\nf: false\n").data
        assert {"a": "no", "b": "off", "c": "on", "d": "yes", "e": True, "f": False} == data

    def test_clock_times_stay_strings(self) -> None:
        """`08:00` is not the sexagesimal integer 480."""
        assert {"from": "08:00", "to": "21:30"} == load_yaml("from: 08:00\nto: 21:30\n").data

    def test_leading_zero_is_decimal(self) -> None:
        """`010` is ten, not octal eight."""
        assert {"n": 10} == load_yaml("n: 010\n").data

    def test_dates_stay_strings(self) -> None:
        """Dates are left to the schema (no implicit timestamp type)."""
        assert {"d": "2026-11-23"} == load_yaml("d: 2026-11-23\n").data

    def test_null_and_float(self) -> None:
        """`~`/`null` are None; decimals are floats."""
        assert {"a": None, "b": None, "c": 1.5} == load_yaml("a: ~\nb: null\nc: 1.5\n").data


class TestRefusals:
    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("a: 1\na: 2\n", "duplicate-key"),
            ("a: &x 1\nb: *x\n", "yaml-anchor"),
            ("a: !!python/object:os.system x\n", "yaml-tag"),
            ("<<: {a: 1}\n", "yaml-merge"),
            ("? [a, b]\n: 1\n", "yaml-key"),
            ("a: [1\n", "yaml-syntax"),
        ],
    )
    def test_refused_with_code(self, text: str, code: str) -> None:
        """Each unsafe or ambiguous construct is refused with its code."""
        with pytest.raises(YamlLoadError) as info:
            load_yaml(text, "p.yaml")
        assert code == info.value.issue.code
        assert "p.yaml" == info.value.issue.path

    def test_size_limit(self) -> None:
        """Input over the limit is refused before parsing."""
        with pytest.raises(YamlLoadError) as info:
            load_yaml("a: " + "x" * MAX_YAML_BYTES)
        assert "file-too-large" == info.value.issue.code

    def test_deep_nesting(self) -> None:
        """Absurd nesting is refused."""
        with pytest.raises(YamlLoadError) as info:
            load_yaml("a: " + "[" * 40 + "]" * 40)
        assert "yaml-too-deep" == info.value.issue.code


def test_positions_are_recorded() -> None:
    """Values and keys carry 1-based line/column positions."""
    located = load_yaml("top:\n  inner: [1, 2]\n")
    assert (2, 3) == located.keys[("top", "inner")]
    assert (2, 14) == located.values[("top", "inner", 1)]
