"""The access log and request metrics middleware (identifiers and timings, never record contents)."""

from __future__ import annotations

import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from escalation.serve._shared import _JSON, _REQUEST_ID, _ROUTES, _log
from escalation.serve.models import (
    Problem,
)
from escalation.serve.state import Server


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
