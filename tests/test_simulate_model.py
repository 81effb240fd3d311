"""The response model, experiment files, the `escalation simulate` command and
the guide's challenger policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from escalation.cli import main
from escalation.errors import PolicyError
from escalation.policy import load_policy
from escalation.simulate import ResponseModelError, bundled_model, load_response_model, response_model_schema
from escalation.simulate.experiment import load_experiment, parse_share
from escalation.simulate.model import BUNDLED_MODELS

ROOT = Path(__file__).resolve().parent.parent
CN = ROOT / "policies" / "consumer-credit-cn.yaml"
LAWYER45 = ROOT / "examples" / "cn-lawyer-letter-45.yaml"
AT = "2026-11-23T10:00:00+08:00"

GOOD = """\
responses: 1
model:
  id: tiny
  currency: CNY
  write_off: {value: 180, basis: assumption}
  dispute_days: {value: 30, basis: assumption}
  charges: {daily_rate: "0.0005", basis: assumption}
amounts:
  shares: [{share: "1", p: 1.0}]
  basis: assumption
rules:
  - id: any
    cost: {value: "1.00", basis: assumption}
    outcomes: {p: {sent: 1.0}, basis: assumption}
"""


class TestResponseModel:
    @pytest.mark.parametrize("name", sorted(BUNDLED_MODELS))
    def test_bundled_models_load_with_a_basis_for_every_figure(self, name: str) -> None:
        """Each bundled model validates, and every rule's figures carry a basis."""
        model = load_response_model(bundled_model(name))
        for rule in model.rules:
            for part in (rule.cost, rule.outcomes, rule.promise, rule.payment, rule.dispute):
                assert part is None or len(part.basis) >= 3
        assert all(c.basis for c in model.self_cure)

    @pytest.mark.parametrize("name", sorted(BUNDLED_MODELS))
    def test_bundled_models_answer_every_tier_of_their_policy(self, name: str) -> None:
        """The bundled model of a profile has a rule for every tier and channel of that profile's policy."""
        from escalation.simulate.run import _check_coverage

        policy = {
            "cn-card": "consumer-credit-cn",
            "us-card": "us-card-collector",
            "uk-loan": "uk-consumer-loan",
        }
        _check_coverage(
            load_response_model(bundled_model(name)), load_policy(ROOT / "policies" / f"{policy[name]}.yaml")
        )

    def test_a_valid_minimal_model_loads(self, tmp_path: Path) -> None:
        """A catch-all rule and the book parameters are enough."""
        path = tmp_path / "m.yaml"
        path.write_text(GOOD)
        assert "tiny" == load_response_model(path).model.id

    @pytest.mark.parametrize(
        ("edit", "code", "line"),
        [
            (("outcomes: {p: {sent: 1.0}", "outcomes: {p: {sent: 0.9}"), "invalid-value", 14),
            (("  id: tiny\n", "  id: tiny\n  colour: red\n"), "unknown-key", 4),
            (("  - id: any\n", "  - id: any\n    id: other\n"), "duplicate-key", 14),
            (('{value: "1.00", basis: assumption}', '{value: "1.00"}'), "missing-key", 14),
        ],
    )
    def test_bad_models_name_file_line_and_code(
        self, tmp_path: Path, edit: tuple[str, str], code: str, line: int
    ) -> None:
        """A bad model is refused with every issue located as path:line:col: code."""
        path = tmp_path / "m.yaml"
        path.write_text(GOOD.replace(*edit))
        with pytest.raises(ResponseModelError) as caught:
            load_response_model(path)
        assert isinstance(caught.value, PolicyError)
        issue = caught.value.issues[0]
        assert (str(path), code) == (issue.path, issue.code)
        assert abs(issue.line - line) <= 1, str(issue)

    def test_anchors_are_refused(self, tmp_path: Path) -> None:
        """The strict loader applies: an anchor is refused with its location."""
        path = tmp_path / "m.yaml"
        path.write_text(GOOD.replace("dispute_days: {", "dispute_days: &d {"))
        with pytest.raises(ResponseModelError) as caught:
            load_response_model(path)
        assert 6 == caught.value.issues[0].line

    def test_schema_is_shipped_and_current(self) -> None:
        """escalation/schemas/response-model.schema.json is the schema the models generate."""
        shipped = json.loads((ROOT / "escalation" / "schemas" / "response-model.schema.json").read_text())
        assert response_model_schema() == shipped
        result = CliRunner().invoke(main, ["simulate", "schema"])
        assert 0 == result.exit_code and json.loads(result.output)["title"] == "escalation response model"


class TestExperiment:
    def test_experiment_file_names_both_policies_and_the_split(self, tmp_path: Path) -> None:
        """Paths are relative to the file; the share is a percentage."""
        path = tmp_path / "exp.yaml"
        path.write_text(
            f"experiment: 1\nid: l45\nsalt: l45-2026\nchampion: bundled:policies/consumer-credit-cn.yaml\n"
            f"challenger: {{policy: {LAWYER45}, share: 20%}}\n"
        )
        spec = load_experiment(path)
        champion, challenger = spec.resolve(path.parent)
        assert (CN.name, LAWYER45, 0.2) == (champion.name, challenger, spec.challenger.share)

    @pytest.mark.parametrize("text", ["0%", "100%", "20", "abc", "-5%"])
    def test_bad_shares_are_refused(self, text: str) -> None:
        """A share must be a percentage strictly between 0 and 100."""
        with pytest.raises(ValueError, match="share"):
            parse_share(text)


