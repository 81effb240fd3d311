"""Champion/challenger outside the simulator: the assignment rule, the engine
that serves an experiment (the arm on every decision), the journal round trip
and the CLI's `decide`/`explain --experiment`."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import escalation.simulate.experiment as simulate_experiment
from escalation import (
    Decision,
    Engine,
    ErrorRow,
    Experiment,
    ExperimentEngine,
    ExperimentError,
    JsonlJournal,
    ListSink,
    UsageError,
    arm_of,
    load_experiment,
)
from escalation.cli import main
from escalation.journal.audit import iter_records, replay, verify

from .conftest import CN_POLICY, NOW, ROOT
from .test_audit_helpers import TEST_KEY

EXPERIMENT = ROOT / "examples" / "experiment-lawyer-45.yaml"
CHALLENGER = ROOT / "examples" / "cn-lawyer-letter-45.yaml"
PORTFOLIO = ROOT / "examples" / "portfolio-cn.jsonl"
AT = NOW.isoformat()


def records(n: int | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in PORTFOLIO.read_text().splitlines() if line.strip()]
    return rows[:n] if n is not None else rows


@pytest.fixture(scope="module")
def engine() -> ExperimentEngine:
    return ExperimentEngine.from_file(EXPERIMENT)


def documented_rule(account_id: str, salt: str, share: float) -> bool:
    """The assignment as docs/experiments.md states it, written independently."""
    head = hashlib.sha256(f"{salt}:{account_id}".encode()).digest()[:8]
    return int.from_bytes(head, "big") / 2**64 < share


class TestAssignment:
    def test_the_rule_is_the_documented_one(self) -> None:
        """arm_of is SHA-256(salt:id), first 8 bytes big-endian, below share × 2**64."""
        ids = [f"ACC-{i:06d}" for i in range(2000)]
        assert [arm_of(i, "s-1", 0.3) for i in ids] == [documented_rule(i, "s-1", 0.3) for i in ids]

    @pytest.mark.parametrize("share", [0.05, 0.2, 0.5])
    def test_shares_are_within_tolerance(self, share: float) -> None:
        """Over 40,000 ids the challenger's share is within 4 standard errors of the set share."""
        n = 40_000
        hits = sum(arm_of(f"CN-{i:07d}", "lawyer-letter-45-2026-11", share) for i in range(n))
        tolerance = 4 * (share * (1 - share) / n) ** 0.5
        assert abs(hits / n - share) < tolerance

    def test_arms_are_stable_across_order_and_runs_and_move_with_the_salt(
        self, engine: ExperimentEngine
    ) -> None:
        """An account's arm depends on its id and the salt only: not on order, not on the engine
        object; a new salt draws a new split."""
        ids = [r["id"] for r in records()]
        first = {i: engine.arm(i) for i in ids}
        again = ExperimentEngine.from_file(EXPERIMENT)
        assert first == {i: again.arm(i) for i in reversed(ids)}
        resalted = engine.experiment.model_copy(update={"salt": "another-salt"})
        moved = sum(first[i] != resalted.arm(i) for i in ids)
        assert 0 < moved < len(ids)

    def test_the_simulator_uses_the_same_rule(self) -> None:
        """escalation.simulate.experiment re-exports the core names (one rule, one file format)."""
        assert simulate_experiment.arm_of is arm_of
        assert simulate_experiment.load_experiment is load_experiment
        assert simulate_experiment.Experiment is Experiment


class TestExperimentFile:
    def test_bad_file_reports_located_issues(self, tmp_path: Path) -> None:
        """An unknown key and a bad share are both reported, with their lines."""
        path = tmp_path / "e.yaml"
        path.write_text(
            "experiment: 1\nid: x1\nsalt: s\nchampion: a.yaml\n"
            "challenger: {policy: b.yaml, share: 120%}\nowner: me\n"
        )
        with pytest.raises(ExperimentError) as caught:
            load_experiment(path)
        codes = {(issue.code, issue.line) for issue in caught.value.issues}
        assert ("unknown-key", 6) in codes and ("invalid-value", 5) in codes

    def test_a_policy_is_not_an_experiment(self) -> None:
        with pytest.raises(ExperimentError) as caught:
            load_experiment(CN_POLICY)
        assert "not-an-experiment" == caught.value.issues[0].code

    def test_arms_must_share_a_currency(self) -> None:
        """A challenger in another currency could not decide the champion's accounts."""
        spec = load_experiment(EXPERIMENT)
        us = Engine.from_file(ROOT / "policies" / "us-card-collector.yaml").policy
        with pytest.raises(UsageError, match=r"currency|USD"):
            ExperimentEngine(spec, Engine.from_file(CN_POLICY).policy, us)


