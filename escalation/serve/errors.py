"""Problem responses: API errors, and validation/record issues mapped to field paths."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from escalation import (
    RecordError,
)
from escalation.serve._shared import _JSON
from escalation.serve.models import (
    Issue,
    Problem,
)

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