class TestCommand:
    def test_challenger_run_prints_totals_and_arms(self, tmp_path: Path) -> None:
        """--challenger P:20% simulates the champion and the challenger and reports both arms."""
        book = tmp_path / "b.jsonl"
        lines = (ROOT / "examples" / "portfolio-cn.jsonl").read_text().splitlines()[:40]
        book.write_text("\n".join(lines) + "\n")
        args = [
            "simulate",
            "-p",
            str(CN),
            "--challenger",
            f"{LAWYER45}:20%",
            "--portfolio",
            str(book),
            "--at",
            AT,
            "--days",
            "5",
            "-o",
            str(tmp_path / "out"),
        ]
        result = CliRunner().invoke(main, args)
        assert 0 == result.exit_code, result.output
        assert "simulated 40 accounts for 5 days" in result.output
        assert "arm challenger under candidate" in result.output
        assert (tmp_path / "out" / "report.html").is_file()

    def test_invalid_model_exits_3_with_located_issues(self, tmp_path: Path) -> None:
        """A broken response model exits 3 and prints path:line:col: code: message."""
        bad = tmp_path / "m.yaml"
        bad.write_text(GOOD.replace("sent: 1.0}", "sent: 0.5}"))
        result = CliRunner().invoke(
            main,
            [
                "simulate",
                "-p",
                str(CN),
                "--portfolio",
                str(ROOT / "examples" / "portfolio-cn.jsonl"),
                "--at",
                AT,
                "--days",
                "1",
                "--model",
                str(bad),
            ],
        )
        assert 3 == result.exit_code
        assert (
            f"{bad}:14:19: invalid-value: the outcome probabilities sum to 0.5, not 1" in result.output
            and "invalid-value" in result.output
        )

    def test_missing_arguments_exit_1(self) -> None:
        """Without a policy or a portfolio the command says what to give."""
        result = CliRunner().invoke(main, ["simulate", "--portfolio", "x.jsonl"])
        assert 1 == result.exit_code and "--policy" in result.output

    def test_uncovered_tier_is_a_usage_error(self, tmp_path: Path) -> None:
        """A model without a rule for some tier's channel is refused before anything runs."""
        model = tmp_path / "m.yaml"
        model.write_text(GOOD.replace("  - id: any\n", "  - id: any\n    when: {channel: sms}\n"))
        result = CliRunner().invoke(
            main,
            [
                "simulate",
                "-p",
                str(CN),
                "--portfolio",
                str(ROOT / "examples" / "portfolio-cn.jsonl"),
                "--at",
                AT,
                "--model",
                str(model),
            ],
        )
        assert 1 == result.exit_code and "phone_call/phone" in result.output


def test_guide_challenger_changes_only_the_lawyer_letter_threshold() -> None:
    """examples/cn-lawyer-letter-45.yaml is the bundled CN policy with day 61 → 45 (and its own version)."""
    ours = LAWYER45.read_text().splitlines()
    theirs = CN.read_text().splitlines()
    assert len(ours) == len(theirs) + 1
    changed = [
        (a, b)
        for a, b in zip(
            [x for x in theirs if not x.startswith("#")],
            [x for x in ours if not x.startswith("#")],
            strict=True,
        )
        if a != b
    ]
    assert [
        ('  version: "2026.11"', '  version: "2026.11-lawyer45"'),
        (
            "    when: days_overdue >= 61 and balance >= 3000",
            "    when: days_overdue >= 45 and balance >= 3000",
        ),
    ] == changed


class TestCalibrate:
    def test_fit_recovers_the_generator_rates(self, tmp_path: Path) -> None:
        """Fitting a generated book's histories recovers the generator's call and SMS outcome shares."""
        from escalation.portfolio.generate import generate, write_portfolio

        book = tmp_path / "book.jsonl"
        write_portfolio(generate(400, seed=4), book)
        out = tmp_path / "fitted.yaml"
        result = CliRunner().invoke(
            main, ["simulate", "calibrate", "-p", str(CN), "--portfolio", str(book), "-o", str(out)]
        )
        assert 0 == result.exit_code, result.output
        model = load_response_model(out)  # loads back with the strict loader
        rules = {r.id: r for r in model.rules}
        call = {k.value: v for k, v in rules["call"].outcomes.p.items()}
        # generate.py draws calls from 5 no_answer, 3 voicemail, 1 busy, 2 conversation, 1 promise_to_pay
        expected = {"no_answer": 5 / 12, "voicemail": 3 / 12, "busy": 1 / 12, "conversation": 3 / 12}
        assert expected.keys() == call.keys()
        assert all(abs(call[k] - v) < 0.03 for k, v in expected.items()), call
        assert rules["call"].promise is not None and abs(rules["call"].promise.p - 1 / 3) < 0.06
        sms = {k.value: v for k, v in rules["sms"].outcomes.p.items()}
        assert abs(sms["delivered"] - 0.9) < 0.03
        assert rules["call"].outcomes.basis.startswith("fitted from")
        assert rules["call"].cost == load_response_model(bundled_model("cn-card")).rules[2].cost

    def test_a_book_without_matching_history_is_refused(self, tmp_path: Path) -> None:
        """Nothing to fit is an error, not a copy of the base model."""
        book = tmp_path / "b.jsonl"
        book.write_text(
            '{"id": "A", "currency": "CNY", "amount_overdue": "5", "balance": "10", "days_overdue": 3}\n'
        )
        result = CliRunner().invoke(
            main,
            [
                "simulate",
                "calibrate",
                "-p",
                str(CN),
                "--portfolio",
                str(book),
                "-o",
                str(tmp_path / "m.yaml"),
            ],
        )
        assert 1 == result.exit_code and "nothing to fit" in result.output
