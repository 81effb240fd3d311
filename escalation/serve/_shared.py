"""Constants and the logger the service's modules share."""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

import structlog

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
