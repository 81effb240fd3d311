"""The HTTP service: FastAPI routes over the library's engine.

Decisions are the library's bytes (``Decision.to_json()``), never re-encoded;
each is journaled (when a journal is configured) before its response is sent.
Everything the server logs is identifiers, statuses and timings: never a
record's contents."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from escalation import (
    Account,
    Decision,
    ErrorRow,
    Journal,
    JournalError,
)
from escalation.serve._shared import _JSON, _log
from escalation.serve.access import AccessLog
from escalation.serve.config import ServeConfig, configure_logging
from escalation.serve.errors import (
    ApiError,
    _field,
    _problem,
)
from escalation.serve.metrics import CONTENT_TYPE
from escalation.serve.models import (
    DecideRequest,
    ExplainItem,
    Health,
    Issue,
    PolicyDetail,
    PolicyListing,
    Problem,
    ReloadResult,
)
from escalation.serve.policies import Served, UnknownPolicyError
from escalation.serve.requests import (
    _authorize,
    _decide,
    _explained,
    _headers,
)
from escalation.serve.state import ReloadFailedError, Server, _server, _summary

__all__ = ["API_VERSION", "create_app", "create_app_from_env", "openapi_document", "render_openapi"]

API_VERSION = "1.0.0"


def _ok(model: Any, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": description}}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "no or wrong bearer token (when the server has one)",
        404: "unknown policy or experiment",
        409: "the pinned `fingerprint` is not the served policy's (or experiment's)",
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
        _log().info("started", policies=[s.id for s in server.summaries()],
                    experiments=[e.id for e in server.experiment_summaries()], pid=os.getpid())  # fmt: skip
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
        """The served policies (id, version, fingerprint, included rule packs) and
        experiments (id, fingerprint, salt, challenger share, both arms' policies)."""
        server = _server(request)
        return PolicyListing(policies=server.summaries(), experiments=server.experiment_summaries())

    @app.get("/v1/policies/{policy_id}", dependencies=v1, response_model=PolicyDetail,
             responses=_errors(401, 404, 422))  # fmt: skip
    async def policy(request: Request, policy_id: str) -> PolicyDetail:
        """One served policy with its canonical form (every include resolved)."""
        try:
            served = _server(request).policies.get(policy_id)
        except UnknownPolicyError as exc:
            raise ApiError(404, "unknown-policy", str(exc)) from None
        if not isinstance(served, Served):
            message = f"`{policy_id}` is an experiment: GET /v1/policies lists it with both arms' policies"
            raise ApiError(404, "unknown-policy", message)
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
        summary="Reload the policy and experiment files",
    )
    async def reload(request: Request) -> Response:
        """Reload every policy and experiment file (validated first: when any is
        invalid the old ones keep serving and this answers 422 with every issue)."""
        server = _server(request)
        if server.config.workers > 1:
            try:
                await anyio.to_thread.run_sync(server.validate)
            except ReloadFailedError as exc:
                raise _reload_problem(exc) from None
            os.kill(os.getppid(), signal.SIGHUP)  # uvicorn's supervisor replaces workers one by one
            result = ReloadResult(status="restarting", changed=True, policies=server.summaries(),
                                  experiments=server.experiment_summaries())  # fmt: skip
            return Response(result.model_dump_json(), status_code=202, media_type=_JSON)
        changed = await _reload_logged(server, "api")
        result = ReloadResult(status="reloaded", changed=changed, policies=server.summaries(),
                              experiments=server.experiment_summaries())  # fmt: skip
        return Response(result.model_dump_json(), media_type=_JSON)

    @app.get("/healthz", response_model=Health)
    async def healthz(request: Request) -> Health:
        """Liveness: the process answers."""
        served = _server(request).policies
        return Health(status="ok", policies=len(served.all()), experiments=len(served.experiments()))

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "not ready"}})
    async def readyz(request: Request) -> Response:
        """Readiness: policies loaded and the journal (if any) reachable."""
        server = _server(request)
        served = server.policies
        ready = bool(served.all() or served.experiments())
        if ready and server.journal is not None:
            try:
                await anyio.to_thread.run_sync(server.journal.head)
            except JournalError:
                ready = False
        body = Health(status="ok" if ready else "unavailable", policies=len(served.all()),
                      experiments=len(served.experiments()))  # fmt: skip
        return Response(body.model_dump_json(), status_code=200 if ready else 503, media_type=_JSON)

    @app.get("/metrics", responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                          "description": "Prometheus text format"}})  # fmt: skip
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: decisions by policy, arm, status and action, errors, latency."""
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
    fingerprints = {s.id: s.fingerprint for s in server.summaries()}
    fingerprints.update({e.id: e.fingerprint for e in server.experiment_summaries()})
    _log().info("reloaded", trigger=trigger, changed=changed, fingerprints=fingerprints)
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
