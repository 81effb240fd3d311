"""The HTTP service: FastAPI routes over the library's engine.

Decisions are the library's bytes (``Decision.to_json()``), never re-encoded;
each is journaled (when a journal is configured) before its response is sent.
Everything the server logs is identifiers, statuses and timings: never a
record's contents."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import anyio
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from escalation import (
    Account,
    Decision,
    ErrorRow,
    EvaluationError,
    Journal,
    JournalError,
    Masking,
    PolicyError,
    RecordError,
    open_journal,
    render_text,
)
from escalation.serve.config import ServeConfig, configure_logging, read_token
from escalation.serve.metrics import CONTENT_TYPE, Metrics
from escalation.serve.models import (
    DecideRequest,
    ExplainItem,
    Health,
    Issue,
    PolicyDetail,
    PolicyListing,
    Problem,
    ReloadResult,
    ServedPolicy,
)
from escalation.serve.policies import PolicySet, Served, UnknownPolicyError

__all__ = ["API_VERSION", "create_app", "create_app_from_env", "openapi_document", "render_openapi"]

API_VERSION = "1.0.0"
T = TypeVar("T")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ROUTES = {
    "/v1/decide",
    "/v1/explain",
    "/v1/policies",
    "/v1/admin/reload",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
}
_JSON = "application/json"


# ----------------------------------------------------------------- logging


_stdlib = logging.getLogger("escalation.serve")
_private = structlog.wrap_logger(
    _stdlib,
    processors=[structlog.processors.JSONRenderer(sort_keys=True)],
    wrapper_class=structlog.stdlib.BoundLogger,
)


def _log() -> Any:
    """The access/operations logger: structlog as the application configured
    it (``escalation serve`` does), else the standard-library logger
    ``escalation.serve`` (silent unless enabled), as the library does."""
    return structlog.get_logger("escalation.serve") if structlog.is_configured() else _private


# ----------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer: HTTP status, kebab-case code, message, fields at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        issues: list[Issue] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.issues = issues or []
        self.headers = dict(headers or {})


class _DeadlineExceeded(Exception):
    """A batch ran past the per-request timeout (checked between records)."""


def _request_id(request: Request) -> str | None:
    state = request.scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def _problem(request: Request, error: ApiError) -> Response:
    body = Problem(
        code=error.code, message=error.message, issues=error.issues, request_id=_request_id(request)
    )
    return Response(body.model_dump_json(), status_code=error.status, media_type=_JSON, headers=error.headers)


def _field(loc: tuple[int | str, ...] | list[int | str], prefix: str = "") -> str:
    path = ".".join(str(part) for part in loc)
    if prefix:
        return f"{prefix}.{path}" if path else prefix
    return path


def _validation_issues(exc: ValidationError) -> list[Issue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        message = str(err["msg"])
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif not loc:  # the model-level rule: exactly one of record / records
            loc = ("record",)
            message = message.removeprefix("Value error, ")
        issues.append(Issue(field=_field(loc), message=message[:1].lower() + message[1:], code=err["type"]))
    return issues


def _record_issues(exc: RecordError, prefix: str) -> list[Issue]:
    return [Issue(field=_field((i.field,) if i.field else (), prefix), message=i.message, code=i.code)
            for i in exc.issues]  # fmt: skip


# ----------------------------------------------------------------- server state


class _InFlight:
    """Decisions being computed (in worker threads), so shutdown can wait for
    them — including a batch whose request already timed out — before the
    journal is closed."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is in flight; whether that happened in time."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout=timeout)