class TestDecisions:
    def test_each_decision_carries_its_arm_and_is_its_arms_policys_decision(
        self, engine: ExperimentEngine
    ) -> None:
        """For 1,000 accounts: the arm is arm_of's; without the label, the decision is byte for
        byte the decision of that arm's policy (the same id: the arm's fingerprint)."""
        champion = Engine.from_file(CN_POLICY)
        challenger = Engine.from_file(CHALLENGER)
        spec = engine.experiment
        arms = {"champion": 0, "challenger": 0}
        for record in records():
            decision = engine.decide(record, now=NOW)
            in_challenger = arm_of(record["id"], spec.salt, spec.challenger.share)
            assert decision.experiment is not None
            assert (spec.id, "challenger" if in_challenger else "champion") == (
                decision.experiment.id,
                decision.experiment.arm,
            )
            direct = (challenger if in_challenger else champion).decide(record, now=NOW)
            assert direct.to_json() == decision.model_copy(update={"experiment": None}).to_json()
            arms[decision.experiment.arm] += 1
        assert arms["challenger"] > 100 and arms["champion"] > 600  # both arms exercised

    def test_routing_reads_the_id_as_the_record_model_does(self, engine: ExperimentEngine) -> None:
        """Whitespace around an id is stripped by the record model: the arm is the stripped id's."""
        record = next(r for r in records() if engine.arm(r["id"]) == "challenger")
        padded = {**record, "id": f"  {record['id']}\t"}
        decision = engine.decide(padded, now=NOW)
        assert decision.account_id == record["id"]
        assert decision.experiment is not None and "challenger" == decision.experiment.arm
        assert engine.decide(record, now=NOW) == decision

    def test_the_challenger_changes_some_decisions(self, engine: ExperimentEngine) -> None:
        """The experiment is not an A/A test: some challenger accounts get another action."""
        changed = [
            r["id"]
            for r in records()
            if engine.arm(r["id"]) == "challenger"
            and engine.decide(r, now=NOW).action != engine.champion.decide(r, now=NOW).action
        ]
        assert changed

    def test_without_an_experiment_the_field_is_absent(self, example_account: dict[str, Any]) -> None:
        """A plain engine's decision has experiment None and no `experiment` key in its JSON."""
        decision = Engine.from_file(CN_POLICY).decide(example_account, now=NOW)
        assert decision.experiment is None
        assert "experiment" not in json.loads(decision.to_json())

    def test_the_label_round_trips_through_json(self, engine: ExperimentEngine) -> None:
        decision = engine.decide(records(1)[0], now=NOW)
        text = decision.to_json()
        assert json.loads(text)["experiment"] == {"id": "lawyer-letter-45", "arm": decision.experiment.arm}  # type: ignore[union-attr]
        assert Decision.model_validate_json(text) == decision

    def test_decide_many_keeps_bad_rows_as_error_rows(self, engine: ExperimentEngine) -> None:
        rows: list[Any] = [*records(5), {"id": "X-1", "currency": "CNY"}, *records(10)[5:]]
        out = list(engine.decide_many(rows, now=NOW, trace=False))
        assert 11 == len(out)
        assert isinstance(out[5], ErrorRow) and "X-1" == out[5].account_id and 6 == out[5].row
        assert all(isinstance(d, Decision) and d.experiment is not None for i, d in enumerate(out) if i != 5)

    def test_a_sink_receives_the_labelled_decision(self) -> None:
        sink = ListSink()
        engine = ExperimentEngine.from_file(EXPERIMENT, sink=sink)
        returned = [engine.decide(r, now=NOW) for r in records(20)]
        assert [e.decision for e in sink.entries] == returned

    def test_explain_names_the_experiment_and_arm(self, engine: ExperimentEngine) -> None:
        record = records(1)[0]
        text = engine.explain(record, now=NOW)
        assert f"lawyer-letter-45 (arm {engine.arm(record['id'])})" in text

    def test_it_pickles_without_a_sink_and_refuses_with_one(self, engine: ExperimentEngine) -> None:
        copy = pickle.loads(pickle.dumps(engine))
        for record in records(30):
            assert copy.decide(record, now=NOW) == engine.decide(record, now=NOW)
        with pytest.raises(UsageError, match="sink"):
            pickle.dumps(ExperimentEngine.from_file(EXPERIMENT, sink=ListSink()))


