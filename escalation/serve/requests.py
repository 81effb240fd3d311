"""Request handling: strict body parsing, choosing the policy or experiment,
deciding within a deadline, auth."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from escalation import (
    Decision,
    ErrorRow,
    EvaluationError,
    JournalError,
    RecordError,
    UsageError,
    render_text,
)
from escalation.serve._shared import _JSON, T, _log
from escalation.serve.errors import (
    ApiError,
    _DeadlineExceeded,
    _record_issues,
    _request_id,
    _validation_issues,
)
from escalation.serve.models import (
    DecideRequest,
    Issue,
)
from escalation.serve.policies import Served, Target, UnknownPolicyError
from escalation.serve.state import Server, _server


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


def _choose(server: Server, body: DecideRequest) -> Target:
    try:
        served = server.policies.get(body.policy)
    except UnknownPolicyError as exc:
        status, code = (404, "unknown-policy") if body.policy is not None else (422, "policy-required")
        raise ApiError(status, code, str(exc), [Issue(field="policy", message=str(exc), code=code)]) from None
    if body.fingerprint is not None and body.fingerprint != served.fingerprint:
        kind = "policy" if isinstance(served, Served) else "experiment"
        message = (
            f"{kind} `{served.id}` is served with fingerprint `{served.fingerprint}`, "
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
            arm = item.experiment.arm if item.experiment is not None else ""
            server.metrics.decisions.labels(policy_id, arm, item.status, item.action or "").inc()
        else:
            server.metrics.errors.labels(policy_id, item.code).inc()


async def _decide(
    request: Request, explain: bool
) -> tuple[Target, DecideRequest, dt.datetime, str, list[Decision | ErrorRow]]:
    server = _server(request)
    body = await _parse(request)
    served = _choose(server, body)
    now, source = _instant(body)
    engine = served.explainer if explain else served.engine
    records = body.records if body.records is not None else [body.record]
    state = request.scope.setdefault("state", {})
    state["records"] = len(records)
    state["policy"] = served.id
    server.metrics.batch_size.observe(len(records))
    deadline = time.monotonic() + server.config.timeout

    def work() -> list[Decision | ErrorRow]:
        if body.record is not None:
            return [engine.decide(body.record, now=now, trace=body.trace)]
        return _bounded(engine.decide_many(body.records or [], now=now, trace=body.trace), deadline)

    try:
        items = await server.in_thread(work)
    except RecordError as exc:
        server.metrics.errors.labels(served.id, exc.issues[0].code).inc()
        issues = _record_issues(exc, "record")
        raise ApiError(
            422, "invalid-record", "; ".join(f"{i.field}: {i.message}" for i in issues), issues
        ) from None
    except UsageError as exc:  # the instant itself is unusable (e.g. outside the supported years)
        message = str(exc)
        issue = Issue(field="at", message=message, code="invalid-request")
        raise ApiError(422, "invalid-request", message, [issue]) from None
    except EvaluationError as exc:
        server.metrics.errors.labels(served.id, "evaluation-error").inc()
        raise ApiError(422, "evaluation-error", str(exc)) from None
    except JournalError:
        server.metrics.errors.labels(served.id, "journal-unavailable").inc()
        _log().error("journal_failed", request_id=_request_id(request), policy_id=served.id)
        raise ApiError(503, "journal-unavailable", "the decision could not be journaled; nothing was decided",
                       headers={"Retry-After": "5"}) from None  # fmt: skip
    _count(server, served.id, items)
    return served, body, now, source, items


def _headers(served: Target, now: dt.datetime, source: str) -> dict[str, str]:
    return {
        "Escalation-At": now.isoformat(),
        "Escalation-At-Source": source,
        "Escalation-Policy-Fingerprint": served.fingerprint,
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