class ReloadFailedError(Exception):
    """A reload found an invalid policy or token; the old ones keep serving."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("; ".join(issues))
        self.issues = issues


class Server:
    """Everything one application instance serves with."""

    def __init__(self, config: ServeConfig, journal: Journal | None = None) -> None:
        self.config = config
        self.journal = journal
        if journal is None and config.journal is not None:
            journal = self.journal = open_journal(config.journal, masking=Masking.from_env())
        self.policies = PolicySet(config.policies, journal)
        self.token = read_token(config)
        self.metrics = Metrics()
        self.in_flight = _InFlight()
        self._publish()

    def _publish(self) -> None:
        self.metrics.served(
            [(s.policy.id, s.policy.version, s.policy.fingerprint) for s in self.policies.all()]
        )

    def reload(self) -> bool:
        """Reload policies (and the token file); whether a policy changed.
        Raises :class:`ReloadFailedError` and keeps everything as it was when
        anything is invalid."""
        try:
            token = read_token(self.config)
        except (OSError, ValueError) as exc:
            self.metrics.reloads.labels("invalid").inc()
            raise ReloadFailedError([f"token: {exc}"]) from None
        try:
            changed = self.policies.reload()
        except PolicyError as exc:
            self.metrics.reloads.labels("invalid").inc()
            raise ReloadFailedError([str(issue) for issue in exc.issues]) from None
        self.token = token
        self.metrics.reloads.labels("changed" if changed else "unchanged").inc()
        self._publish()
        return changed

    def validate(self) -> None:
        """Check that a reload would succeed, without switching."""
        try:
            read_token(self.config)
            self.policies.validate()
        except PolicyError as exc:
            raise ReloadFailedError([str(issue) for issue in exc.issues]) from None
        except (OSError, ValueError) as exc:
            raise ReloadFailedError([f"token: {exc}"]) from None

    def summaries(self) -> list[ServedPolicy]:
        """The served policies, for listings."""
        return [_summary(s) for s in self.policies.all()]

    async def in_thread(self, work: Callable[[], T]) -> T:
        """Run ``work`` (decisions: CPU and journal I/O) in a worker thread,
        answering 504 after the request timeout (the thread finishes its
        current record and stops; shutdown waits for it)."""

        def tracked() -> T:
            with self.in_flight:
                return work()

        try:
            with anyio.fail_after(self.config.timeout):
                return await anyio.to_thread.run_sync(tracked, abandon_on_cancel=True)
        except (TimeoutError, _DeadlineExceeded):
            raise ApiError(
                504, "timeout", f"not decided within {self.config.timeout:g}s; retry, or send smaller batches"
            ) from None


def _summary(served: Served) -> ServedPolicy:
    policy = served.policy
    return ServedPolicy(
        id=policy.id,
        version=policy.version,
        fingerprint=policy.fingerprint,
        packs=list(policy.packs),
        currency=policy.header.currency,
        timezone=policy.header.timezone,
        tiers=[t.model.id for t in policy.tiers],
    )


def _server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


# ----------------------------------------------------------------- request parsing


def _reject_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key `{key}`")
        result[key] = value
    return result


async def _read_body(request: Request, limit: int) -> bytes:
    content_type = request.headers.get("content-type", _JSON).split(";")[0].strip().lower()
    if content_type != _JSON and not content_type.endswith("+json"):
        raise ApiError(
            415, "unsupported-media-type", "send the body as JSON (`Content-Type: application/json`)"
        )
    declared = request.headers.get("content-length", "")
    too_large = ApiError(413, "body-too-large", f"the request body is larger than {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse(request: Request) -> DecideRequest:
    """The request body: size-limited, strict JSON (numbers with a fraction as
    decimals, as the CLI reads them; duplicate keys and NaN refused), then
    validated; each problem named by its field."""
    server = _server(request)
    raw = await _read_body(request, server.config.max_body_bytes)
    try:
        data = json.loads(
            raw.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        issue = Issue(field="body", message=f"{exc.msg.lower()} at {where}", code="invalid-json")
        raise ApiError(422, "invalid-json", f"the body is not JSON: {exc.msg} at {where}", [issue]) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        message = "the body is not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        if isinstance(exc, RecursionError):
            message = "the body is nested too deeply"
        raise ApiError(
            422, "invalid-json", message, [Issue(field="body", message=message, code="invalid-json")]
        ) from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid-request", "the body must be a JSON object",
                       [Issue(field="body", message="expected an object", code="model_type")])  # fmt: skip
    try:
        parsed = DecideRequest.model_validate(data)
    except ValidationError as exc:
        issues = _validation_issues(exc)
        raise ApiError(
            422, "invalid-request", "; ".join(f"{i.field}: {i.message}" for i in issues), issues
        ) from None
    if parsed.records is not None and len(parsed.records) > server.config.max_batch:
        raise ApiError(
            413,
            "batch-too-large",
            f"{len(parsed.records)} records in one request; at most {server.config.max_batch}",
            [Issue(field="records", message=f"at most {server.config.max_batch} records", code="too_long")],
        )
    return parsed


def _choose(server: Server, body: DecideRequest) -> Served:
    try:
        served = server.policies.get(body.policy)
    except UnknownPolicyError as exc:
        status, code = (404, "unknown-policy") if body.policy is not None else (422, "policy-required")
        raise ApiError(status, code, str(exc), [Issue(field="policy", message=str(exc), code=code)]) from None
    if body.fingerprint is not None and body.fingerprint != served.policy.fingerprint:
        message = (
            f"policy `{served.policy.id}` is served with fingerprint `{served.policy.fingerprint}`, "
            f"not `{body.fingerprint}`"
        )
        issue = Issue(field="fingerprint", message=message, code="fingerprint-mismatch")
        raise ApiError(409, "fingerprint-mismatch", message, [issue])
    return served


def _instant(body: DecideRequest) -> tuple[dt.datetime, str]:
    if body.at is not None:
        return body.at, "request"
    return dt.datetime.now(dt.UTC).replace(microsecond=0), "server"


# ----------------------------------------------------------------- deciding


def _bounded(items: Iterator[T], deadline: float) -> list[T]:
    """Drain a batch, stopping between records once the deadline has passed."""
    out: list[T] = []
    for item in items:
        out.append(item)
        if time.monotonic() > deadline:
            raise _DeadlineExceeded
    return out


def _count(server: Server, policy_id: str, items: list[Decision | ErrorRow]) -> None:
    for item in items:
        if isinstance(item, Decision):
            server.metrics.decisions.labels(policy_id, item.status, item.action or "").inc()
        else:
            server.metrics.errors.labels(policy_id, item.code).inc()


async def _decide(
    request: Request, explain: bool
) -> tuple[Served, DecideRequest, dt.datetime, str, list[Decision | ErrorRow]]:
    server = _server(request)
    body = await _parse(request)
    served = _choose(server, body)
    now, source = _instant(body)
    engine = served.explainer if explain else served.engine
    records = body.records if body.records is not None else [body.record]
    state = request.scope.setdefault("state", {})
    state["records"] = len(records)
    state["policy"] = served.policy.id
    server.metrics.batch_size.observe(len(records))
    deadline = time.monotonic() + server.config.timeout

    def work() -> list[Decision | ErrorRow]:
        if body.record is not None:
            return [engine.decide(body.record, now=now, trace=body.trace)]
        return _bounded(engine.decide_many(body.records or [], now=now, trace=body.trace), deadline)

    try:
        items = await server.in_thread(work)
    except RecordError as exc:
        server.metrics.errors.labels(served.policy.id, exc.issues[0].code).inc()
        issues = _record_issues(exc, "record")
        raise ApiError(
            422, "invalid-record", "; ".join(f"{i.field}: {i.message}" for i in issues), issues
        ) from None
    except EvaluationError as exc:
        server.metrics.errors.labels(served.policy.id, "evaluation-error").inc()
        raise ApiError(422, "evaluation-error", str(exc)) from None
    except JournalError:
        server.metrics.errors.labels(served.policy.id, "journal-unavailable").inc()
        _log().error("journal_failed", request_id=_request_id(request), policy_id=served.policy.id)
        raise ApiError(503, "journal-unavailable", "the decision could not be journaled; nothing was decided",
                       headers={"Retry-After": "5"}) from None  # fmt: skip
    _count(server, served.policy.id, items)
    return served, body, now, source, items


def _headers(served: Served, now: dt.datetime, source: str) -> dict[str, str]:
    return {
        "Escalation-At": now.isoformat(),
        "Escalation-At-Source": source,
        "Escalation-Policy-Fingerprint": served.policy.fingerprint,
    }


def _explained(item: Decision | ErrorRow) -> str:
    if isinstance(item, ErrorRow):
        return item.model_dump_json()
    return (
        '{"decision":' + item.to_json() + ',"text":' + json.dumps(render_text(item), ensure_ascii=False) + "}"
    )


# ----------------------------------------------------------------- auth


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="required when the server has a token (`--token-file` or `$ESCALATION_SERVE_TOKEN`)",
)


async def _authorize(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    token = _server(request).token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "unauthorized", "a valid bearer token is required",
                       headers={"WWW-Authenticate": 'Bearer realm="escalation"'})  # fmt: skip


# ----------------------------------------------------------------- access log + metrics


def _route(path: str) -> str:
    if path in _ROUTES:
        return path
    if path.startswith("/v1/policies/") and path.count("/") == 3:
        return "/v1/policies/{policy_id}"
    return "unmatched"


class AccessLog:
    """ASGI middleware: a request id on every request (``X-Request-Id``, taken
    from the caller when it is a plain token, else generated), one ``request``
    log event and the request metrics. It logs identifiers, the route
    template, status and time — no body, query string or client address."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        server: Server | None = getattr(scope["app"].state, "server", None) if "app" in scope else None
        if server is not None:
            server.metrics.in_flight.inc()
        started_response = False

        async def send_tracked(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            # Answer here rather than let the server log a traceback: an
            # exception's text may quote record contents. Log its type only.
            status = 500
            _log().error("internal_error", request_id=request_id, error=type(exc).__name__)
            if started_response:
                raise RuntimeError("response interrupted") from None
            body = Problem(
                code="internal-error", message="internal error; quote the request id", request_id=request_id
            ).model_dump_json()
            await send_with_id({"type": "http.response.start", "status": 500,
                                "headers": [(b"content-type", _JSON.encode())]})  # fmt: skip
            await send_with_id({"type": "http.response.body", "body": body.encode()})
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope.get("path", ""))
            if server is not None:
                server.metrics.in_flight.dec()
                server.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
                server.metrics.latency.labels(route).observe(elapsed)
            _log().info(
                "request",
                request_id=request_id,
                method=scope.get("method"),
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
                records=state.get("records"),
                policy_id=state.get("policy"),
            )