class TestJournal:
    @pytest.mark.parametrize("masked", [False, True])
    def test_journaled_experiment_decisions_verify_and_replay_clean(
        self, tmp_path: Path, masked: bool
    ) -> None:
        """The label is journaled with the decision, each arm's policy is stored, and replay
        (with the arm's policy, by fingerprint) reports no difference."""
        options = {"masking": TEST_KEY} if masked else {}
        journal = JsonlJournal(str(tmp_path / "j.jsonl"), **options)  # type: ignore[arg-type]
        engine = ExperimentEngine.from_file(EXPERIMENT, journal=journal)
        returned = [engine.decide(r, now=NOW) for r in records(80)]
        stored = [json.loads(r.decision) for r in iter_records(journal)]
        assert [d.experiment.arm for d in returned] == [s["experiment"]["arm"] for s in stored]  # type: ignore[union-attr]
        assert {"champion", "challenger"} == {s["experiment"]["arm"] for s in stored}
        assert {d.policy.fingerprint for d in returned} == {
            engine.champion.policy.fingerprint,
            engine.challenger.policy.fingerprint,
        }
        assert verify(journal).ok
        results = list(replay(journal))
        assert 80 == len(results) and all(r.same for r in results), [
            r.differences for r in results if not r.same
        ][:2]

    def test_a_relabelled_record_fails_verification(self, tmp_path: Path) -> None:
        """The arm is inside the chained record: moving a decision to the other arm is tampering."""
        path = tmp_path / "j.jsonl"
        engine = ExperimentEngine.from_file(EXPERIMENT, journal=JsonlJournal(str(path)))
        for record in records(5):
            engine.decide(record, now=NOW)
        text = path.read_text()
        assert '\\"arm\\":\\"champion\\"' in text
        path.write_text(text.replace('\\"arm\\":\\"champion\\"', '\\"arm\\":\\"challenger\\"', 1))
        assert not verify(JsonlJournal(str(path))).ok


class TestCommandLine:
    def test_decide_journal_verify_replay_show(self, tmp_path: Path) -> None:
        """`decide --experiment -j` journals labelled decisions; `audit verify`, `replay` pass and
        `audit show` names the arm."""
        accounts = tmp_path / "a.jsonl"
        accounts.write_text("".join(json.dumps(r) + "\n" for r in records(40)))
        journal = str(tmp_path / "j.jsonl")
        runner = CliRunner()
        args = ["decide", "--experiment", str(EXPERIMENT), "-a", str(accounts), "--at", AT, "--compact"]
        result = runner.invoke(main, [*args, "-j", journal])
        assert 0 == result.exit_code, result.output
        decisions = [json.loads(line) for line in result.output.splitlines()]
        expected = [ExperimentEngine.from_file(EXPERIMENT).arm(r["id"]) for r in records(40)]
        assert expected == [d["experiment"]["arm"] for d in decisions]
        assert 0 == runner.invoke(main, ["audit", "verify", journal]).exit_code
        replayed = runner.invoke(main, ["audit", "replay", journal])
        assert 0 == replayed.exit_code and "40 identical, 0 differ" in replayed.output
        shown = runner.invoke(main, ["audit", "show", "1", "-j", journal])
        assert f"lawyer-letter-45 (arm {expected[0]})" in shown.output

    def test_explain_experiment(self) -> None:
        result = CliRunner().invoke(main, ["explain", "--experiment", str(EXPERIMENT), "--at", AT])
        assert 0 == result.exit_code and "experiment  lawyer-letter-45 (arm " in result.output

    def test_experiment_and_policy_together_are_refused(self) -> None:
        result = CliRunner().invoke(main, ["decide", "-e", str(EXPERIMENT), "-p", str(CN_POLICY), "--at", AT])
        assert 1 == result.exit_code and "drop --policy" in result.output

    def test_a_bad_experiment_file_exits_3_with_located_issues(self, tmp_path: Path) -> None:
        path = tmp_path / "e.yaml"
        path.write_text("experiment: 1\nid: x\nsalt: s\nchampion: a.yaml\n")
        result = CliRunner().invoke(main, ["decide", "-e", str(path), "--at", AT])
        assert 3 == result.exit_code and f"{path}:1:1: missing-key" in result.output
