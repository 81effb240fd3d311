"""``escalation serve``: the engine over HTTP, tested over real HTTP on loopback.

Every server is started on 127.0.0.1 with an ephemeral port (uvicorn in a
thread, or ``python -m escalation.serve`` in a subprocess) and stopped by the
test that started it. Without the ``[serve]`` extra these tests are skipped —
unless ``$CI`` is set, where a missing extra fails them."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from escalation import Engine, ErrorRow, RecordError, open_journal, render_text
from escalation._bundled import SHIPPED_POLICIES

if os.environ.get("CI"):
    import fastapi  # noqa: F401 - in CI a missing extra fails, never skips
    import httpx
    import uvicorn
else:
    pytest.importorskip("fastapi")
    pytest.importorskip("prometheus_client")
    uvicorn = pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")

from escalation.serve.app import create_app, openapi_document, render_openapi
from escalation.serve.cli import EXTRA_MISSING, serve
from escalation.serve.config import TOKEN_ENV, ServeConfig

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_SUITES = [ROOT / "policies" / f"{name}_test.yaml" for name in SHIPPED_POLICIES]
POLICIES = ROOT / "policies"
CN = POLICIES / "consumer-credit-cn.yaml"
AT = "2026-11-23T10:00:00+08:00"
NOW = dt.datetime.fromisoformat(AT)
# Seconds any server gets to start, stop or restart its workers: a bound, not a
# wait (under `pytest -n auto` on a loaded 2-core machine a restart took > 20 s).
DEADLINE = 60.0


# ----------------------------------------------------------------- helpers


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 (ephemeral port) in a thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        give_up = time.monotonic() + DEADLINE
        while not self.server.started:
            if time.monotonic() > give_up or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=DEADLINE)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "the test server did not stop"


@contextlib.contextmanager
def serving(*policies: Path | str, **settings: Any) -> Iterator[LiveServer]:
    """A live server for ``policies`` with ``settings`` (ServeConfig fields;
    ``journal=`` may be an open journal)."""
    journal = settings.pop("journal", None)
    if isinstance(journal, str):
        settings["journal"], journal = journal, None
    config = ServeConfig(policies=tuple(str(p) for p in policies), **settings)
    with LiveServer(create_app(config, journal=journal)) as live:
        yield live


def load_cases() -> list[tuple[str, str, dict[str, Any], str, str]]:
    """Every case of every shipped suite: (suite, case name, record, now, policy file).

    Records go through JSON once, so the server and the engine read the same input."""
    cases = []
    for suite_path in SHIPPED_SUITES:
        suite = yaml.safe_load(suite_path.read_text(encoding="utf-8"))
        policy_file = POLICIES / (suite.get("policy") or suite_path.name.replace("_test.yaml", ".yaml"))
        for case in suite["cases"]:
            record = json.loads(json.dumps({**suite.get("defaults", {}), **case["account"]}, default=str))
            cases.append((suite_path.stem, case["name"], record, str(case["now"]), str(policy_file)))
    return cases


CASES = load_cases()
POLICY_FILES = sorted({c[4] for c in CASES})


def free_port() -> int:
    """A loopback port free right now (for servers that cannot report an ephemeral one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` with ``labels`` in a Prometheus text exposition (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if sample == name and all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def example_account() -> dict[str, Any]:
    """The bundled example account."""
    data: dict[str, Any] = json.loads((ROOT / "examples" / "account.json").read_text(), parse_float=Decimal)
    return data


def post_json(client: Any, path: str, payload: dict[str, Any], **kwargs: Any) -> Any:
    """POST ``payload`` as JSON (decimals as JSON numbers, as a Java or Go client sends them)."""
    body = json.dumps(payload, default=_number)
    body = re.sub(r'"__decimal__(-?[0-9.]+)"', r"\1", body)
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return client.post(path, content=body, headers=headers, **kwargs)


def _number(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"__decimal__{value}"
    raise TypeError(type(value).__name__)


@pytest.fixture(scope="module")
def every_policy() -> Iterator[LiveServer]:
    """One server for every shipped policy."""
    with serving(*POLICY_FILES) as live:
        yield live


@pytest.fixture(scope="module")
def engines() -> dict[str, Engine]:
    """Library engines for every shipped policy, by file."""
    return {path: Engine.from_file(path) for path in POLICY_FILES}


@pytest.fixture
def cn() -> Iterator[LiveServer]:
    """A server for the bundled CN policy only."""
    with serving(CN) as live:
        yield live


class SubprocessServer:
    """``python -m escalation.serve ARGS --port 0`` on loopback, stopped with SIGTERM."""

    def __init__(self, *args: str, port: int = 0) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "escalation.serve", *args, "--host", "127.0.0.1", "--port", str(port)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: str) -> re.Match[str]:
        """The first stderr line matching ``pattern`` (bounded wait)."""
        give_up = time.monotonic() + DEADLINE
        while time.monotonic() < give_up:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.log.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r} in server output: {''.join(self.log)}")

    def __enter__(self) -> SubprocessServer:
        try:
            return self._started()
        except BaseException:
            self.__exit__()
            raise

    def _started(self) -> SubprocessServer:
        if self.port:  # several workers: poll the port chosen in advance
            self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=DEADLINE)
            give_up = time.monotonic() + DEADLINE
            while time.monotonic() < give_up and self.proc.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    if self.client.get("/readyz").status_code == 200:
                        return self
                time.sleep(0.1)
            raise AssertionError("the server did not start")
        port = self.wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE)
        return self

    def __exit__(self, *exc: object) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE)


# ----------------------------------------------------------------- equality with the library


class TestSameAsTheLibrary:
    @pytest.mark.parametrize(
        ("suite", "name", "record", "now", "policy_file"), CASES, ids=[f"{c[0]}::{c[1]}" for c in CASES]
    )
    def test_every_policy_test_case_decides_as_engine_decide(
        self,
        every_policy: LiveServer,
        engines: dict[str, Engine],
        suite: str,
        name: str,
        record: dict[str, Any],
        now: str,
        policy_file: str,
    ) -> None:
        """POST /v1/decide answers each shipped case with Engine.decide's bytes (or 422 naming its fields)."""
        engine = engines[policy_file]
        response = every_policy.client.post(
            "/v1/decide", json={"record": record, "at": now, "policy": engine.policy.id}
        )
        try:
            expected = engine.decide(record, now=dt.datetime.fromisoformat(now))
        except RecordError as exc:
            assert 422 == response.status_code
            body = response.json()
            assert "invalid-record" == body["code"]
            want = [f"record.{i.field}" if i.field else "record" for i in exc.issues]
            assert want == [i["field"] for i in body["issues"]]
            return
        assert 200 == response.status_code, response.text
        assert expected.to_json() == response.text

    def test_a_batch_is_decide_many_one_for_one(
        self, every_policy: LiveServer, engines: dict[str, Engine]
    ) -> None:
        """A batch answers a list matching decide_many item for item, error rows included."""
        engine = engines[str(CN)]
        records = [c[2] for c in CASES if c[4] == str(CN)]
        response = every_policy.client.post(
            "/v1/decide", json={"records": records, "at": AT, "policy": engine.policy.id}
        )
        assert 200 == response.status_code, response.text
        expected = list(engine.decide_many(records, now=NOW))
        assert any(isinstance(item, ErrorRow) for item in expected)  # the suite has bad records
        assert [json.loads(i.model_dump_json()) for i in expected] == response.json()

    def test_explain_returns_the_decision_and_its_text(self, cn: LiveServer, cn_engine: Engine) -> None:
        """POST /v1/explain answers the decision and the text `escalation explain` prints."""
        response = post_json(cn.client, "/v1/explain", {"record": example_account(), "at": AT})
        assert 200 == response.status_code, response.text
        decision = cn_engine.decide(example_account(), now=NOW)
        assert {"decision": json.loads(decision.to_json()), "text": render_text(decision)} == response.json()

    def test_trace_false_leaves_the_trace_out(self, cn: LiveServer, cn_engine: Engine) -> None:
        """`trace: false` answers what decide(trace=False) returns."""
        response = post_json(cn.client, "/v1/decide", {"record": example_account(), "at": AT, "trace": False})
        assert cn_engine.decide(example_account(), now=NOW, trace=False).to_json() == response.text

    def test_without_at_the_server_clock_is_used_and_said(self, cn: LiveServer) -> None:
        """Without `at`, the decision is made at the server's current time, reported in headers."""
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        response = post_json(cn.client, "/v1/decide", {"record": example_account()})
        assert 200 == response.status_code, response.text
        assert "server" == response.headers["escalation-at-source"]
        at = dt.datetime.fromisoformat(response.headers["escalation-at"])
        assert before <= at <= dt.datetime.now(dt.UTC)
        assert at == dt.datetime.fromisoformat(response.json()["decided_at"])

    def test_escalation_serve_answers_as_escalation_decide(self) -> None:
        """`escalation serve` answers the README example as `escalation decide` prints it."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = subprocess.run(
            [sys.executable, "-m", "escalation", "decide", "--at", AT, "--policy", str(CN), "--compact"],
            capture_output=True, text=True, check=True, env=env, cwd=ROOT, timeout=60,
        )  # fmt: skip
        with SubprocessServer("--policy", str(CN)) as live:
            response = post_json(live.client, "/v1/decide", {"record": example_account(), "at": AT})
        assert 200 == response.status_code, response.text
        assert cli.stdout.strip() == response.text


# ----------------------------------------------------------------- bad requests


class TestBadRequests:
    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"record": {"id": "A"}, "at": 123}, "at"),
            ({"record": {"id": "A"}, "at": "2026-11-23T10:00:00"}, "at"),
            ({"record": {"id": "A"}, "at": AT, "trace": "yes"}, "trace"),
            ({"record": "A-1", "at": AT}, "record"),
            ({"records": [], "at": AT}, "records"),
            ({"records": [{"id": "A"}, 7], "at": AT}, "records.1"),
            ({"record": {"id": "A"}, "at": AT, "fingerprint": "md5:x"}, "fingerprint"),
            ({"record": {"id": "A"}, "at": AT, "colour": "red"}, "colour"),
            ({"at": AT}, "record"),
        ],
    )
    def test_wrong_types_and_unknown_fields_are_422_naming_the_field(
        self, cn: LiveServer, payload: dict[str, Any], field: str
    ) -> None:
        """A request of the wrong shape is refused with 422 naming the field."""
        response = cn.client.post("/v1/decide", json=payload)
        assert 422 == response.status_code
        assert field in [i["field"] for i in response.json()["issues"]]

    def test_a_bad_record_is_422_naming_the_record_field(self, cn: LiveServer) -> None:
        """A record with a negative amount is refused, naming `record.amount_overdue`."""
        record = {**example_account(), "amount_overdue": "-1"}
        response = post_json(cn.client, "/v1/decide", {"record": record, "at": AT})
        assert 422 == response.status_code
        body = response.json()
        assert ("invalid-record", ["record.amount_overdue"]) == (
            body["code"],
            [i["field"] for i in body["issues"]],
        )

    def test_unknown_record_field_is_named(self, cn: LiveServer) -> None:
        """An unknown field inside the record is named with its path."""
        response = post_json(
            cn.client, "/v1/decide", {"record": {**example_account(), "nickname": "x"}, "at": AT}
        )
        assert 422 == response.status_code
        assert ["record.nickname"] == [i["field"] for i in response.json()["issues"]]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b'{"record": ', "expecting value"),
            (b'{"at": "x", "at": "y"}', "duplicate key"),
            (b'{"a": NaN}', "NaN"),
        ],
    )
    def test_bad_json_is_422(self, cn: LiveServer, body: bytes, message: str) -> None:
        """Malformed JSON, a duplicate key or NaN is refused with 422 on `body`."""
        response = cn.client.post("/v1/decide", content=body, headers={"content-type": "application/json"})
        assert 422 == response.status_code
        assert ("invalid-json", "body") == (response.json()["code"], response.json()["issues"][0]["field"])
        assert message.lower() in response.json()["message"].lower()

    def test_a_body_that_is_not_json_is_415(self, cn: LiveServer) -> None:
        """A form-encoded body (curl -d without -H) is refused with 415."""
        form = {"content-type": "application/x-www-form-urlencoded"}
        response = cn.client.post("/v1/decide", content=b"record=1", headers=form)
        assert (415, "unsupported-media-type") == (response.status_code, response.json()["code"])

    def test_an_oversized_body_is_413(self) -> None:
        """A body over --max-body-bytes is refused with 413, declared or streamed."""
        with serving(CN, max_body_bytes=2048) as live:
            declared = post_json(
                live.client, "/v1/decide", {"record": example_account(), "at": AT, "pad": "x" * 4096}
            )

            def chunks() -> Iterator[bytes]:
                yield b'{"record": {"id": "' + b"x" * 4096 + b'"}}'

            streamed = live.client.post(
                "/v1/decide", content=chunks(), headers={"content-type": "application/json"}
            )
        assert (413, "body-too-large") == (declared.status_code, declared.json()["code"])
        assert (413, "body-too-large") == (streamed.status_code, streamed.json()["code"])

    def test_too_many_records_is_413(self) -> None:
        """A batch over --max-batch is refused with 413 `batch-too-large`."""
        with serving(CN, max_batch=2) as live:
            response = post_json(live.client, "/v1/decide", {"records": [example_account()] * 3, "at": AT})
        assert (413, "batch-too-large") == (response.status_code, response.json()["code"])

    def test_a_pinned_fingerprint_that_differs_is_409(self, cn: LiveServer, cn_engine: Engine) -> None:
        """A request pinning another fingerprint is refused with 409; the served one is accepted."""
        payload = {"record": example_account(), "at": AT, "fingerprint": "sha256:" + "0" * 64}
        wrong = post_json(cn.client, "/v1/decide", payload)
        right = post_json(cn.client, "/v1/decide", {**payload, "fingerprint": cn_engine.policy.fingerprint})
        assert (409, "fingerprint-mismatch") == (wrong.status_code, wrong.json()["code"])
        assert cn_engine.policy.fingerprint in wrong.json()["message"]
        assert 200 == right.status_code

    def test_policy_must_be_named_when_several_are_served(self, every_policy: LiveServer) -> None:
        """With several policies, a request naming none is 422 on `policy`; an unknown one is 404."""
        missing = post_json(every_policy.client, "/v1/decide", {"record": example_account(), "at": AT})
        unknown = post_json(
            every_policy.client, "/v1/decide", {"record": example_account(), "at": AT, "policy": "zz"}
        )
        assert (422, "policy") == (missing.status_code, missing.json()["issues"][0]["field"])
        assert (404, "unknown-policy") == (unknown.status_code, unknown.json()["code"])

    def test_a_request_over_the_timeout_is_504(self) -> None:
        """A batch still deciding when the per-request timeout passes answers 504."""
        with serving(CN, timeout=0.001) as live:
            response = post_json(live.client, "/v1/decide", {"records": [example_account()] * 500, "at": AT})
        assert (504, "timeout") == (response.status_code, response.json()["code"])


# ----------------------------------------------------------------- policies, health, metrics


class TestEndpoints:
    def test_policies_lists_id_version_fingerprint_and_packs(
        self, every_policy: LiveServer, engines: dict[str, Engine]
    ) -> None:
        """GET /v1/policies lists every served policy with its fingerprint and packs."""
        listed = every_policy.client.get("/v1/policies").json()["policies"]
        want = sorted(
            (e.policy.id, e.policy.version, e.policy.fingerprint, list(e.policy.packs))
            for e in engines.values()
        )
        assert want == [(p["id"], p["version"], p["fingerprint"], p["packs"]) for p in listed]

    def test_policy_detail_is_canonical_and_hashes_to_the_fingerprint(
        self, cn: LiveServer, cn_engine: Engine
    ) -> None:
        """GET /v1/policies/{id} returns the canonical policy whose SHA-256 is the fingerprint."""
        body = cn.client.get(f"/v1/policies/{cn_engine.policy.id}").json()
        text = json.dumps(body["canonical"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert cn_engine.policy.fingerprint == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        assert 404 == cn.client.get("/v1/policies/nope").status_code

    def test_health_and_readiness(self, tmp_path: Path) -> None:
        """/healthz and /readyz answer 200 with the number of policies (journal reachable)."""
        with serving(CN, journal=open_journal(tmp_path / "j.sqlite")) as live:
            health, ready = live.client.get("/healthz"), live.client.get("/readyz")
        assert (200, {"status": "ok", "policies": 1, "experiments": 0}) == (health.status_code, health.json())
        assert (200, {"status": "ok", "policies": 1, "experiments": 0}) == (ready.status_code, ready.json())

    def test_metrics_count_decisions_errors_and_latency(self, cn: LiveServer) -> None:
        """/metrics counts decisions by status and action, errors by code, and request latency."""
        before = cn.client.get("/metrics").text
        decision = post_json(cn.client, "/v1/decide", {"record": example_account(), "at": AT}).json()
        post_json(cn.client, "/v1/decide", {"records": [example_account(), {"id": "bad"}], "at": AT})
        after = cn.client.get("/metrics").text
        labels = {
            "policy": decision["policy"]["id"],
            "arm": "",
            "status": decision["status"],
            "action": decision["action"] or "",
        }
        assert 2 == metric(after, "escalation_decisions_total", **labels) - metric(
            before, "escalation_decisions_total", **labels
        )
        assert 1 <= metric(after, "escalation_decision_errors_total", policy=labels["policy"])
        route = {"route": "/v1/decide"}
        assert 2 == metric(after, "escalation_http_request_duration_seconds_count", **route) - metric(
            before, "escalation_http_request_duration_seconds_count", **route
        )
        assert 1 == metric(after, "escalation_policy_info", policy=labels["policy"])

    def test_each_app_has_its_own_registry(self) -> None:
        """Two apps in one process keep separate metrics (no global registry)."""
        config = ServeConfig(policies=(str(CN),))
        first, second = create_app(config), create_app(config)
        first.state.server.metrics.decisions.labels("p", "", "act", "x").inc()
        assert first.state.server.metrics.registry is not second.state.server.metrics.registry
        assert b"escalation_decisions_total{" not in second.state.server.metrics.render()


# ----------------------------------------------------------------- auth


class TestAuth:
    def test_a_token_is_required_when_set(self, tmp_path: Path) -> None:
        """With --token-file, /v1 answers 401 without the bearer token and 200 with it; probes stay open."""
        token_file = tmp_path / "token"
        token_file.write_text("s3cret-token\n")
        with serving(CN, token_file=str(token_file)) as live:
            none = post_json(live.client, "/v1/decide", {"record": example_account(), "at": AT})
            wrong = live.client.get("/v1/policies", headers={"authorization": "Bearer nope"})
            right = live.client.get("/v1/policies", headers={"authorization": "Bearer s3cret-token"})
            reload = live.client.post("/v1/admin/reload")
            health = live.client.get("/healthz")
        assert (401, "unauthorized") == (none.status_code, none.json()["code"])
        assert none.headers["www-authenticate"].startswith("Bearer")
        assert (401, 200, 401, 200) == (
            wrong.status_code,
            right.status_code,
            reload.status_code,
            health.status_code,
        )

    def test_the_token_can_come_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """$ESCALATION_SERVE_TOKEN sets the token when no file is given."""
        monkeypatch.setenv(TOKEN_ENV, "env-token")
        with serving(CN) as live:
            codes = (
                live.client.get("/v1/policies").status_code,
                live.client.get("/v1/policies", headers={"authorization": "Bearer env-token"}).status_code,
            )
        assert (401, 200) == codes


# ----------------------------------------------------------------- reload


def _bump_version(path: Path, version: str) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r'version: "[^"]*"', f'version: "{version}"', text, count=1), encoding="utf-8")


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """A copy of the CN policy with its rule pack, safe to edit."""
    shutil.copytree(POLICIES, tmp_path / "policies")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    return tmp_path / "policies" / "consumer-credit-cn.yaml"


class TestReload:
    def test_an_invalid_policy_keeps_the_old_one_and_a_valid_one_switches(self, policy_copy: Path) -> None:
        """POST /v1/admin/reload refuses an invalid file (old one serves) and switches to a valid one."""
        good = policy_copy.read_text(encoding="utf-8")
        with serving(policy_copy) as live:
            old = live.client.get("/v1/policies").json()["policies"][0]
            policy_copy.write_text(good.replace("tiers:", "tiers: [\n", 1), encoding="utf-8")
            refused = live.client.post("/v1/admin/reload")
            still = post_json(live.client, "/v1/decide", {"record": example_account(), "at": AT})
            policy_copy.write_text(good, encoding="utf-8")
            _bump_version(policy_copy, "2099.1")
            switched = live.client.post("/v1/admin/reload")
            new = live.client.get("/v1/policies").json()["policies"][0]
            decided = post_json(live.client, "/v1/decide", {"record": example_account(), "at": AT}).json()
            metrics = live.client.get("/metrics").text
        assert (422, "policy-invalid") == (refused.status_code, refused.json()["code"])
        assert str(policy_copy) in refused.json()["message"]
        assert (200, old["fingerprint"]) == (still.status_code, still.json()["policy"]["fingerprint"])
        assert (200, "reloaded", True) == (
            switched.status_code,
            switched.json()["status"],
            switched.json()["changed"],
        )
        assert ("2099.1", new["fingerprint"]) == (new["version"], decided["policy"]["fingerprint"])
        assert old["fingerprint"] != new["fingerprint"]
        assert (1, 1) == (metric(metrics, "escalation_policy_reloads_total", result="invalid"),
                          metric(metrics, "escalation_policy_reloads_total", result="changed"))  # fmt: skip

    def test_sighup_reloads_and_keeps_the_old_policy_when_invalid(self, policy_copy: Path) -> None:
        """SIGHUP reloads the policy; an invalid file is logged and the old one keeps serving."""
        good = policy_copy.read_text(encoding="utf-8")
        with SubprocessServer("--policy", str(policy_copy)) as live:
            old = live.client.get("/v1/policies").json()["policies"][0]["fingerprint"]
            policy_copy.write_text("escalation: 1\npolicy: {}\n", encoding="utf-8")
            live.proc.send_signal(signal.SIGHUP)
            live.wait_for(r'"event": "reload_failed"')
            kept = live.client.get("/v1/policies").json()["policies"][0]["fingerprint"]
            policy_copy.write_text(good, encoding="utf-8")
            _bump_version(policy_copy, "2099.2")
            live.proc.send_signal(signal.SIGHUP)
            live.wait_for(r'"event": "reloaded"')
            listed = live.client.get("/v1/policies").json()["policies"][0]
        assert old == kept
        assert ("2099.2", True) == (listed["version"], listed["fingerprint"] != old)

    def test_with_workers_a_reload_replaces_them_one_by_one(self, policy_copy: Path) -> None:
        """With --workers 2, POST /v1/admin/reload answers 202 and every worker then serves the change."""
        with SubprocessServer("--policy", str(policy_copy), "--workers", "2", port=free_port()) as live:
            _bump_version(policy_copy, "2099.3")
            accepted = live.client.post("/v1/admin/reload")
            versions: set[str] = set()
            give_up = time.monotonic() + DEADLINE
            while versions != {"2099.3"} and time.monotonic() < give_up:
                time.sleep(0.2)
                with contextlib.suppress(httpx.HTTPError):
                    versions = {
                        live.client.get("/v1/policies", headers={"connection": "close"}).json()["policies"][
                            0
                        ]["version"]
                        for _ in range(6)
                    }
        assert (202, "restarting") == (accepted.status_code, accepted.json()["status"])
        assert {"2099.3"} == versions


# ----------------------------------------------------------------- journal, shutdown, logs


class TestOperations:
    def test_the_journal_is_written_before_the_response(self, tmp_path: Path) -> None:
        """With a journal, each decision is committed when its response arrives."""
        path = tmp_path / "journal.sqlite"
        with serving(CN, journal=str(path)) as live:
            response = post_json(live.client, "/v1/decide", {"record": example_account(), "at": AT})
            reader = open_journal(path, create=False)
            stored = [json.loads(e.text) for e in reader.scan()]
            reader.close()
        assert 200 == response.status_code
        assert [response.json()["account_id"]] == [s["account_id"] for s in stored]

    def test_shutdown_finishes_in_flight_decisions(self, tmp_path: Path) -> None:
        """Stopping the server while a batch is deciding answers that batch and journals all of it."""
        journal = open_journal(tmp_path / "journal.sqlite", sync=False)
        results: list[Any] = []
        records = [{**example_account(), "id": f"A-{i}"} for i in range(200)]
        live = LiveServer(create_app(ServeConfig(policies=(str(CN),)), journal=journal))
        with live:
            sender = threading.Thread(
                target=lambda: results.append(
                    post_json(live.client, "/v1/decide", {"records": records, "at": AT})
                )
            )
            sender.start()
            registry = live.app.state.server.metrics.registry
            give_up = time.monotonic() + DEADLINE
            while (
                not registry.get_sample_value("escalation_http_requests_in_flight")
                and time.monotonic() < give_up
            ):
                time.sleep(0.001)
            live.server.should_exit = True  # what SIGTERM does
            sender.join(DEADLINE)
        reader = open_journal(tmp_path / "journal.sqlite", create=False)
        journaled = sum(1 for _ in reader.scan())
        reader.close()
        assert 200 == results[0].status_code
        assert (200, 200) == (len(results[0].json()), journaled)

    def test_an_unexpected_error_is_a_500_problem_without_details(
        self, cn: LiveServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An exception inside a route answers 500 `internal-error` and logs only the exception type."""
        structlog.reset_defaults()

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise ValueError("secret record text +86 138")

        served = cn.app.state.server.policies.get(None)
        with caplog.at_level(logging.INFO, logger="escalation"), pytest.MonkeyPatch.context() as patch:
            patch.setattr(served.engine, "decide", broken)
            response = post_json(cn.client, "/v1/decide", {"record": example_account(), "at": AT})
        assert (500, "internal-error") == (response.status_code, response.json()["code"])
        assert "secret" not in "\n".join(r.getMessage() for r in caplog.records)
        assert any('"error": "ValueError"' in r.getMessage() for r in caplog.records)

    def test_access_logs_carry_a_request_id_and_no_personal_data(
        self, cn: LiveServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each request logs one event with its request id, route and status — never record contents."""
        structlog.reset_defaults()
        record = example_account()
        record["history"] = [
            {"at": "2026-11-20T10:00:00+08:00", "action": "sms_reminder", "channel": "sms",
             "outcome": "delivered", "address": "+86 138 0013 8000"},
        ]  # fmt: skip
        with caplog.at_level(logging.INFO, logger="escalation"):
            response = post_json(cn.client, "/v1/decide", {"record": record, "at": AT},
                                 headers={"x-request-id": "req-42"})  # fmt: skip
            post_json(cn.client, "/v1/decide", {"record": {**record, "amount_overdue": "-7"}, "at": AT})
        logged = "\n".join(r.getMessage() for r in caplog.records)
        events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "escalation.serve"]
        assert "req-42" == response.headers["x-request-id"]
        assert {
            "event": "request",
            "request_id": "req-42",
            "route": "/v1/decide",
            "status": 200,
        }.items() <= events[0].items()
        for secret in ("138 0013 8000", "8000", str(record["balance"]), "-7"):
            assert secret not in logged


# ----------------------------------------------------------------- OpenAPI, command line


class TestOpenAPIAndCommand:
    def test_the_shipped_openapi_matches_the_generated_one(self) -> None:
        """escalation/serve/openapi.json is what the code generates (regenerate: see docs/serve.md)."""
        shipped = (ROOT / "escalation" / "serve" / "openapi.json").read_text(encoding="utf-8")
        assert render_openapi() == shipped

    def test_print_openapi_prints_the_shipped_document(self) -> None:
        """`escalation serve --print-openapi` prints the OpenAPI document."""
        from click.testing import CliRunner

        result = CliRunner().invoke(serve, ["--print-openapi"])
        assert (0, openapi_document()) == (result.exit_code, json.loads(result.output))

    def test_without_the_extra_the_command_says_what_to_install(self) -> None:
        """Without FastAPI the command prints one line naming the extra and exits 1."""
        code = (
            "import sys; sys.modules['fastapi'] = None\n"
            "from escalation.serve.cli import serve\n"
            f"serve(['--policy', {str(CN)!r}], prog_name='escalation serve')"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
        assert (1, EXTRA_MISSING + "\n") == (out.returncode, out.stderr)

    def test_import_escalation_imports_no_web_framework(self) -> None:
        """`import escalation` and the serve command import neither FastAPI nor uvicorn."""
        code = (
            "import sys, escalation, escalation.serve, escalation.serve.cli\n"
            "web = ('fastapi', 'uvicorn', 'starlette', 'prometheus_client')\n"
            "print(sorted(m for m in web if m in sys.modules))"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60
        )
        assert "[]" == out.stdout.strip()

    def test_an_invalid_policy_exits_3_with_located_errors(self, tmp_path: Path) -> None:
        """`escalation serve` on an invalid policy prints path:line:col errors and exits 3 without binding."""
        from click.testing import CliRunner

        bad = tmp_path / "bad.yaml"
        bad.write_text("escalation: 1\npolicy: {}\n")
        try:
            result = CliRunner().invoke(serve, ["--policy", str(bad)])
        finally:
            structlog.reset_defaults()  # the command configured logging for a server
        assert 3 == result.exit_code
        assert str(bad) in result.output


# ----------------------------------------------------------------- fuzzing from the OpenAPI schema


class TestFuzz:
    @pytest.mark.parametrize("mode", ["positive", "negative"])
    def test_no_request_the_schema_allows_or_forbids_makes_a_500(self, mode: str) -> None:
        """Generated requests (valid and invalid, bounded) never get a 5xx, and answers match the document."""
        schemathesis = (
            pytest.importorskip("schemathesis") if not os.environ.get("CI") else __import__("schemathesis")
        )
        from hypothesis import HealthCheck, given, settings
        from hypothesis.errors import Unsatisfiable
        from schemathesis import GenerationMode
        from schemathesis.checks import not_a_server_error
        from schemathesis.specs.openapi.checks import (
            content_type_conformance,
            response_schema_conformance,
            status_code_conformance,
        )

        schema = schemathesis.openapi.from_dict(openapi_document())
        checks = [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
        generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
        tried: list[str] = []
        with serving(CN, max_batch=20, max_body_bytes=64 * 1024, timeout=5.0) as live:
            for result in schema.get_all_operations():
                operation = result.ok()

                @settings(
                    max_examples=FUZZ_EXAMPLES,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                    derandomize=True,
                )
                @given(case=operation.as_strategy(generation_mode=generation))
                def check(case: Any) -> None:
                    response = case.call(base_url=live.url, timeout=DEADLINE)
                    case.validate_response(response, checks=checks)

                try:
                    check()
                except Unsatisfiable:  # nothing to make invalid (no body, no parameters)
                    assert "negative" == mode
                    continue
                tried.append(operation.label)
            sent = metric(
                live.client.get("/metrics").text, "escalation_http_requests_total", route="/v1/decide"
            )
        assert sent >= FUZZ_EXAMPLES // 2  # the server really was called
        assert {"POST /v1/decide", "POST /v1/explain", "GET /v1/policies/{policy_id}"} <= set(tried)


FUZZ_EXAMPLES = 50
