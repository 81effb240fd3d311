"""``escalation serve``: the engine as an HTTP service (FastAPI + uvicorn, the
``[serve]`` extra). This module imports neither: ``escalation --help`` works
without the extra, and the command says in one line what to install."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from importlib import resources

import click

__all__ = ["EXTRA_MISSING", "serve"]

EXTRA_MISSING = "escalation serve needs the [serve] extra: pip install 'escalation[serve]'"
_EXIT_ERROR, _EXIT_POLICY = 1, 3


def _extra_installed() -> bool:
    for name in ("fastapi", "uvicorn", "prometheus_client"):
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def shipped_openapi() -> str:
    """The OpenAPI document shipped with the package (``escalation/serve/openapi.json``)."""
    return resources.files("escalation.serve").joinpath("openapi.json").read_text(encoding="utf-8")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--policy",
    "-p",
    "policies",
    multiple=True,
    metavar="POLICY",
    help="policy YAML to serve (repeat for several; requests name one by id); default: bundled CN policy",
)
@click.option(
    "--experiment",
    "-e",
    "experiments",
    multiple=True,
    metavar="EXPERIMENT",
    help="champion/challenger experiment YAML to serve under its id (repeatable; with or without --policy)",
)
@click.option(
    "--journal",
    "-j",
    metavar="JOURNAL",
    help="journal every decision before answering (.jsonl, .sqlite, postgresql://)",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="worker processes (SIGHUP then replaces them one by one)",
)
@click.option(
    "--max-batch",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="most records in one request (more: 413)",
)
@click.option(
    "--max-body-bytes",
    default=4 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1024, 1 << 31),
    help="largest request body (larger: 413)",
)
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="seconds a request may take to decide (longer: 504)",
)
@click.option(
    "--graceful-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="seconds to finish in-flight requests on SIGTERM",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False),
    help="file holding the bearer token (else $ESCALATION_SERVE_TOKEN; neither: no auth)",
)
@click.option("--log-format", type=click.Choice(["json", "console"]), default="json", show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="info: one access event per request and one event per decision",
)
@click.option("--print-openapi", is_flag=True, help="print the OpenAPI document and exit")
def serve(
    policies: tuple[str, ...],
    experiments: tuple[str, ...],
    journal: str | None,
    host: str,
    port: int,
    workers: int,
    max_batch: int,
    max_body_bytes: int,
    timeout: float,
    graceful_timeout: float,
    token_file: str | None,
    log_format: str,
    log_level: str,
    print_openapi: bool,
) -> None:
    """Serve decisions over HTTP: POST /v1/decide, /v1/explain; GET /v1/policies,
    /healthz, /readyz, /metrics. See docs/serve.md."""
    if print_openapi:
        click.echo(shipped_openapi(), nl=False)
        return
    if not _extra_installed():
        click.echo(EXTRA_MISSING, err=True)
        sys.exit(_EXIT_ERROR)
    if not policies and not experiments:  # like `decide`: the bundled PRC policy by default
        from escalation._bundled import DEFAULT_POLICY, bundled

        policies = (str(bundled(DEFAULT_POLICY)),)

    import uvicorn

    from escalation import EscalationError, PolicyError
    from escalation.serve.app import create_app
    from escalation.serve.config import CONFIG_ENV, ServeConfig, configure_logging

    config = ServeConfig(
        policies=tuple(os.path.abspath(p) for p in policies),
        experiments=tuple(os.path.abspath(e) for e in experiments),
        journal=journal,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        timeout=timeout,
        token_file=os.path.abspath(token_file) if token_file else None,
        workers=workers,
        graceful_timeout=graceful_timeout,
        log_format=log_format,
        log_level=log_level,
    )
    configure_logging(log_format, log_level)
    try:
        app = create_app(config)  # load and validate everything before binding
    except PolicyError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        sys.exit(_EXIT_POLICY)
    except (EscalationError, OSError, ValueError) as exc:
        click.echo(f"escalation: {exc}", err=True)
        sys.exit(_EXIT_ERROR)
    if app.state.server.token is None and not _loopback(host):
        click.echo(f"escalation: warning: serving on {host} without a token (--token-file)", err=True)
    common = {
        "host": host,
        "port": port,
        "access_log": False,  # our own access events carry no client address or query
        "log_level": "warning" if log_level == "debug" else log_level,
        "timeout_graceful_shutdown": max(1, round(graceful_timeout)),
        "server_header": False,
        "proxy_headers": False,
    }
    if workers == 1:
        uvicorn.Server(uvicorn.Config(app, **common)).run()  # type: ignore[arg-type]
        return
    if app.state.server.journal is not None:
        app.state.server.journal.close()  # each worker opens its own
    os.environ[CONFIG_ENV] = config.to_env()
    uvicorn.run("escalation.serve.app:create_app_from_env", factory=True, workers=workers, **common)  # type: ignore[arg-type]