# ----------------------------------------------------------------- the application


def _ok(model: Any, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": description}}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "no or wrong bearer token (when the server has one)",
        404: "unknown policy",
        409: "the pinned `fingerprint` is not the served policy's",
        413: "body larger than `--max-body-bytes`, or more records than `--max-batch`",
        415: "the body is not JSON",
        422: "invalid JSON, request or record; `issues` name the fields",
        503: "the journal cannot be written (nothing was decided), or not ready",
        504: "not decided within the request timeout",
    }
    return {status: {"model": Problem, "description": described[status]} for status in statuses}


_DECIDE_BODY = {
    "requestBody": {
        "required": True,
        "content": {_JSON: {"schema": {"$ref": "#/components/schemas/DecideRequest"}}},
    }
}


def _build() -> FastAPI:
    """The routes (no state: :func:`create_app` attaches a :class:`Server`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server: Server = app.state.server
        loop = asyncio.get_running_loop()
        hup = False
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_logged(server, "sighup")))
            hup = True
        _log().info("started", policies=[s.id for s in server.summaries()], pid=os.getpid())
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            idle = await anyio.to_thread.run_sync(server.in_flight.wait_idle, server.config.graceful_timeout)
            if server.journal is not None:
                server.journal.close()
            _log().info("stopped", pid=os.getpid(), drained=idle)

    app = FastAPI(
        title="escalation",
        version=API_VERSION,
        summary="The next permitted collections action for an account, with reasons",
        description="See docs/serve.md. Decisions are byte-identical to `escalation decide` output.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.add_middleware(AccessLog)
    v1 = [Depends(_authorize)]

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        issues = [Issue(field=_field(tuple(e["loc"])), message=str(e["msg"]).lower(), code=e["type"])
                  for e in exc.errors()]  # fmt: skip
        return _problem(request, ApiError(422, "invalid-request", "invalid request", issues))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return _problem(
            request, ApiError(exc.status_code, code, str(exc.detail).lower(), headers=exc.headers)
        )

    @app.post(
        "/v1/decide",
        dependencies=v1,
        openapi_extra=_DECIDE_BODY,
        responses={
            **_ok(
                Decision | list[Decision | ErrorRow],
                "`record`: the decision; `records`: one item per record, in order "
                "(a decision or an error row)",
            ),
            **_errors(401, 404, 409, 413, 415, 422, 503, 504),
        },
        summary="Decide the next permitted action",
    )
    async def decide(request: Request) -> Response:
        """The decision for one record (or one per record of a batch), as
        `escalation decide` prints it. Journaled before the answer is sent."""
        served, body, now, source, items = await _decide(request, explain=False)
        if body.record is not None:
            text = items[0].model_dump_json() if isinstance(items[0], ErrorRow) else items[0].to_json()
        else:
            text = (
                "["
                + ",".join(i.to_json() if isinstance(i, Decision) else i.model_dump_json() for i in items)
                + "]"
            )
        return Response(text, media_type=_JSON, headers=_headers(served, now, source))

    @app.post(
        "/v1/explain",
        dependencies=v1,
        openapi_extra=_DECIDE_BODY,
        responses={
            **_ok(
                ExplainItem | list[ExplainItem | ErrorRow], "the decision and its explanation for a person"
            ),
            **_errors(401, 404, 409, 413, 415, 422, 503, 504),
        },
        summary="Decide and explain for a person",
    )
    async def explain(request: Request) -> Response:
        """The decision with the text `escalation explain` prints (not journaled:
        an explanation is not a decision to act)."""
        served, body, now, source, items = await _decide(request, explain=True)
        text = (
            _explained(items[0]) if body.record is not None else "[" + ",".join(map(_explained, items)) + "]"
        )
        return Response(text, media_type=_JSON, headers=_headers(served, now, source))

    @app.get("/v1/policies", dependencies=v1, response_model=PolicyListing, responses=_errors(401))
    async def policies(request: Request) -> PolicyListing:
        """The served policies: id, version, fingerprint, included rule packs."""
        return PolicyListing(policies=_server(request).summaries())

    @app.get("/v1/policies/{policy_id}", dependencies=v1, response_model=PolicyDetail,
             responses=_errors(401, 404, 422))  # fmt: skip
    async def policy(request: Request, policy_id: str) -> PolicyDetail:
        """One served policy with its canonical form (every include resolved)."""
        try:
            served = _server(request).policies.get(policy_id)
        except UnknownPolicyError as exc:
            raise ApiError(404, "unknown-policy", str(exc)) from None
        return PolicyDetail(**_summary(served).model_dump(), canonical=json.loads(served.policy.canonical))

    @app.post(
        "/v1/admin/reload",
        dependencies=v1,
        response_model=ReloadResult,
        responses={
            202: {"model": ReloadResult, "description": "validated; workers are being replaced one by one"},
            **_errors(401),
            422: {
                "model": Problem,
                "description": "a policy (or the token file) is invalid; the old ones keep serving",
            },
        },
        summary="Reload the policy files",
    )
    async def reload(request: Request) -> Response:
        """Reload every policy file (validated first: when any is invalid the
        old policies keep serving and this answers 422 with every issue)."""
        server = _server(request)
        if server.config.workers > 1:
            try:
                await anyio.to_thread.run_sync(server.validate)
            except ReloadFailedError as exc:
                raise _reload_problem(exc) from None
            os.kill(os.getppid(), signal.SIGHUP)  # uvicorn's supervisor replaces workers one by one
            result = ReloadResult(status="restarting", changed=True, policies=server.summaries())
            return Response(result.model_dump_json(), status_code=202, media_type=_JSON)
        changed = await _reload_logged(server, "api")
        result = ReloadResult(status="reloaded", changed=changed, policies=server.summaries())
        return Response(result.model_dump_json(), media_type=_JSON)

    @app.get("/healthz", response_model=Health)
    async def healthz(request: Request) -> Health:
        """Liveness: the process answers."""
        return Health(status="ok", policies=len(_server(request).policies.all()))

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "not ready"}})
    async def readyz(request: Request) -> Response:
        """Readiness: policies loaded and the journal (if any) reachable."""
        server = _server(request)
        ready = bool(server.policies.all())
        if ready and server.journal is not None:
            try:
                await anyio.to_thread.run_sync(server.journal.head)
            except JournalError:
                ready = False
        body = Health(status="ok" if ready else "unavailable", policies=len(server.policies.all()))
        return Response(body.model_dump_json(), status_code=200 if ready else 503, media_type=_JSON)

    @app.get("/metrics", responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                          "description": "Prometheus text format"}})  # fmt: skip
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: decisions by status and action, errors, latency."""
        return Response(_server(request).metrics.render(), media_type=CONTENT_TYPE)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _, defs = models_json_schema(
                [(DecideRequest, "validation"), (Account, "validation")],
                ref_template="#/components/schemas/{model}",
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in defs.get("$defs", {}).items():
                schemas.setdefault(name, definition)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _reload_problem(exc: ReloadFailedError) -> ApiError:
    return ApiError(
        422,
        "policy-invalid",
        "reload refused, the served policies are unchanged: " + "; ".join(exc.issues),
        [Issue(field="policy", message=issue, code="policy-invalid") for issue in exc.issues],
    )


async def _reload_logged(server: Server, trigger: str) -> bool:
    """Reload, log the outcome; on failure keep serving the old policies."""
    try:
        changed = await anyio.to_thread.run_sync(server.reload)
    except ReloadFailedError as exc:
        _log().error("reload_failed", trigger=trigger, issues=exc.issues)
        if trigger == "api":
            raise _reload_problem(exc) from None
        return False
    _log().info("reloaded", trigger=trigger, changed=changed,
                fingerprints={s.id: s.fingerprint for s in server.summaries()})  # fmt: skip
    return changed


def create_app(config: ServeConfig, *, journal: Journal | None = None) -> FastAPI:
    """The application serving ``config`` (policies loaded and validated now:
    raises :class:`~escalation.PolicyError` when one is invalid).

    ``journal`` overrides ``config.journal`` (tests, embedding)."""
    app = _build()
    app.state.server = Server(config, journal)
    return app


def create_app_from_env() -> FastAPI:
    """The application for a uvicorn worker process (configuration from
    ``$ESCALATION_SERVE_CONFIG``, set by ``escalation serve``; worker processes
    are spawned, so logging is configured here again)."""
    config = ServeConfig.from_env()
    configure_logging(config.log_format, config.log_level)
    return create_app(config)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (independent of the policies served)."""
    return _build().openapi()


def render_openapi() -> str:
    """The OpenAPI document as shipped in ``escalation/serve/openapi.json``."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
