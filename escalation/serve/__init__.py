"""``escalation serve``: the engine as an HTTP service for lenders' backends.

The command is :data:`escalation.serve.cli.serve` (a ``click.Command``); the
application factory is :func:`escalation.serve.app.create_app`. FastAPI,
uvicorn and prometheus-client (the ``[serve]`` extra) are imported only by
:mod:`escalation.serve.app`, never by ``import escalation`` or by this package."""

from __future__ import annotations

__all__: list[str] = []
