"""``escalation serve --experiment``: champion/challenger experiments over real
HTTP on loopback, checked against :class:`~escalation.ExperimentEngine`.

Servers are started and stopped as in ``tests/test_serve.py`` (whose helpers
this module uses); without the ``[serve]`` extra these tests are skipped the
same way."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import math
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation import Decision, ExperimentEngine, PolicyError, load_policy, open_journal

from .strategies import records as generated_records
from .test_docs import blocks
from .test_serve import (
    AT,
    CN,
    NOW,
    ROOT,
    ServeConfig,
    SubprocessServer,
    _bump_version,
    create_app,
    free_port,
    metric,
    post_json,
    serve,
    serving,
)

EXAMPLE = ROOT / "examples" / "experiment-lawyer-45.yaml"
PORTFOLIO = ROOT / "examples" / "portfolio-cn.jsonl"
EXPERIMENT_ID = "lawyer-letter-45"


def portfolio() -> list[dict[str, Any]]:
    """The bundled 1,000-account CN portfolio (records as JSON objects)."""
    return [json.loads(line) for line in PORTFOLIO.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_batch(engine: ExperimentEngine, batch: list[dict[str, Any]], now: dt.datetime) -> str:
    """What the service must answer for ``batch``: ``decide_many`` as the service encodes it."""
    items = engine.decide_many(batch, now=now)
    return (
        "[" + ",".join(i.to_json() if isinstance(i, Decision) else i.model_dump_json() for i in items) + "]"
    )


@pytest.fixture(scope="module")
def library() -> ExperimentEngine:
    """The library's engine for the example experiment (no journal)."""
    return ExperimentEngine.from_file(EXAMPLE)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of policies/, rules/ and examples/ (the experiment's relative paths intact), safe to edit."""
    for folder in ("policies", "rules", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


# ----------------------------------------------------------------- equality with ExperimentEngine


class TestSameAsExperimentEngine:
    def test_every_portfolio_decision_is_experiment_engine_decide(self, library: ExperimentEngine) -> None:
        """All 1,000 portfolio accounts, in batches through a server that serves only the
        experiment (requests name nothing), are answered byte for byte as
        ExperimentEngine.decide_many; the arms' shares are the experiment's within four
        standard errors; single records and records naming the experiment match too."""
        accounts = portfolio()
        with serving(experiments=(str(EXAMPLE),), timeout=120.0) as live:
            answers = [
                post_json(live.client, "/v1/decide", {"records": accounts[i : i + 250], "at": AT})
                for i in range(0, len(accounts), 250)
            ]
            singles = [
                post_json(live.client, "/v1/decide", {"record": record, "at": AT, "policy": EXPERIMENT_ID})
                for record in accounts[:20]
            ]
        assert [200] * 4 == [a.status_code for a in answers]
        for index, answer in enumerate(answers):
            assert expected_batch(library, accounts[index * 250 : (index + 1) * 250], NOW) == answer.text
        assert [library.decide(r, now=NOW).to_json() for r in accounts[:20]] == [s.text for s in singles]
        arms = collections.Counter(d["experiment"]["arm"] for a in answers for d in a.json())
        share = library.experiment.challenger.share
        assert len(accounts) == sum(arms.values())
        assert abs(arms["challenger"] / len(accounts) - share) <= 4 * math.sqrt(share * (1 - share) / 1000)
        assert {EXPERIMENT_ID} == {d["experiment"]["id"] for a in answers for d in a.json()}
        # the arm's policy decided: the challenger's version on challenger decisions only
        versions = {(d["experiment"]["arm"], d["policy"]["version"]) for a in answers for d in a.json()}
        assert {("champion", "2026.11"), ("challenger", "2026.11-lawyer45")} == versions

    def test_generated_records_are_decided_as_experiment_engine_decide(
        self, library: ExperimentEngine
    ) -> None:
        """Hypothesis-generated batches (records on the challenger's thresholds ±1, some
        invalid) naming the experiment, on a server that also serves the CN policy, are
        answered as ExperimentEngine.decide_many, error rows included."""
        policy = library.challenger.policy
        seen: collections.Counter[str] = collections.Counter()
        with serving(CN, experiments=(str(EXAMPLE),), timeout=60.0) as live:

            @settings(max_examples=25, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(batch=st.lists(generated_records(policy, NOW), min_size=1, max_size=6))
            def check(batch: list[dict[str, Any]]) -> None:
                answer = post_json(
                    live.client, "/v1/decide", {"records": batch, "at": AT, "policy": EXPERIMENT_ID}
                )
                assert (200, expected_batch(library, batch, NOW)) == (answer.status_code, answer.text)
                seen.update(d["experiment"]["arm"] for d in answer.json() if "experiment" in d)

            check()
        assert {"champion", "challenger"} == set(seen)

    def test_explain_is_experiment_engine_explain(self, library: ExperimentEngine) -> None:
        """POST /v1/explain on the experiment answers its labelled decision and the text
        ExperimentEngine.explain gives."""
        accounts = portfolio()[:10]
        with serving(experiments=(str(EXAMPLE),)) as live:
            answer = post_json(live.client, "/v1/explain", {"records": accounts, "at": AT})
        assert 200 == answer.status_code
        for record, item in zip(accounts, answer.json(), strict=True):
            decision = library.decide(record, now=NOW)
            assert json.loads(decision.to_json()) == item["decision"]
            assert library.explain(record, now=NOW) == item["text"]

    def test_served_next_to_policies(self, library: ExperimentEngine) -> None:
        """With a policy and an experiment served, requests must name one; naming the
        policy gives its unlabelled decision, naming the experiment the labelled one;
        GET /v1/policies lists both, the experiment with both arms; health counts both."""
        record = portfolio()[840]  # CN-0000841, in the challenger arm
        assert "challenger" == library.arm(record["id"])
        with serving(CN, experiments=(str(EXAMPLE),)) as live:
            unnamed = post_json(live.client, "/v1/decide", {"record": record, "at": AT})
            plain = post_json(
                live.client, "/v1/decide", {"record": record, "at": AT, "policy": "consumer-credit-cn"}
            )
            labelled = post_json(
                live.client, "/v1/decide", {"record": record, "at": AT, "policy": EXPERIMENT_ID}
            )
            listing = live.client.get("/v1/policies").json()
            detail = live.client.get(f"/v1/policies/{EXPERIMENT_ID}")
            health = live.client.get("/healthz").json()
        assert (422, "policy-required") == (unnamed.status_code, unnamed.json()["code"])
        assert "experiment" not in plain.json()
        assert load_policy(CN).fingerprint == plain.headers["escalation-policy-fingerprint"]
        assert library.decide(record, now=NOW).to_json() == labelled.text
        assert ("lawyer_letter", "demand_letter") == (labelled.json()["action"], plain.json()["action"])
        assert ["consumer-credit-cn"] == [p["id"] for p in listing["policies"]]
        (listed,) = listing["experiments"]
        assert listed["fingerprint"] == labelled.headers["escalation-policy-fingerprint"]
        assert (EXPERIMENT_ID, "lawyer-letter-45-2026-11", 0.2) == (
            listed["id"],
            listed["salt"],
            listed["share"],
        )
        assert (library.champion.policy.fingerprint, library.challenger.policy.fingerprint) == (
            listed["champion"]["fingerprint"],
            listed["challenger"]["fingerprint"],
        )
        assert ("2026.11", "2026.11-lawyer45") == (
            listed["champion"]["version"],
            listed["challenger"]["version"],
        )
        assert (404, "unknown-policy") == (detail.status_code, detail.json()["code"])
        assert "is an experiment" in detail.json()["message"]
        assert {"status": "ok", "policies": 1, "experiments": 1} == health

    def test_a_pinned_experiment_fingerprint(self, library: ExperimentEngine) -> None:
        """The experiment's fingerprint is the documented hash (docs/serve.md); `fingerprint`
        pins it; another one is 409."""
        record = portfolio()[0]
        canonical = {
            "challenger": library.challenger.policy.fingerprint,
            "champion": library.champion.policy.fingerprint,
            "id": EXPERIMENT_ID,
            "salt": "lawyer-letter-45-2026-11",
            "share": "0.2",
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        with serving(experiments=(str(EXAMPLE),)) as live:
            pinned = live.client.get("/v1/policies").json()["experiments"][0]["fingerprint"]
            assert "sha256:" + hashlib.sha256(text.encode()).hexdigest() == pinned
            ok = post_json(live.client, "/v1/decide", {"record": record, "at": AT, "fingerprint": pinned})
            other = post_json(live.client, "/v1/decide",
                              {"record": record, "at": AT, "fingerprint": "sha256:" + "0" * 64})  # fmt: skip
        assert 200 == ok.status_code
        assert (409, "fingerprint-mismatch") == (other.status_code, other.json()["code"])
        assert EXPERIMENT_ID in other.json()["message"]


# ----------------------------------------------------------------- journal and metrics


class TestJournalAndMetrics:
    def test_decisions_are_journaled_with_their_arm(self, tmp_path: Path) -> None:
        """With --journal, each experiment decision is journaled (as the CLI does: labelled,
        with its arm's policy) before its answer; the journal verifies and replays identically."""
        path = tmp_path / "journal.sqlite"
        accounts = portfolio()[:60]
        with serving(experiments=(str(EXAMPLE),), journal=str(path)) as live:
            answer = post_json(live.client, "/v1/decide", {"records": accounts, "at": AT})
            reader = open_journal(path, create=False)
            stored = [json.loads(json.loads(e.text)["decision"]) for e in reader.scan()]
            reader.close()
        assert 200 == answer.status_code
        assert [(d["account_id"], d["experiment"], d["policy"]["fingerprint"]) for d in answer.json()] == [
            (s["account_id"], s["experiment"], s["policy"]["fingerprint"]) for s in stored
        ]
        escalation = str(Path(sys.executable).with_name("escalation"))
        verified, replayed = (
            subprocess.run(
                [escalation, "audit", step, str(path)], capture_output=True, text=True, check=False
            )
            for step in ("verify", "replay")
        )
        assert 0 == verified.returncode, verified.stdout + verified.stderr
        assert (0, "60 replayed, 60 identical, 0 differ") == (
            replayed.returncode,
            replayed.stdout.strip().splitlines()[-1],
        )

    def test_metrics_count_decisions_by_arm(self) -> None:
        """escalation_decisions_total has an `arm` label: the experiment's decisions are counted
        by arm, a plain policy's with an empty arm; escalation_experiment_info gives each arm's
        share and policy."""
        accounts = portfolio()[:200]
        with serving(CN, experiments=(str(EXAMPLE),), timeout=60.0) as live:
            answer = post_json(
                live.client, "/v1/decide", {"records": accounts, "at": AT, "policy": EXPERIMENT_ID}
            )
            post_json(
                live.client, "/v1/decide", {"records": accounts[:5], "at": AT, "policy": "consumer-credit-cn"}
            )
            text = live.client.get("/metrics").text
        arms = collections.Counter(d["experiment"]["arm"] for d in answer.json())
        for arm in ("champion", "challenger"):
            counted = metric(text, "escalation_decisions_total", policy=EXPERIMENT_ID, arm=arm)
            assert arms[arm] == counted
        assert 5 == metric(text, "escalation_decisions_total", policy="consumer-credit-cn", arm="")
        assert 0 == metric(text, "escalation_decisions_total", policy="consumer-credit-cn", arm="champion")
        assert (0.2, 0.8) == (
            metric(text, "escalation_experiment_info", experiment=EXPERIMENT_ID, arm="challenger",
                   version="2026.11-lawyer45"),
            metric(text, "escalation_experiment_info", experiment=EXPERIMENT_ID, arm="champion",
                   version="2026.11"),
        )  # fmt: skip


# ----------------------------------------------------------------- reload


def _experiment_decision(live: Any, record: dict[str, Any]) -> dict[str, Any]:
    answer = post_json(live.client, "/v1/decide", {"record": record, "at": AT})
    assert 200 == answer.status_code, answer.text
    data: dict[str, Any] = answer.json()
    return data


class TestReload:
    def test_an_invalid_challenger_keeps_the_old_experiment(self, tree: Path) -> None:
        """Reload with a broken challenger policy (or a broken experiment file) is refused
        with 422 naming the file, and the old experiment keeps deciding; once valid again, a
        changed challenger switches (new fingerprint, new version on challenger decisions)."""
        experiment = tree / "examples" / "experiment-lawyer-45.yaml"
        challenger = tree / "examples" / "cn-lawyer-letter-45.yaml"
        good_policy, good_experiment = challenger.read_text(), experiment.read_text()
        record = portfolio()[840]  # challenger arm
        with serving(experiments=(str(experiment),)) as live:
            before = live.client.get("/v1/policies").json()["experiments"][0]
            challenger.write_text(good_policy.replace("tiers:", "tiers: [\n", 1))
            broken_policy = live.client.post("/v1/admin/reload")
            kept = _experiment_decision(live, record)
            challenger.write_text(good_policy)
            experiment.write_text(good_experiment.replace("share: 20%", "share: 120%"))
            broken_share = live.client.post("/v1/admin/reload")
            still = live.client.get("/v1/policies").json()["experiments"][0]
            experiment.write_text(good_experiment)
            _bump_version(challenger, "2099.9-lawyer45")
            switched = live.client.post("/v1/admin/reload")
            after = _experiment_decision(live, record)
            text = live.client.get("/metrics").text
        assert (422, "policy-invalid") == (broken_policy.status_code, broken_policy.json()["code"])
        assert str(challenger) in broken_policy.json()["message"]
        assert (422, "policy-invalid") == (broken_share.status_code, broken_share.json()["code"])
        assert str(experiment) in broken_share.json()["message"]
        assert ("challenger", "2026.11-lawyer45") == (kept["experiment"]["arm"], kept["policy"]["version"])
        assert before == still
        assert (200, True) == (switched.status_code, switched.json()["changed"])
        (reloaded,) = switched.json()["experiments"]
        assert reloaded["fingerprint"] != before["fingerprint"]
        assert ("2099.9-lawyer45", "2099.9-lawyer45") == (
            reloaded["challenger"]["version"],
            after["policy"]["version"],
        )
        assert (2, 1) == (metric(text, "escalation_policy_reloads_total", result="invalid"),
                          metric(text, "escalation_policy_reloads_total", result="changed"))  # fmt: skip
        assert 0.2 == metric(text, "escalation_experiment_info", arm="challenger", version="2099.9-lawyer45")
        assert 0 == metric(
            text, "escalation_experiment_info", version="2026.11-lawyer45"
        )  # the old arm is gone

    def test_a_new_description_is_a_change_and_the_same_files_are_not(self, tree: Path) -> None:
        """Reloading unchanged files changes nothing; a new description (outside the
        fingerprint) is reloaded so that the listing shows it."""
        experiment = tree / "examples" / "experiment-lawyer-45.yaml"
        server = create_app(ServeConfig(policies=(), experiments=(str(experiment),))).state.server
        unchanged = server.reload()
        experiment.write_text(experiment.read_text().replace("description: the", "description: now the"))
        changed = server.reload()
        (listed,) = server.experiment_summaries()
        assert (False, True) == (unchanged, changed)
        assert listed.description is not None and listed.description.startswith("now the lawyer")

    def test_sighup_reloads_the_experiment(self, tree: Path) -> None:
        """`escalation serve --experiment`: SIGHUP with a broken challenger logs reload_failed and
        keeps the old experiment; with a valid change it switches."""
        experiment = tree / "examples" / "experiment-lawyer-45.yaml"
        challenger = tree / "examples" / "cn-lawyer-letter-45.yaml"
        good = challenger.read_text()
        with SubprocessServer("--experiment", str(experiment)) as live:
            old = live.client.get("/v1/policies").json()["experiments"][0]
            challenger.write_text("escalation: 1\npolicy: {}\n")
            live.proc.send_signal(signal.SIGHUP)
            live.wait_for(r'"event": "reload_failed"')
            kept = live.client.get("/v1/policies").json()["experiments"][0]
            challenger.write_text(good)
            _bump_version(challenger, "2099.8-lawyer45")
            live.proc.send_signal(signal.SIGHUP)
            live.wait_for(r'"event": "reloaded"')
            new = live.client.get("/v1/policies").json()["experiments"][0]
        assert old == kept
        assert ("2099.8-lawyer45", True) == (
            new["challenger"]["version"],
            new["fingerprint"] != old["fingerprint"],
        )


# ----------------------------------------------------------------- startup errors


class TestStartup:
    def test_an_id_clash_with_a_policy_names_the_file(self, tree: Path) -> None:
        """An experiment whose id is a served policy's id does not start: the error names
        the experiment file; two experiments with one id likewise."""
        clash = tree / "examples" / "clash.yaml"
        clash.write_text((tree / "examples" / "experiment-lawyer-45.yaml").read_text()
                         .replace("id: lawyer-letter-45", "id: consumer-credit-cn"))  # fmt: skip
        with pytest.raises(PolicyError) as policy_clash:
            create_app(ServeConfig(policies=(str(CN),), experiments=(str(clash),)))
        twice = tree / "examples" / "twice.yaml"
        shutil.copy(EXAMPLE, twice)
        with pytest.raises(PolicyError) as experiment_clash:
            create_app(ServeConfig(policies=(), experiments=(str(EXAMPLE), str(twice))))
        (issue,) = policy_clash.value.issues
        assert (str(clash), "duplicate-policy") == (issue.path, issue.code)
        assert "experiment id `consumer-credit-cn` is also the id of a served policy" in issue.message
        (issue,) = experiment_clash.value.issues
        assert (str(twice), "experiment id `lawyer-letter-45` is served twice") == (issue.path, issue.message)

    def test_the_command_exits_3_naming_the_file(self, tree: Path) -> None:
        """`escalation serve --policy P --experiment E` with clashing ids, or an experiment whose
        arms differ in currency, prints path: code: message and exits 3 without binding."""
        from click.testing import CliRunner

        clash = tree / "examples" / "clash.yaml"
        clash.write_text(EXAMPLE.read_text().replace("id: lawyer-letter-45", "id: consumer-credit-cn"))
        mixed = tree / "examples" / "mixed.yaml"
        mixed.write_text(
            EXAMPLE.read_text().replace("cn-lawyer-letter-45.yaml", "../policies/us-card-collector.yaml")
        )
        try:
            clashing = CliRunner().invoke(serve, ["--policy", str(CN), "--experiment", str(clash)])
            currencies = CliRunner().invoke(serve, ["--experiment", str(mixed)])
        finally:
            structlog.reset_defaults()  # the command configured logging for a server
        assert 3 == clashing.exit_code
        assert f"{clash}:1:1: duplicate-policy:" in clashing.output
        assert 3 == currencies.exit_code
        assert f"{mixed}:1:1: experiment-arms:" in currencies.output

    def test_a_missing_experiment_file_is_a_located_error(self, tmp_path: Path) -> None:
        """A missing experiment file stops the server with an error naming it."""
        missing = tmp_path / "nope.yaml"
        with pytest.raises(PolicyError) as caught:
            create_app(ServeConfig(policies=(), experiments=(str(missing),)))
        assert str(missing) in str(caught.value)

    def test_worker_processes_serve_the_experiment(self, library: ExperimentEngine) -> None:
        """With --workers 2 (each worker rebuilds the app from the environment), every
        worker decides the experiment as ExperimentEngine.decide."""
        record = portfolio()[840]
        with SubprocessServer("--experiment", str(EXAMPLE), "--workers", "2", port=free_port()) as live:
            answers = [
                post_json(
                    live.client, "/v1/decide", {"record": record, "at": AT}, headers={"connection": "close"}
                )
                for _ in range(6)
            ]
        assert {(200, library.decide(record, now=NOW).to_json())} == {
            (a.status_code, a.text) for a in answers
        }

    def test_the_configuration_reaches_workers(self) -> None:
        """Experiments travel to worker processes with the rest of the configuration."""
        config = ServeConfig(policies=(str(CN),), experiments=(str(EXAMPLE),), workers=2)
        assert config == ServeConfig.from_env({"ESCALATION_SERVE_CONFIG": config.to_env()})
        with pytest.raises(ValueError, match="at least one policy or experiment"):
            ServeConfig(policies=())


# ----------------------------------------------------------------- docs/serve.md


def test_the_docs_example_runs() -> None:
    """docs/serve.md's experiment example: the documented command serves the experiment
    and the Python client prints what its comments say."""
    (command,) = [
        b for _, b in blocks("serve.md", "console") if "--experiment" in b and "$ escalation serve" in b
    ]
    (code,) = [b for _, b in blocks("serve.md", "python") if EXPERIMENT_ID in b]
    argv = command.strip().splitlines()[0].removeprefix("$ ").split()
    assert ["escalation", "serve"] == argv[:2]
    port = free_port()
    with SubprocessServer(*argv[2:], port=port):
        result = subprocess.run(
            [sys.executable, "-c", code.replace("127.0.0.1:8080", f"127.0.0.1:{port}")],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
    assert 0 == result.returncode, result.stderr
    expected = [line.removeprefix("# ") for line in code.splitlines() if line.startswith("# ")]
    assert expected == result.stdout.splitlines()
    assert re.search(r"docs/serve\.md#|serve\.md#", (ROOT / "docs" / "experiments.md").read_text())
