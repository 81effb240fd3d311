"""What a server runs with: policy paths, journal, limits, auth. Plain data,
no web framework imported, so the command line can build and check it before
the ``[serve]`` extra is needed; passed to worker processes as JSON in an
environment variable."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from escalation._logging import LEVELS, configure_cli

__all__ = ["CONFIG_ENV", "TOKEN_ENV", "ServeConfig", "configure_logging", "read_token"]

CONFIG_ENV = "ESCALATION_SERVE_CONFIG"
TOKEN_ENV = "ESCALATION_SERVE_TOKEN"  # noqa: S105 - the variable's name, not a token


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server (every worker process gets the same).

    ``policies`` and ``experiments`` (champion/challenger files) are file
    paths, served by id and reloaded from disk on ``SIGHUP`` or
    ``POST /v1/admin/reload``; ``journal`` is a ``.jsonl``/``.sqlite`` path or
    a ``postgresql://`` DSN (every decision is written before it is returned);
    ``token_file`` holds the bearer token (else ``$ESCALATION_SERVE_TOKEN``,
    else no authentication)."""

    policies: tuple[str, ...]
    journal: str | None = None
    max_batch: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    timeout: float = 10.0
    token_file: str | None = None
    workers: int = 1
    graceful_timeout: float = 30.0
    log_format: str = "json"
    log_level: str = "info"
    experiments: tuple[str, ...] = ()  # last: positional construction stays as it was

    def __post_init__(self) -> None:
        if not self.policies and not self.experiments:
            raise ValueError("at least one policy or experiment is needed")
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.log_format not in ("json", "console"):
            raise ValueError("log_format is `json` or `console`")
        if self.log_level not in _LEVELS:
            raise ValueError(f"log_level is one of {', '.join(_LEVELS)}")

    def to_env(self) -> str:
        """The configuration as JSON, for :data:`CONFIG_ENV`."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeConfig:
        """The configuration a worker process was started with."""
        text = (os.environ if environ is None else environ).get(CONFIG_ENV)
        if not text:
            raise RuntimeError(f"${CONFIG_ENV} is not set: start the server with `escalation serve`")
        data = json.loads(text)
        data["policies"] = tuple(data["policies"])
        data["experiments"] = tuple(data.get("experiments", ()))
        return cls(**data)


def read_token(config: ServeConfig, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token: the first line of ``token_file``, else
    ``$ESCALATION_SERVE_TOKEN``; ``None`` (no authentication) when neither is
    set. An empty token file is an error (it would silently disable auth)."""
    if config.token_file is not None:
        text = Path(config.token_file).read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"token file `{config.token_file}` is empty")
        return text.splitlines()[0].strip()
    value = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    return value or None


_LEVELS = LEVELS


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Configure structlog for the server process: one event per line on
    stderr (JSON by default), timestamped, at ``level``. Access events
    (``request``) and the engine's ``decision`` events are INFO. The same
    configuration as the command line's (:func:`escalation._logging.configure_cli`)."""
    configure_cli(log_format, level)
