"""Structured logging: one ``decision`` event per decision, never personal data.

The library never configures logging. Unconfigured, structlog would print to
stdout, so the library only logs when the application asked for it:

* structlog configured by the application (or by the CLI): events go through
  ``structlog.get_logger("escalation")`` and its configuration, when its
  level lets INFO through;
* otherwise, only when the standard-library logger ``escalation`` is enabled
  for INFO: events go there, rendered as JSON by a private structlog logger
  (the global structlog configuration is left alone).

When neither is enabled, ``decide()`` pays two flag checks and builds no
event (see ``docs/audit.md`` for the measured overhead). structlog itself is
imported only when an event is to be written or an application has already
imported it (it pulls in asyncio and subprocess: ``import escalation`` stays
light)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

    from escalation.decision import Decision

__all__ = ["configure_cli", "enabled", "log_decision", "warn"]

_stdlib = logging.getLogger("escalation")
_stdlib.addHandler(logging.NullHandler())  # a library never prints by default
_private: Any = None


def _is_enabled(level: int) -> bool:
    structlog = sys.modules.get("structlog")
    if structlog is None:  # nobody imported structlog, so nobody configured it
        return _stdlib.isEnabledFor(level)
    if not structlog.is_configured():
        return _stdlib.isEnabledFor(level)
    wrapper = structlog.get_config()["wrapper_class"]
    if isinstance(wrapper, type) and issubclass(wrapper, structlog.stdlib.BoundLogger):
        return _stdlib.isEnabledFor(level)
    check = getattr(wrapper, "is_enabled_for", None)
    if check is not None:  # make_filtering_bound_logger: the level is fixed per class
        try:
            return bool(check(None, level))
        except (AttributeError, TypeError):
            return True
    return True


def enabled() -> bool:
    """Whether a ``decision`` event would be emitted at all."""
    return _is_enabled(logging.INFO)


def _logger() -> Any:
    global _private
    import structlog

    if structlog.is_configured():
        return structlog.get_logger("escalation")
    if _private is None:
        _private = structlog.wrap_logger(
            _stdlib,
            processors=[structlog.processors.JSONRenderer(sort_keys=True)],
            wrapper_class=structlog.stdlib.BoundLogger,
        )
    return _private


def log_decision(decision: Decision, record_id: str | None) -> None:
    """Emit the ``decision`` event: identifiers, outcome, guard ids and the
    policy fingerprint; no record content (no amounts, addresses or names)."""
    _logger().info(
        "decision",
        decision_id=record_id,
        account_id=decision.account_id,
        status=decision.status,
        action=decision.action,
        channel=decision.channel,
        severity=decision.severity,
        hold=decision.hold,
        blocked_guards=sorted({b.guard for b in decision.blocked}),
        next_eligible_at=None if decision.next_eligible_at is None else decision.next_eligible_at.isoformat(),
        policy_id=decision.policy.id,
        policy_version=decision.policy.version,
        fingerprint=decision.policy.fingerprint,
        backend=decision.engine.backend,
    )


def warn(event: str, **fields: Any) -> None:
    """Emit a warning event (for example a torn journal tail that was cut)."""
    if _is_enabled(logging.WARNING):
        _logger().warning(event, **fields)


LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _StderrLoggerFactory:
    """PrintLoggers on whatever ``sys.stderr`` is when an event is written
    (test runners swap it), never on stdout, which carries the results."""

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        import structlog

        return structlog.PrintLogger(sys.stderr)


def configure_cli(log_format: str = "console", level: str = "warning") -> None:
    """Configure structlog for the command line: events to stderr, as JSON
    lines or a console format, at ``level`` (debug, info, warning, error)."""
    import structlog

    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )
